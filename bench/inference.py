"""Inference speed: the service's predict endpoint against a plain FastAPI endpoint, same model.

One run, one machine:
1. trains a LeNet on digits (2 epochs, through the real job runner) into a fresh data dir;
2. starts the service (`uvicorn api.app:create_app --factory`, as `d2l-service api` does) and a
   bare FastAPI app (`--serve-bare`, below: the obvious hand-written endpoint, one forward pass
   per request) on the same checkpoint, both with uvicorn's defaults, no access log, 1 torch thread;
3. drives each with closed-loop aiohttp clients (1, 8, 32 at once) posting one raw 8x8 digit,
   timing the two servers in turn, `--rounds` times, and keeps the medians;
4. measures the in-process forward pass (preprocessed input, softmax) at batch 1 and 32: the limit.

With --pin the servers run on core 0 and this process (the clients) on core 1, so that the client
does not steal the server's CPU. Needs the `bench` extra (aiohttp).

With --peers it compares the service with TorchServe and LitServe instead (bench/inference_peers.py:
the peers' LeNet and 28x28 body, their load generator; `bash ../shared/peers/setup_peers.sh` first).

Run: python -m bench.inference [--pin] [--seconds 5] [--rounds 3] [--peers] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

RESULTS = Path(__file__).with_name("RESULTS.md")
ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 32)


class Body(BaseModel):
    """The bare endpoint's request: what a hand-written server declares."""

    inputs: list[Any]
    top_k: int | None = None


def serve_bare(checkpoint: str, port: int) -> None:
    """The hand-written alternative: load the model, one forward pass per request."""
    import uvicorn
    from fastapi import FastAPI

    import models
    from core import preprocessing
    from core.preprocessing import Preprocessing

    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    net = models.get_model(
        payload["arch"],
        in_channels=payload["in_channels"],
        num_classes=payload["num_classes"],
        input_size=payload["input_size"],
        **payload["config"],
    )
    net.load_state_dict(payload["state_dict"])
    net.eval()
    prep = Preprocessing.from_dict(payload["preprocessing"])
    names = payload["class_names"]
    app = FastAPI()

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(body: Body) -> dict[str, Any]:
        raw = torch.tensor(body.inputs, dtype=torch.float32)
        if raw.dim() == len(prep.raw_shape):
            raw = raw.unsqueeze(0)
        with torch.inference_mode():
            probabilities = torch.softmax(net(preprocessing.apply(prep, raw)), dim=1)
        predictions = []
        for row in probabilities:
            best = int(row.argmax())
            predictions.append(
                {
                    "class_index": best,
                    "label": names[best],
                    "probabilities": {n: float(p) for n, p in zip(names, row, strict=True)},
                }
            )
        return {"model_id": "bare", "predictions": predictions}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def train_model(data_dir: Path) -> tuple[str, Path]:
    """A LeNet trained on digits through the real runner: (model id, checkpoint file)."""
    from core.artifacts import ArtifactStore
    from core.db import Database
    from core.jobs import queries
    from core.jobs.schemas import JobCreate
    from core.registry import queries as registry
    from core.settings import Settings
    from migrations.upgrade import upgrade
    from worker.runner import JobRunner

    settings = Settings(data_dir=data_dir)
    settings.ensure_dirs()
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    spec = JobCreate.model_validate(
        {
            "model": {"arch": "lenet", "config": {"activation": "relu"}},
            "dataset": {"name": "digits"},
            "hyperparameters": {"epochs": 2, "batch_size": 32, "lr": 0.1},
        }
    )
    with db.transaction() as session:
        job_id = queries.create_job(session, spec=spec, queue="cpu").id
    store = ArtifactStore(settings.artifacts)
    JobRunner(db=db, store=store, data_dir=settings.datasets_dir, worker_name="bench").run(job_id)
    with db.sessions() as session:
        model_id = registry.model_ids_for_jobs(session, job_ids=[job_id])[job_id]
        path = store.resolve(registry.get_model_row(session, model_id=model_id).checkpoint.path)
    db.engine.dispose()
    return model_id, path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server(command: list[str], env: dict[str, str], health_url: str, pin: bool) -> Any:
    """A server process, ready when `health_url` answers; stopped (by its pid) on exit."""
    if pin:
        command = ["taskset", "-c", "0", *command]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(health_url, timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command} did not start") from None
                time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


