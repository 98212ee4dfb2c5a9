"""Device `all`: one job on every GPU with DistributedDataParallel (the course's `try_all_gpus`).

A Celery prefork child is a daemonic process, and daemonic processes may not start children of
their own through `multiprocessing`, so the job is handed to PyTorch's own launcher
(`torch.distributed.run`, what `torchrun` runs) as a separate program: one process per GPU,
NCCL between them. Rank 0 records metrics and checkpoints through the same callbacks an
in-process job uses; every rank reads the job from the database by id, as a task does.

Run by the launcher, never by hand: `python -m worker.distributed JOB_ID --data-dir DIR
--artifact-url DIR|URL --database-url-file FILE --result FILE [--backend nccl|gloo]`. The
database URL travels in a private file, never on the command line, where `ps` would show its
password; object-store credentials come from the settings (environment) the ranks inherit.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from core.artifacts import BaseArtifactStore, open_artifact_url
from core.db import Database
from core.settings import get_settings
from worker.batches import DataPlan
from worker.job_training import Workbench, fit_job
from worker.recording import recording_callbacks
from worker.training_state import Callbacks, JobCancelled, Shard

log = logging.getLogger(__name__)

RENDEZVOUS_TIMEOUT = timedelta(minutes=5)
POLL_S = 0.5  # how often the launcher's parent looks for a cancel request
STOP_GRACE_S = 30.0


class DistributedJobError(RuntimeError):
    """The data-parallel processes did not finish the job."""


def launch(
    job_id: str,
    *,
    processes: int,
    db: Database,
    store: BaseArtifactStore,
    data_dir: Path,
    backend: str = "nccl",
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Train job `job_id` on `processes` ranks and return rank 0's result (or raise its error).

    When `should_stop` turns true (the job was cancelled) the ranks are stopped and
    `JobCancelled` raised; their last checkpoint is kept."""
    with tempfile.TemporaryDirectory(prefix="d2l-ddp-") as scratch:
        result_file = Path(scratch) / "result.json"
        url_file = Path(scratch) / "database_url"
        url_file.touch(mode=0o600)
        url_file.write_text(db.url)
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={processes}",
            "-m",
            "worker.distributed",
            job_id,
            f"--data-dir={data_dir}",
            f"--artifact-url={store.url}",
            f"--database-url-file={url_file}",
            f"--result={result_file}",
            f"--backend={backend}",
        ]
        log.info("job %s: DistributedDataParallel on %d processes (%s)", job_id, processes, backend)
        returncode = supervise(subprocess.Popen(command), should_stop)
        if result_file.exists():
            outcome = json.loads(result_file.read_text())
            if "error" in outcome:
                raise DistributedJobError(outcome["error"])
            if returncode == 0:
                return dict(outcome["result"])
        raise DistributedJobError(
            f"the {processes} data-parallel processes exited with code {returncode} "
            "before finishing; the worker's log has their output"
        )


def supervise(ranks: subprocess.Popen[bytes], should_stop: Callable[[], bool]) -> int:
    """Wait for the launcher; stop it (it stops its ranks) when the job is cancelled."""
    while True:
        try:
            return ranks.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            if should_stop():
                ranks.terminate()
                try:
                    ranks.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    ranks.kill()
                    ranks.wait()
                raise JobCancelled("stopped while training on several GPUs") from None


def rank_main(argv: list[str] | None = None) -> int:
    """One rank: join the group, train its shard, and (rank 0) write the outcome."""
    args = parse_args(argv)
    dist.init_process_group(backend=args.backend, timeout=RENDEZVOUS_TIMEOUT)  # torchrun's env
    rank, world = dist.get_rank(), dist.get_world_size()
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level,
        format=f"%(asctime)s %(levelname)s rank{rank} %(name)s: %(message)s",
    )
    settings.apply_torch_threads()
    device = torch.device("cpu")
    if args.backend == "nccl":  # one node (--standalone): the rank is the GPU's index
        device = torch.device(f"cuda:{rank}")
        torch.cuda.set_device(device)
    bench = Workbench(
        db=Database(args.database_url_file.read_text().strip()),
        store=open_artifact_url(args.artifact_url, settings.artifact_storage_options),
        data_dir=args.data_dir,
        data_plan=DataPlan.from_settings(settings),
    )
    spec = bench.load_spec(args.job_id)
    shard = Shard(rank=rank, world=world)
    callbacks = Callbacks()
    if shard.leader:
        keep = spec.hyperparameters.keep_checkpoints
        callbacks = recording_callbacks(bench.db, bench.store, args.job_id, keep_checkpoints=keep)
    try:
        result = fit_job(bench, args.job_id, spec, device, callbacks, shard=shard)
        outcome: dict[str, Any] = {"result": result}
        # The group is torn down collectively: a rank that finished first (rank 0 still tests
        # and checkpoints) and destroyed it alone sometimes aborted in gloo's threads.
        dist.barrier()
    except Exception as error:  # every rank meets the same error (NaN is detected on all)
        log.exception("rank %d failed", rank)
        outcome = {"error": f"{type(error).__name__}: {error}"}
    finally:
        dist.destroy_process_group()
    if shard.leader:
        args.result.write_text(json.dumps(outcome))
    return 0 if "result" in outcome else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m worker.distributed")
    parser.add_argument("job_id")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--artifact-url", required=True, help="a directory or fsspec URL")
    parser.add_argument("--database-url-file", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--backend", choices=("nccl", "gloo"), default="nccl")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(rank_main())
