"""Our predict endpoint beside TorchServe and LitServe (../shared/peers), in one run, one machine.

`python -m bench.inference --pin --peers` (see bench/inference.py) calls `compare_peers`:
1. registers the peers' network in a fresh data dir: the course's LeNet (sigmoid, average
   pooling) with random weights (seed 0), taking one raw 28x28 sample with identity
   preprocessing (the peers' `torch.manual_seed(0)` model and body);
2. starts each server in turn, pinned to core 0: ours as bench/inference.py starts it (uvicorn,
   the app factory, 1 torch thread), then the peers' scenarios as their `bench_peers.py` starts
   them (its `scenarios()`, `wait_ready`, `stop_tree`);
3. warms each up (unrecorded load at 32 clients: the JVM's JIT, caches), then drives it with the
   peers' own load generator (`loadgen.py`, their venv, pinned to core 1) and its default body
   ({"inputs": 28x28 random floats, seed 0}: 16 KB of JSON) at 1, 8 and 32 clients, `--rounds`
   times each, and keeps the medians.

Every server is first asked once for that body and must answer 200 with 10 probabilities.
`loadgen.py --check` is not used for ours, whose answer wraps them in `predictions` (the
preflight checks it); loadgen counts any non-2xx answer as an error for every server.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

PEER_SCENARIOS = ("torchserve-batch", "torchserve-nobatch", "litserve-batch", "litserve-nobatch")
CONCURRENCY = (1, 8, 32)


def peer_model(data_dir: Path) -> str:
    """The peers' LeNet, registered as a model of a (synthetic) succeeded job: its id."""
    import models
    from core.artifacts import ArtifactStore
    from core.db import Database
    from core.jobs import queries
    from core.jobs.schemas import JobCreate
    from core.preprocessing import Preprocessing
    from core.registry import queries as registry
    from core.settings import Settings
    from migrations.upgrade import upgrade

    settings = Settings(data_dir=data_dir)
    settings.ensure_dirs()
    upgrade(settings.database_url)
    torch.manual_seed(0)
    net = models.get_model("lenet", in_channels=1, num_classes=10, input_size=28)
    prep = Preprocessing(
        raw_shape=(28, 28), in_channels=1, input_size=28, scale=1.0, mean=(0.0,), std=(1.0,)
    )
    class_names = [str(digit) for digit in range(10)]
    record = {
        "arch": "lenet",
        "config": {},
        "in_channels": 1,
        "num_classes": 10,
        "input_size": 28,
        "class_names": class_names,
        "preprocessing": prep.to_dict(),
        "task": "classification",
    }
    db = Database(settings.database_url)
    spec = JobCreate.model_validate(
        {"model": {"arch": "lenet"}, "dataset": {"name": "fashion_mnist"}}
    )
    with db.transaction() as session:
        job = queries.create_job(session, spec=spec, queue="cpu")
        stored = ArtifactStore(settings.artifacts).save_payload(
            f"jobs/{job.id}/epoch-0001.pt", {**record, "state_dict": net.state_dict(), "epoch": 1}
        )
        checkpoint = queries.add_checkpoint(session, job_id=job.id, epoch=1, stored=stored)
        result = {k: record[k] for k in ("task", "class_names", "preprocessing")}
        queries.finish_job(session, job=job, status="succeeded", result=result)
        model_id = registry.create_model(session, job=job, checkpoint=checkpoint, arch="lenet").id
    db.engine.dispose()
    return model_id


