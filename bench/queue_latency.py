"""Queue latency and throughput: how fast a submitted job starts, and how many tiny jobs a minute
the workers get through, on the embedded deployment and on Redis + PostgreSQL, side by side.

For each broker (embedded: SQLite + the filesystem broker; redis: Redis + PostgreSQL) and each
number of workers (1, 2), one run:
1. a fresh database (and Redis database index, emptied before and after), migrated;
2. real worker processes, started as `d2l-service worker -Q cpu --concurrency 1` (how the
   end-to-end tests and the compose file start them), each registered before anything is sent;
3. warm-up jobs, not counted (the first job of a worker child imports and loads what it needs);
4. idle: `--jobs` jobs one after another, each submitted once the previous has finished, so a
   worker is idle and waiting when the job arrives: submission-to-start latency p50/p99;
5. burst: `--jobs` jobs submitted at once: jobs/minute from the first submission to the last
   finish, and the submission-to-start latency of the burst (mostly time waiting in the queue).

A submission is what POST /v1/jobs does after validation: insert the job row, commit, publish its
id. Latency runs from just before the insert to the job's `started_at` (the worker marks the job
running, on the same clock). The job is the smallest the service accepts: an MLP with one hidden
layer of 16 on digits, 1 epoch, batch 128, no per-layer diagnostics.

Run: python bench/queue_latency.py [--jobs 100] [--workers 1 2] [--brokers embedded redis] [--write]
(redis needs PostgreSQL at --postgres-admin-url and Redis at --redis-url; that index is emptied)
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text

from core.db import Database
from core.jobs import queries
from core.jobs.schemas import JobCreate
from core.queue import CPU_QUEUE, JobQueue, make_celery
from core.settings import Settings
from core.workers import list_workers
from migrations.upgrade import upgrade

RESULTS = Path(__file__).with_name("RESULTS.md")
TINY_JOB = {
    "experiment": "bench-queue",
    "model": {"arch": "mlp", "config": {"hidden_sizes": [16]}},
    "dataset": {"name": "digits"},
    "hyperparameters": {"epochs": 1, "batch_size": 128, "lr": 0.1, "layer_diagnostics": False},
}
FINISHED = ("succeeded", "failed", "cancelled")
POLL_S = 0.005


@dataclass(frozen=True)
class Row:
    broker: str
    workers: int
    idle_p50_ms: float
    idle_p99_ms: float
    burst_p50_ms: float
    burst_p99_ms: float
    jobs_per_minute: float


@contextmanager
def deployment(
    broker: str, scratch: Path, args: argparse.Namespace
) -> Iterator[tuple[Settings, dict[str, str]]]:
    """Settings for the bench process, and the D2L_* environment of the worker processes."""
    data_dir = scratch / f"{broker}-{uuid.uuid4().hex[:6]}"
    values = {"data_dir": str(data_dir), "torch_threads": "1", "log_level": "WARNING"}
    with ExitStack() as stack:
        if broker == "redis":
            values["database_url"] = stack.enter_context(fresh_postgres(args.postgres_admin_url))
            values["broker_url"] = stack.enter_context(empty_redis(args.redis_url))
        settings = Settings(**values)  # type: ignore[arg-type]
        settings.ensure_dirs()
        upgrade(settings.database_url)
        env = {key: value for key, value in os.environ.items() if not key.startswith("D2L_")}
        env.update({f"D2L_{key.upper()}": value for key, value in values.items()})
        yield settings, env


@contextmanager
def fresh_postgres(admin_url: str) -> Iterator[str]:
    name = f"d2l_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def empty_redis(url: str) -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@contextmanager
def workers(count: int, env: dict[str, str], log_dir: Path) -> Iterator[list[str]]:
    """`count` real worker processes; SIGTERM (a warm shutdown), by pid, on exit."""
    names = [f"w{index}@bench" for index in range(1, count + 1)]
    processes = []
    try:
        for name in names:
            log = (log_dir / f"{name.split('@')[0]}.log").open("wb")
            command = ["d2l-service", "worker", "--hostname", name, "-Q", CPU_QUEUE]
            command += ["--concurrency", "1", "--loglevel", "WARNING"]
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
        yield names
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_registered(db: Database, names: list[str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with db.sessions() as session:
            seen = {worker.hostname for worker in list_workers(session)}
        if set(names) <= seen:
            return
        time.sleep(0.2)
    raise RuntimeError(f"workers {names} did not start within {timeout_s:g}s")


def submit(db: Database, job_queue: JobQueue, spec: JobCreate) -> tuple[str, datetime]:
    """What POST /v1/jobs does once the body is valid: row, commit, then publish the id."""
    submitted_at = datetime.now(UTC)
    with db.transaction() as session:
        job_id = queries.create_job(session, spec=spec, queue=CPU_QUEUE).id
    job_queue.enqueue(job_id, queue=CPU_QUEUE)
    return job_id, submitted_at


def wait_finished(db: Database, job_ids: list[str], timeout_s: float = 900) -> None:
    deadline = time.monotonic() + timeout_s
    pending = set(job_ids)
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} jobs unfinished after {timeout_s:g}s")
        with db.sessions() as session:
            pending = {
                job_id
                for job_id in pending
                if queries.get_job(session, job_id=job_id).status not in FINISHED
            }
        if pending:
            time.sleep(POLL_S if len(pending) == 1 else 0.1)


def outcomes(db: Database, submitted: dict[str, datetime]) -> tuple[list[float], datetime | None]:
    """Submission-to-start latencies (ms), and the last finish; every job must have succeeded."""
    latencies = []
    last_finish = None
    with db.sessions() as session:
        for job_id, submitted_at in submitted.items():
            job = queries.get_job(session, job_id=job_id)
            if job.status != "succeeded" or job.started_at is None or job.finished_at is None:
                raise RuntimeError(f"job {job_id} ended {job.status}: {job.error}")
            started = job.started_at.replace(tzinfo=job.started_at.tzinfo or UTC)
            finished = job.finished_at.replace(tzinfo=job.finished_at.tzinfo or UTC)
            latencies.append((started - submitted_at).total_seconds() * 1000)
            last_finish = finished if last_finish is None else max(last_finish, finished)
    return latencies, last_finish


def measure(broker: str, count: int, jobs: int, scratch: Path, args: argparse.Namespace) -> Row:
    spec = JobCreate.model_validate(TINY_JOB)
    with deployment(broker, scratch, args) as (settings, env):
        db = Database(settings.database_url)
        job_queue = JobQueue(make_celery(settings), settings)
        with workers(count, env, settings.data_dir) as names:
            wait_registered(db, names)
            warm = [submit(db, job_queue, spec)[0] for _ in range(2 * count)]
            wait_finished(db, warm)
            time.sleep(0.5)

            idle: dict[str, datetime] = {}
            for _ in range(jobs):
                job_id, submitted_at = submit(db, job_queue, spec)
                idle[job_id] = submitted_at
                wait_finished(db, [job_id])
                time.sleep(0.05)  # the worker acknowledges and waits for the next message
            idle_latencies, _ = outcomes(db, idle)

            burst = dict(submit(db, job_queue, spec) for _ in range(jobs))
            wait_finished(db, list(burst))
            burst_latencies, last_finish = outcomes(db, burst)
        db.dispose()
    assert last_finish is not None
    span_s = (last_finish - min(burst.values())).total_seconds()
    idle_p50, idle_p99 = np.percentile(idle_latencies, [50, 99])
    burst_p50, burst_p99 = np.percentile(burst_latencies, [50, 99])
    return Row(
        broker,
        count,
        float(idle_p50),
        float(idle_p99),
        float(burst_p50),
        float(burst_p99),
        jobs / span_s * 60,
    )


def table(rows: list[Row], jobs: int) -> str:
    lines = [
        f"| broker | workers | idle: start p50 (ms) | idle: start p99 (ms) | burst of {jobs}: "
        "start p50 (ms) | burst: start p99 (ms) | burst: jobs/minute |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {"embedded": "embedded (SQLite + filesystem)", "redis": "Redis + PostgreSQL"}
    for row in rows:
        lines.append(
            f"| {names[row.broker]} | {row.workers} | {row.idle_p50_ms:,.0f} | "
            f"{row.idle_p99_ms:,.0f} | {row.burst_p50_ms:,.0f} | {row.burst_p99_ms:,.0f} | "
            f"{row.jobs_per_minute:,.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--brokers", nargs="+", choices=("embedded", "redis"), default=["embedded", "redis"]
    )
    parser.add_argument(
        "--postgres-admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="emptied!")
    parser.add_argument("--write", action="store_true", help="append the table to RESULTS.md")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="d2l-bench-queue-") as scratch:
        for broker in args.brokers:
            for count in args.workers:
                started = time.monotonic()
                rows.append(measure(broker, count, args.jobs, Path(scratch), args))
                print(f"{broker}, {count} worker(s): {time.monotonic() - started:.0f}s", flush=True)
    command = "python " + " ".join(["bench/queue_latency.py", *sys.argv[1:]])
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    text_out = (
        f"## Queue latency and throughput (CPU, {datetime.now(UTC):%Y-%m-%d})\n\n"
        f"`{command}` on {machine}; tiny jobs (MLP 16 on digits, 1 epoch), workers with "
        "`--concurrency 1`, 1 torch thread each.\n\n" + table(rows, args.jobs) + "\n"
    )
    print(text_out)
    if args.write:
        with RESULTS.open("a") as results:
            results.write("\n" + text_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
