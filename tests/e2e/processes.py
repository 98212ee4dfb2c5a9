"""Starting and stopping the service's real processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from core.db import Database
from core.jobs import queries
from core.jobs.schemas import JobCreate
from core.queue import JobQueue, make_celery
from core.settings import Settings
from core.tables import Job
from tests.factories import job_spec

STARTUP_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(**settings: str) -> dict[str, str]:
    """The test's environment without any D2L_* of the developer's, plus `settings`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("D2L_")}
    env.update({f"D2L_{key.upper()}": value for key, value in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def running(
    command: Sequence[str], env: dict[str, str], log_path: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose output goes to `log_path`; SIGTERM (then SIGKILL) when the test ends."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=45)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"service exited with {process.returncode}:\n{log_path.read_text()}"
            )
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"service not ready after {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()}")


def wait_for_job(
    base_url: str, job_id: str, *, timeout_s: float, logs: Sequence[Path]
) -> dict[str, Any]:
    """Poll the job until it finishes; its final JSON."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = httpx.get(f"{base_url}/v1/jobs/{job_id}", timeout=10).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(1)
    tails = "\n".join(path.read_text()[-4000:] for path in logs)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout_s}s:\n{tails}")


# Fault injection: a LeNet job slow enough (batch 4: ~300 steps an epoch) to be interrupted
# mid-epoch, real worker processes to interrupt, and a way to wait on what they wrote.
SLOW_LENET = {
    "model": {"arch": "lenet", "config": {"activation": "relu"}},
    "hyperparameters": {"epochs": 5, "batch_size": 4, "lr": 0.02, "seed": 7},
}


def slow_lenet_spec(epochs: int = 5) -> JobCreate:
    hyperparameters = SLOW_LENET["hyperparameters"] | {"epochs": epochs}
    return job_spec(**(SLOW_LENET | {"hyperparameters": hyperparameters}))


def enqueue_job(db: Database, settings: Settings, spec: JobCreate) -> str:
    """Store `spec` as a queued job and publish it on the cpu queue, as the API would."""
    with db.transaction() as session:
        job_id = queries.create_job(session, spec=spec, queue="cpu").id
    JobQueue(make_celery(settings), settings).enqueue(job_id, queue="cpu")
    return job_id


def read_job(db: Database, job_id: str) -> Job:
    with db.sessions() as session:
        return queries.get_job(session, job_id=job_id)


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


def wait_for(condition: Callable[[], bool], timeout_s: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out:\n" + "\n".join(log.read_text()[-3000:] for log in logs))
