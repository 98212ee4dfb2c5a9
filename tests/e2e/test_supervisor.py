"""`d2l-service up` supervises the API and a worker: they die with it, even when it is killed with
SIGKILL, and each start's worker has a name of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import free_port, running, service_env, wait_for_job, wait_until_ready

pytestmark = pytest.mark.slow
TINY_JOB = {
    "model": {"arch": "mlp", "config": {"hidden_sizes": [16]}},
    "dataset": {"name": "digits"},
    "hyperparameters": {"epochs": 1, "batch_size": 256, "layer_diagnostics": False},
}


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, their children...), read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def wait_for_worker(base: str, count: int = 1) -> list[dict[str, object]]:
    for _ in range(240):  # the worker registers once it is ready
        workers: list[dict[str, object]] = httpx.get(f"{base}/v1/workers", timeout=10).json()
        if sum(bool(worker["alive"]) for worker in workers) >= count:
            return workers
        time.sleep(0.25)
    raise AssertionError(f"fewer than {count} workers registered")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads processes from /proc (Linux)")
def test_the_api_and_worker_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(data_dir=str(tmp_path / "data"), torch_threads="1")
    log = tmp_path / "up.log"
    with running(["d2l-service", "up", "--port", str(port)], env, log, cwd=tmp_path) as up:
        wait_until_ready(base, up, log)
        wait_for_worker(base)
        children = descendants(up.pid)  # the API, the worker and the worker's pool child
        assert len(children) >= 3, log.read_text()[-3000:]
        up.send_signal(signal.SIGKILL)
        up.wait()
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans = [pid for pid in children if alive(pid)]
        for pid in orphans:  # the test leaves nothing running, even when it fails
            os.kill(pid, signal.SIGKILL)
        assert not orphans, log.read_text()[-3000:]
    with socket.socket() as sock:  # no orphan holds the port: a second `up` can take it
        sock.bind(("127.0.0.1", port))


def test_two_ups_on_one_machine_have_workers_of_their_own(tmp_path: Path) -> None:
    """Two `up`s share a data directory; one stops. The other's worker keeps its own name, so
    the stop is not read as its own and it runs the next job."""
    env = service_env(data_dir=str(tmp_path / "data"), torch_threads="1")
    first_port, second_port = free_port(), free_port()
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first_base = f"http://127.0.0.1:{first_port}"
    # Migrated once first: two first starts on a fresh database would race to create it.
    subprocess.run(["d2l-service", "migrate"], env=env, check=True, capture_output=True)
    with (
        running(["d2l-service", "up", "--port", str(first_port)], env, first_log) as first,
        running(["d2l-service", "up", "--port", str(second_port)], env, second_log) as second,
    ):
        wait_until_ready(first_base, first, first_log)
        wait_until_ready(f"http://127.0.0.1:{second_port}", second, second_log)
        workers = wait_for_worker(first_base, count=2)
        assert len({worker["hostname"] for worker in workers}) == 2
        second.send_signal(signal.SIGTERM)  # its worker marks its own name stopping
        second.wait(timeout=60)
        submitted = httpx.post(f"{first_base}/v1/jobs", json=TINY_JOB, timeout=30)
        assert submitted.status_code == 202, submitted.text
        job = wait_for_job(first_base, submitted.json()["id"], timeout_s=45, logs=[first_log])
        assert job["status"] == "succeeded", job["error"]
        assert job["attempts"] == 1