async def load(url: str, body: bytes, *, clients: int, seconds: float) -> dict[str, float]:
    """Closed loop: `clients` clients, one request in flight each, `seconds` after a warm-up."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    measuring = False
    connector = aiohttp.TCPConnector(limit=clients)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client(deadline: float) -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body) as response:
                        await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok = False
                if measuring:
                    if ok:
                        latencies.append(time.perf_counter() - started)
                    else:
                        errors += 1

        end = time.perf_counter() + 1.0 + seconds
        tasks = [asyncio.create_task(client(end)) for _ in range(clients)]
        await asyncio.sleep(1.0)
        measuring, began = True, time.perf_counter()
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - began
    latencies.sort()
    if not latencies:
        raise RuntimeError(f"{url}: no request succeeded ({errors} failed)")
    return {
        "rps": len(latencies) / wall,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "errors": errors,
    }


def forward_limit(checkpoint: Path) -> dict[int, float]:
    """In-process samples/s of the forward pass (preprocessed input, softmax), batch 1 and 32."""
    from core.serving.inference import load_model

    torch.set_num_threads(1)
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    loaded = load_model(payload, torch.device("cpu"))
    prep = loaded.preprocessing
    rates = {}
    for batch in (1, 32):
        inputs = torch.randn(batch, prep.in_channels, prep.input_size, prep.input_size)
        with torch.inference_mode():
            for _ in range(50):
                torch.softmax(loaded.net(inputs), dim=1)
            calls, started = 0, time.perf_counter()
            while time.perf_counter() - started < 2.0:
                torch.softmax(loaded.net(inputs), dim=1)
                calls += 1
        rates[batch] = calls * batch / (time.perf_counter() - started)
    return rates


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.pin:
        os.sched_setaffinity(0, {1})
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        data_dir = Path(folder)
        model_id, checkpoint = train_model(data_dir)
        env = {
            **os.environ,
            "D2L_DATA_DIR": str(data_dir),
            "D2L_TORCH_THREADS": "1",
            "D2L_LOG_LEVEL": "WARNING",
            "OMP_NUM_THREADS": "1",
        }
        ours_port, bare_port = free_port(), free_port()
        uvicorn_flags = ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
        ours = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory"]
        bare = [sys.executable, "-m", "bench.inference", "--serve-bare", str(checkpoint)]
        stack.enter_context(
            server(
                [*ours, *uvicorn_flags, "--port", str(ours_port)],
                env,
                f"http://127.0.0.1:{ours_port}/healthz",
                args.pin,
            )
        )
        stack.enter_context(
            server(
                [*bare, "--port", str(bare_port)],
                env,
                f"http://127.0.0.1:{bare_port}/healthz",
                args.pin,
            )
        )
        from core.datasets.digits import load_digits_raw

        body = json.dumps({"inputs": load_digits_raw().inputs[0].tolist()}).encode()
        urls = {
            "service": f"http://127.0.0.1:{ours_port}/v1/models/{model_id}/predict",
            "bare": f"http://127.0.0.1:{bare_port}/predict",
        }
        runs: dict[tuple[str, int], list[dict[str, float]]] = {}
        for clients in CONCURRENCY:
            for _ in range(args.rounds):  # in turn, so drift on a shared machine hits both
                for name, url in urls.items():
                    result = asyncio.run(load(url, body, clients=clients, seconds=args.seconds))
                    runs.setdefault((name, clients), []).append(result)
                    print(name, clients, {k: round(v, 2) for k, v in result.items()}, flush=True)
        if args.pin:
            os.sched_setaffinity(0, {0})  # the servers are stopped below; the limit uses core 0
        forward = forward_limit(checkpoint)
    return {
        "medians": {key: summarise(results) for key, results in runs.items()},
        "paired": {clients: paired(runs, clients) for clients in CONCURRENCY},
        "forward": forward,
        "body_bytes": len(body),
        "load": (load_before, os.getloadavg()[0]),
    }


def summarise(results: list[dict[str, float]]) -> dict[str, float]:
    """Median req/s and latencies over rounds; errors summed."""
    summary = {m: statistics.median(r[m] for r in results) for m in ("rps", "p50_ms", "p99_ms")}
    return summary | {"errors": sum(r["errors"] for r in results)}


def paired(runs: dict[tuple[str, int], list[dict[str, float]]], clients: int) -> dict[str, float]:
    """Median over rounds of (service / bare req/s) and (service - bare p50): each round times
    the two back to back, so the pair shares whatever else the machine was doing."""
    pairs = list(zip(runs[("service", clients)], runs[("bare", clients)], strict=True))
    return {
        "rps_ratio": statistics.median(ours["rps"] / bare["rps"] for ours, bare in pairs),
        "p50_diff_ms": statistics.median(ours["p50_ms"] - bare["p50_ms"] for ours, bare in pairs),
    }


def report(args: argparse.Namespace, measured: dict[str, Any]) -> str:
    medians, forward, paired_runs = measured["medians"], measured["forward"], measured["paired"]
    pinning = "servers on core 0, clients on core 1" if args.pin else "unpinned"
    command = "python -m bench.inference " + " ".join(sys.argv[1:])
    lines = [
        f"## Inference serving (CPU, {time.strftime('%Y-%m-%d')})",
        "",
        f"`{command}` on {platform.machine()} ({os.cpu_count()} cores, {pinning}), torch "
        f"{torch.__version__}, 1 torch thread per server, LeNet (ReLU) trained 2 epochs on digits, "
        f"body: one raw 8x8 digit ({measured['body_bytes']} bytes of JSON); medians of "
        f"{args.rounds} x {args.seconds:g} s, the two servers timed in turn (ratio and "
        "difference: medians of the rounds' pairs); load average "
        f"{measured['load'][0]:.1f} before, {measured['load'][1]:.1f} after:",
        "",
        "| clients | service req/s | service p50 / p99 ms | bare req/s | bare p50 / p99 ms "
        "| req/s ratio | p50 difference ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for clients in CONCURRENCY:
        ours, bare = medians[("service", clients)], medians[("bare", clients)]
        lines.append(
            f"| {clients} | {ours['rps']:,.0f} | {ours['p50_ms']:.2f} / {ours['p99_ms']:.2f} "
            f"| {bare['rps']:,.0f} | {bare['p50_ms']:.2f} / {bare['p99_ms']:.2f} "
            f"| {paired_runs[clients]['rps_ratio']:.2f}x "
            f"| {paired_runs[clients]['p50_diff_ms']:+.2f} |"
        )
    errors = sum(m["errors"] for m in medians.values())
    lines += [
        "",
        f"In-process forward pass (the limit, 1 thread): batch 1: {forward[1]:,.0f} samples/s; "
        f"batch 32: {forward[32]:,.0f} samples/s. Failed requests: {errors}.",
        "",
        "Goals: p50 at 1 client within 1.5 ms of the bare endpoint; at 32 clients >= 2x its req/s.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pin", action="store_true", help="servers on core 0, clients on 1")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server per level")
    parser.add_argument("--write", action="store_true", help="append the table to RESULTS.md")
    parser.add_argument("--peers", action="store_true", help="against TorchServe and LitServe")
    parser.add_argument("--peers-dir", default=str(ROOT.parent / "shared" / "peers"))
    parser.add_argument("--serve-bare", metavar="CHECKPOINT", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare, args.port)
        return
    if args.peers:
        from bench.inference_peers import compare_peers, peers_report

        command = "python -m bench.inference " + " ".join(sys.argv[1:])
        text = peers_report(args, compare_peers(args, server, free_port), command)
    else:
        text = report(args, measure(args))
    print(text)
    if args.write:
        with RESULTS.open("a") as results:
            results.write("\n" + text)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
