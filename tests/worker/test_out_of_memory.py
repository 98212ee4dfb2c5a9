"""A job that runs out of memory fails saying so, with what it held: an allocation refused
inside the process, or the kernel's out-of-memory killer ending the worker child. Any other
SIGKILL leaves the job to be resumed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.db import Database
from core.jobs import queries
from core.jobs.memory_estimate import GIB
from core.settings import Settings
from core.tables import utcnow
from tests.factories import add_job, migrated
from worker import oom


def test_an_allocation_the_process_is_refused_fails_the_job_saying_it_ran_out_of_memory(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    db = migrated(settings)
    with db.transaction() as session:  # weights alone: 8 GB (VGG's dense layer at 1024x1024)
        job_id = add_job(session, model={"arch": "vgg", "input_size": 1024}).id
    db.dispose()
    script = textwrap.dedent(
        f"""
        import resource
        from pathlib import Path
        from core.artifacts import ArtifactStore
        from core.db import Database
        from worker.runner import JobRunner

        size = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
        limit = size + {2 * GIB}  # the process may grow by 2 GiB of address space, no more
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        JobRunner(
            db=Database({settings.database_url!r}),
            store=ArtifactStore(Path({str(settings.artifacts)!r})),
            data_dir=Path({str(settings.datasets_dir)!r}),
            worker_name="capped",
        ).run({job_id!r})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    db = Database(settings.database_url)
    with db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
    assert job.status == "failed", job.error
    assert job.error is not None and job.error.startswith("out of memory: an allocation failed")
    assert "GiB" in job.error and "batch_size" in job.error
    db.dispose()


@pytest.fixture
def counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kernel's count of OOM kills, as a file the test controls."""
    path = tmp_path / "vmstat"
    path.write_text("pgfault 12\noom_kill 3\n")
    monkeypatch.setattr(oom, "OOM_COUNTERS", (path,))
    return path


def running_job(db: Database) -> str:
    with db.transaction() as session:
        job = add_job(session)
        queries.mark_running(session, job=job, worker="w@test", device="cpu")
        queries.beat(session, job_id=job.id, rss_bytes=9 * GIB + GIB // 2, peak_rss_bytes=10 * GIB)
        return job.id


def test_an_oom_kill_of_the_worker_child_fails_the_job_with_what_it_held(
    sqlite_db: Database, counter: Path
) -> None:
    job_id = running_job(sqlite_db)
    before = oom.oom_kills()
    counter.write_text("pgfault 12\noom_kill 4\n")  # the kernel killed one process since
    lost = "Worker exited prematurely: signal 9 (SIGKILL) Job: 0."
    assert oom.fail_if_killed_for_memory(
        sqlite_db,
        job_id=job_id,
        worker="w@test",
        lost=lost,
        oom_kills_before=before,
        died_before=utcnow(),
    )
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
    assert job.status == "failed" and job.error is not None
    assert "out-of-memory killer" in job.error
    assert "9.50 GiB at its last heartbeat, 10.00 GiB at its peak" in job.error


def test_any_other_sigkill_leaves_the_job_to_be_resumed(sqlite_db: Database, counter: Path) -> None:
    job_id = running_job(sqlite_db)
    lost = "Worker exited prematurely: signal 9 (SIGKILL) Job: 0."
    assert not oom.fail_if_killed_for_memory(
        sqlite_db,
        job_id=job_id,
        worker="w@test",
        lost=lost,
        oom_kills_before=oom.oom_kills(),
        died_before=utcnow(),
    )
    with sqlite_db.sessions() as session:
        assert queries.get_job(session, job_id=job_id).status == "running"
