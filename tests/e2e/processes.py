"""Starting and stopping the service's real processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

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
