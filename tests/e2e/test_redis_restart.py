"""Redis restarted while jobs wait: with persistence on (as docker-compose.yml runs it), no queued
job is lost; a worker started afterwards runs every one of them."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import yaml

from core.db import Database
from core.jobs import queries
from core.queue import JobQueue, make_celery
from core.settings import Settings
from core.tables import Job
from tests.e2e.processes import free_port, running, service_env
from tests.factories import job_spec, migrated
from tests.services import fresh_postgres_database

pytestmark = [pytest.mark.slow, pytest.mark.services]
COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


PASSWORD = "test-password"


def compose_redis_flags() -> list[str]:
    """The flags the deployment gives Redis (persistence, eviction, a password: ours stands in
    for the .env file's), so the test runs what compose runs."""
    command = yaml.safe_load(COMPOSE.read_text())["services"]["redis"]["command"]
    assert command[0] == "redis-server"
    flags = list(command[1:])
    for index, flag in enumerate(flags[:-1]):
        if flag == "--requirepass":
            flags[index + 1] = PASSWORD
    return flags


@contextmanager
def private_redis(port: int, data: Path, *, persistent: bool) -> Iterator[None]:
    """A private redis-server on `port`, keeping its files in `data`: with the deployment's
    flags and password (it saves on shutdown, as `docker compose restart redis` would), or
    keeping nothing across a restart (no RDB, no AOF, no password)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
    flags = compose_redis_flags() if persistent else ["--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, *flags], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=PASSWORD if persistent else None)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield
    finally:
        try:
            client.shutdown(nosave=not persistent)
        except redis.ConnectionError:
            pass
        process.wait(timeout=30)
        client.close()


def queue_three_jobs(settings: Settings, db: Database) -> list[str]:
    """Three small jobs stored and sent to the broker of `settings`."""
    spec = job_spec(
        model={"arch": "mlp", "config": {"hidden_sizes": [16]}},
        hyperparameters={"epochs": 1, "batch_size": 128, "layer_diagnostics": False},
    )
    job_queue = JobQueue(make_celery(settings), settings)
    job_ids = []
    for _ in range(3):
        with db.transaction() as session:
            job_ids.append(queries.create_job(session, spec=spec, queue="cpu").id)
        job_queue.enqueue(job_ids[-1], queue="cpu")
    return job_ids


def worker_runs(
    db: Database, job_ids: list[str], env: dict[str, str], log: Path, *, within_s: float
) -> list[Job]:
    """The jobs as they stand once a CPU worker has run them all (or `within_s` has passed)."""
    command = ["d2l-service", "worker", "-Q", "cpu", "--concurrency", "1"]
    with running(command, env, log):
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            with db.sessions() as session:
                jobs = [queries.get_job(session, job_id=i) for i in job_ids]
            if {job.status for job in jobs} == {"succeeded"}:
                break
            time.sleep(0.5)
    return jobs


def test_jobs_queued_before_a_redis_restart_all_run_after_it(tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "redis"
    data.mkdir()
    broker_url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    with fresh_postgres_database() as database_url:
        settings = Settings(
            data_dir=tmp_path / "data", database_url=database_url, broker_url=broker_url
        )
        db = migrated(settings)
        with private_redis(port, data, persistent=True):
            job_ids = queue_three_jobs(settings, db)
        with private_redis(port, data, persistent=True):  # the same files: the messages are back
            env = service_env(
                data_dir=str(settings.data_dir),
                database_url=database_url,
                broker_url=broker_url,
                torch_threads="1",
            )
            log = tmp_path / "worker.log"
            statuses = {job.status for job in worker_runs(db, job_ids, env, log, within_s=300)}
            assert statuses == {"succeeded"}, log.read_text()[-3000:]
        db.dispose()


def test_jobs_whose_messages_a_redis_restart_lost_are_sent_again_and_run(tmp_path: Path) -> None:
    """Redis restarted without persistence while 3 jobs waited: their messages are gone, but
    their rows say `queued`; a live worker's reaper publishes them again and each runs once."""
    port, data = free_port(), tmp_path / "redis"
    data.mkdir()
    broker_url = f"redis://127.0.0.1:{port}/0"
    with fresh_postgres_database() as database_url:
        settings = Settings(
            data_dir=tmp_path / "data", database_url=database_url, broker_url=broker_url
        )
        db = migrated(settings)
        with private_redis(port, data, persistent=False):
            job_ids = queue_three_jobs(settings, db)
        with private_redis(port, data, persistent=False):  # empty: the messages are lost
            env = service_env(
                data_dir=str(settings.data_dir),
                database_url=database_url,
                broker_url=broker_url,
                torch_threads="1",
                heartbeat_timeout_s="2",  # the reaper looks every second
                republish_queued_after_s="1",
            )
            log = tmp_path / "worker.log"
            jobs = worker_runs(db, job_ids, env, log, within_s=60)
            assert {job.status for job in jobs} == {"succeeded"}, log.read_text()[-3000:]
            assert [job.attempts for job in jobs] == [1, 1, 1]
            assert "its message is gone: sent again" in log.read_text()
        db.dispose()
