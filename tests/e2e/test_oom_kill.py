"""Fault injection: the kernel's out-of-memory killer ends a real worker's pool child mid-job.
Celery's parent process sees the child lost to SIGKILL, finds the kernel's count of OOM kills
went up, and fails the job saying it ran out of memory and how much it held, instead of sending
it round again to die the same way (and failing it, in the end, for "no heartbeat")."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from core.settings import Settings
from tests.e2e.processes import (
    enqueue_job,
    read_job,
    service_env,
    slow_lenet_spec,
    wait_for,
    worker,
)
from tests.factories import migrated

pytestmark = pytest.mark.slow


def pool_children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_child_killed_by_the_oom_killer_fails_its_job_saying_so(tmp_path: Path) -> None:
    # Celery reports a lost child 10 s after it died; the reaper waits longer (as by default).
    settings = Settings(data_dir=tmp_path / "data", heartbeat_timeout_s=30, torch_threads=1)
    db = migrated(settings)
    counter = tmp_path / "vmstat"  # the kernel's count of OOM kills, as the worker reads it
    counter.write_text("oom_kill 0\n")
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "from pathlib import Path\nimport worker.oom\n"
        f"worker.oom.OOM_COUNTERS = (Path({str(counter)!r}),)\n"
    )
    env = service_env(data_dir=str(settings.data_dir), heartbeat_timeout_s="30", torch_threads="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), env.get("PYTHONPATH")]))
    job_id = enqueue_job(db, settings, slow_lenet_spec(epochs=200))  # minutes: killed first
    log = tmp_path / "worker.log"
    with worker("w1", env, log) as process:
        wait_for(lambda: read_job(db, job_id).rss_bytes is not None, 300, [log])
        (child,) = pool_children(process.pid)
        counter.write_text("oom_kill 1\n")  # what the kernel counts as it kills the child
        os.kill(child, signal.SIGKILL)
        wait_for(lambda: read_job(db, job_id).status == "failed", 60, [log])
        job = read_job(db, job_id)
        assert process.poll() is None  # the worker lives on, with a new child
    assert job.status == "failed", job.error
    assert job.error is not None and job.error.startswith("out of memory")
    assert "GiB at its last heartbeat" in job.error and "batch_size" in job.error
    assert job.attempts == 1  # not delivered again to be killed again
    db.dispose()