def load_peers_harness(peers_dir: Path) -> ModuleType:
    """The peers' `bench_peers.py` as a module (its scenarios and process handling)."""
    spec = importlib.util.spec_from_file_location("bench_peers", peers_dir / "bench_peers.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"no bench_peers.py in {peers_dir}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def peers_body() -> bytes:
    """loadgen.py's default body, made the same way: 28x28 random floats, seed 0."""
    rng = random.Random(0)
    return json.dumps({"inputs": [[rng.random() for _ in range(28)] for _ in range(28)]}).encode()


def preflight(url: str, body: bytes) -> None:
    """One request: 200 with 10 probabilities (ours inside `predictions`), or RuntimeError."""
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    first = answer["predictions"][0] if "predictions" in answer else answer
    if len(first.get("probabilities", ())) != 10:
        raise RuntimeError(f"{url} answered {str(answer)[:200]}")


def drive(
    loadgen: Path, python: str, url: str, *, clients: int, seconds: float, warmup: float, pin: bool
) -> dict[str, Any]:
    """One loadgen.py run (pinned to core 1 with `pin`): its JSON result line."""
    command = [python, str(loadgen), url, "-c", str(clients), "-t", str(seconds)]
    command += ["--warmup", str(warmup), "--json-out", "/dev/stdout"]
    if pin:
        command = ["taskset", "-c", "1", *command]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + warmup + 60)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stdout}\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure_server(
    name: str, url: str, args: argparse.Namespace, loadgen: Path, python: str
) -> list[dict[str, Any]]:
    """Warm-up, then every concurrency level `args.rounds` times: the loadgen results."""
    preflight(url, peers_body())
    common = {"seconds": args.seconds, "pin": args.pin}
    warm = drive(loadgen, python, url, clients=32, warmup=0, **{**common, "seconds": 10.0})
    print(f"# {name}: warm-up 10 s at 32 clients: {warm['rps']} req/s", flush=True)
    results = []
    for clients in CONCURRENCY:
        for _ in range(args.rounds):
            result = drive(loadgen, python, url, clients=clients, warmup=1.0, **common)
            result["scenario"] = name
            results.append(result)
            print(
                f"{name:20s} c={clients:<3d} rps={result['rps']:8.1f} p50={result['p50_ms']:7.2f} "
                f"p99={result['p99_ms']:7.2f} errors={result['errors']} "
                f"client_cpu={result['client_cpu_pct']:.0f}%",
                flush=True,
            )
    return results


def compare_peers(args: argparse.Namespace, server: Any, free_port: Any) -> dict[str, Any]:
    """Run every server in turn; the results of each (see the module docstring)."""
    peers_dir = Path(args.peers_dir).resolve()
    harness = load_peers_harness(peers_dir)
    loadgen, python = peers_dir / "loadgen.py", harness.PEERS_PY
    if args.pin:
        os.sched_setaffinity(0, {1})
    load_before = os.getloadavg()[0]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        model_id = peer_model(Path(folder))
        env = {
            **os.environ,
            "D2L_DATA_DIR": folder,
            "D2L_TORCH_THREADS": "1",
            "D2L_LOG_LEVEL": "WARNING",
            "OMP_NUM_THREADS": "1",
        }
        port = free_port()
        ours = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host"]
        ours += ["127.0.0.1", "--log-level", "warning", "--no-access-log", "--port", str(port)]
        with server(ours, env, f"http://127.0.0.1:{port}/healthz", args.pin):
            url = f"http://127.0.0.1:{port}/v1/models/{model_id}/predict"
            results += measure_server("d2l-service (ours)", url, args, loadgen, python)
    harness.become_subreaper()
    scenarios = harness.scenarios(free_port())
    for name in PEER_SCENARIOS:
        scenario = scenarios[name]
        command = (["taskset", "-c", "0"] if args.pin else []) + scenario["cmd"]
        with open(f"/tmp/bench_peers_{name}.log", "w") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd="/tmp"
            )
        try:
            print(f"# {name}: ready in {harness.wait_ready(scenario, process):.1f} s", flush=True)
            results += measure_server(name, scenario["url"], args, loadgen, python)
        finally:
            harness.stop_tree(process.pid)
            time.sleep(0.5)
            harness.reap()
    return {"results": results, "load": (load_before, os.getloadavg()[0])}


def peers_report(args: argparse.Namespace, measured: dict[str, Any], command: str) -> str:
    """A markdown section: the table of medians (min-max of req/s) per server and level."""
    pinning = "servers on core 0, load generator on core 1" if args.pin else "unpinned"
    lines = [
        f"## Inference serving against TorchServe and LitServe (CPU, {time.strftime('%Y-%m-%d')})",
        "",
        f"`{command}` on {os.cpu_count()} cores ({pinning}), torch {torch.__version__}; the "
        "peers' LeNet (random weights, seed 0) and body (one raw 28x28 sample, 16 KB of JSON), "
        "driven by their `loadgen.py`; each server warmed up 10 s at 32 clients, then "
        f"{args.rounds} x {args.seconds:g} s per level (medians; req/s min-max); load average "
        f"{measured['load'][0]:.1f} before, {measured['load'][1]:.1f} after:",
        "",
        "| server | clients | req/s (min-max) | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    by_key: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for result in measured["results"]:
        by_key.setdefault((result["scenario"], result["c"]), []).append(result)
    for (name, clients), runs in by_key.items():
        rps = [run["rps"] for run in runs]
        p50 = statistics.median(run["p50_ms"] for run in runs)
        p99 = statistics.median(run["p99_ms"] for run in runs)
        lines.append(
            f"| {name} | {clients} | {statistics.median(rps):,.0f} ({min(rps):,.0f}-"
            f"{max(rps):,.0f}) | {p50:.2f} | {p99:.2f} | {sum(run['errors'] for run in runs)} |"
        )
    return "\n".join(lines) + "\n"
