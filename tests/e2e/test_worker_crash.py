"""Fault injection: SIGKILL a whole worker mid-epoch; another worker finishes the job as if nothing
had happened (the reaper re-queues it, the runner resumes from the last checkpoint)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from core import queries
from core.db import Database
from core.migrate import upgrade
from core.queue import JobQueue, make_celery
from core.settings import Settings
from tests.e2e.processes import service_env
from tests.factories import job_spec
from worker.engine import fit

pytestmark = pytest.mark.slow

SPEC = {
    "model": {"arch": "lenet", "config": {"activation": "relu"}},
    "hyperparameters": {"epochs": 5, "batch_size": 4, "lr": 0.02, "seed": 7},
}


@contextmanager
def worker(name: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker in its own process group, so the test can kill all of it at once."""
    command = ["d2l-service", "worker", "--hostname", f"{name}@crash", "-Q", "cpu,gpu"]
    command += ["--concurrency", "1", "--loglevel", "INFO"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_for(condition, timeout_s: float, logs: list[Path]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out:\n" + "\n".join(log.read_text()[-3000:] for log in logs))


def test_a_job_whose_worker_is_killed_mid_epoch_resumes_and_ends_as_if_uninterrupted(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", heartbeat_timeout_s=3, torch_threads=1)
    settings.ensure_dirs()
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    env = service_env(data_dir=str(settings.data_dir), heartbeat_timeout_s="3", torch_threads="1")
    spec = job_spec(**SPEC)
    with db.transaction() as session:
        job_id = queries.create_job(session, spec=spec, queue="cpu").id
    JobQueue(make_celery(settings), settings).enqueue(job_id, queue="cpu")

    def epoch() -> int:
        with db.sessions() as session:
            return queries.get_job(session, job_id=job_id).epoch

    first_log, second_log = tmp_path / "w1.log", tmp_path / "w2.log"
    with worker("w1", env, first_log) as first:
        wait_for(lambda: epoch() >= 2, 300, [first_log])
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool child, no warning
        first.wait()
    killed_after = epoch()
    assert killed_after == 2  # epoch 3 was under way

    with worker("w2", env, second_log):

        def finished() -> bool:
            with db.sessions() as session:
                return queries.get_job(session, job_id=job_id).status != "running" and epoch() == 5

        wait_for(finished, 300, [first_log, second_log])
    with db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "succeeded", job.error
        assert (job.worker, job.attempts) == ("w2@crash", 2)
        # an epoch shows as done once its checkpoint is durable: the resume starts right there
        assert job.result is not None and job.result["resumed_after_epoch"] == killed_after
        train_losses = [m for m in queries.list_metrics(session, job_id=job_id, name="loss")]
        assert sorted(m.epoch for m in train_losses if m.split == "train") == [1, 2, 3, 4, 5]
    assert "re-queued" in second_log.read_text()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers trained
    try:
        expected = fit(spec, device=torch.device("cpu"), data_dir=settings.datasets_dir)
    finally:
        torch.set_num_threads(threads)
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "steps"):
        assert job.result[key] == pytest.approx(expected[key], rel=1e-6), key
    db.dispose()
