"""Several worker processes on Redis + PostgreSQL with a shared artifact directory: every job runs
exactly once, on one worker or the other, and waiting jobs start in priority order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from core.artifacts import ArtifactStore
from core.db import Database
from core.jobs import queries
from core.queue import JobQueue, make_celery
from core.settings import Settings
from tests.e2e.processes import running, service_env
from tests.factories import job_spec, migrated
from tests.services import fresh_postgres_database, fresh_redis_url

pytestmark = [pytest.mark.slow, pytest.mark.services]

TINY = {
    "model": {"arch": "mlp", "config": {"hidden_sizes": [16]}},
    "hyperparameters": {"epochs": 1, "batch_size": 128, "lr": 0.1, "layer_diagnostics": False},
}


@contextmanager
def cluster(tmp_path: Path) -> Iterator[tuple[Settings, Database, dict[str, str]]]:
    """A fresh PostgreSQL database and Redis db, migrated; settings as every process sees them."""
    with fresh_postgres_database() as database_url, fresh_redis_url() as broker_url:
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=database_url,
            broker_url=broker_url,
            artifact_dir=tmp_path / "shared-artifacts",
            torch_threads=1,
        )
        db = migrated(settings)
        env = service_env(
            data_dir=str(settings.data_dir),
            database_url=database_url,
            broker_url=broker_url,
            artifact_dir=str(settings.artifacts),
            torch_threads="1",
        )
        try:
            yield settings, db, env
        finally:
            db.dispose()


def worker_command(name: str) -> list[str]:
    return [
        "d2l-service",
        "worker",
        "--hostname",
        f"{name}@many",
        "-Q",
        "cpu",
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
    ]


def submit(db: Database, job_queue: JobQueue, **overrides: object) -> str:
    spec = job_spec(**TINY, **overrides)
    with db.transaction() as session:
        job_id = queries.create_job(session, spec=spec, queue="cpu").id
    job_queue.enqueue(job_id, queue="cpu", priority=spec.priority)
    return job_id


def wait_until_finished(db: Database, job_ids: list[str], logs: list[Path]) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        with db.sessions() as session:
            statuses = [queries.get_job(session, job_id=job_id).status for job_id in job_ids]
        if all(status in ("succeeded", "failed", "cancelled") for status in statuses):
            return
        time.sleep(0.5)
    raise AssertionError("jobs unfinished:\n" + "\n".join(p.read_text()[-3000:] for p in logs))


def test_two_workers_share_twenty_jobs_each_run_exactly_once(tmp_path: Path) -> None:
    with cluster(tmp_path) as (settings, db, env):
        job_queue = JobQueue(make_celery(settings), settings)
        job_ids = [submit(db, job_queue, experiment="many") for _ in range(20)]
        logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
        with ExitStack() as stack:
            for name, log in zip(("w1", "w2"), logs, strict=True):
                stack.enter_context(running(worker_command(name), env, log))
            wait_until_finished(db, job_ids, logs)
        store = ArtifactStore(settings.artifacts)
        with db.sessions() as session:
            jobs = [queries.get_job(session, job_id=job_id) for job_id in job_ids]
            assert {job.status for job in jobs} == {"succeeded"}
            assert {job.attempts for job in jobs} == {1}  # none ran twice
            assert {job.worker for job in jobs} == {"w1@many", "w2@many"}  # both took some
            for job in jobs:
                checkpoints = queries.list_checkpoints(session, job_id=job.id)
                assert [c.epoch for c in checkpoints] == [1]
                store.load_checkpoint(checkpoints[0].path, sha256=checkpoints[0].sha256)
        started = "\n".join(log.read_text() for log in logs).count("started: mlp")
        assert started == 20


def test_waiting_jobs_start_in_priority_order(tmp_path: Path) -> None:
    with cluster(tmp_path) as (settings, db, env):
        job_queue = JobQueue(make_celery(settings), settings)
        order = ["low", "normal", "high", "low", "high"]
        job_ids = [submit(db, job_queue, priority=priority) for priority in order]
        log = tmp_path / "w1.log"
        with running(worker_command("w1"), env, log):  # starts after all five wait
            wait_until_finished(db, job_ids, [log])
        with db.sessions() as session:
            started = {
                job_id: queries.get_job(session, job_id=job_id).started_at for job_id in job_ids
            }
        by_start = sorted(job_ids, key=lambda job_id: started[job_id])
        ranks = [order[job_ids.index(job_id)] for job_id in by_start]
        assert ranks == ["high", "high", "normal", "low", "low"]
