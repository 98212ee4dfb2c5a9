"""Running out of memory: what a job's process holds, and a job failed with a message that says
so, instead of a lost heartbeat.

Two ways a job runs out of host memory:
- an allocation fails inside the process (an address-space rlimit, no overcommit): torch raises,
  and the runner fails the job with `memory_failure`'s message;
- the kernel's out-of-memory killer ends the worker child with SIGKILL. Celery's parent process
  then sees `WorkerLostError` ("signal 9"), and would deliver the job again, to be killed again.
  `fail_if_killed_for_memory` fails it instead, saying how much it held at its last heartbeat,
  when the kernel's count of OOM kills (/proc/vmstat, and the cgroup's where there is one) went
  up while the job ran; any other SIGKILL (an operator's, a node drained) leaves the job to be
  resumed as before.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path

from core.db import Database
from core.jobs import queries
from core.jobs.memory_estimate import GIB

log = logging.getLogger(__name__)

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
# The kernel's counts of processes it killed for memory: the machine's, a cgroup v2's, a v1's.
OOM_COUNTERS = (
    Path("/proc/vmstat"),
    Path("/sys/fs/cgroup/memory.events"),
    Path("/sys/fs/cgroup/memory/memory.oom_control"),
)
SIGKILL = re.compile(r"signal 9\b|SIGKILL")


def resident_memory() -> tuple[int, int] | None:
    """(bytes resident now, peak since the last `reset_peak`) of this process; None off Linux."""
    try:
        lines = STATUS.read_text().splitlines()
    except OSError:
        return None
    values = {}
    for line in lines:
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    if len(values) < 2:
        return None
    return values["VmRSS"], values["VmHWM"]


def reset_peak() -> None:
    """Start counting this process's peak resident memory afresh (a prefork child runs many
    jobs; each job's peak is its own)."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:  # not Linux, or not allowed: the peak then spans the child's life
        pass


def oom_kills() -> int:
    """How many processes the kernel has killed for memory (machine and cgroup together)."""
    total = 0
    for path in OOM_COUNTERS:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill" and value.strip().isdigit():
                total += int(value)
    return total


def held(rss_bytes: int | None, peak_rss_bytes: int | None) -> str:
    """The memory a job's process held, as a message says it."""
    if rss_bytes is None:
        return "an unknown amount of memory (no heartbeat recorded it)"
    peak = f", {peak_rss_bytes / GIB:.2f} GiB at its peak" if peak_rss_bytes else ""
    return f"{rss_bytes / GIB:.2f} GiB at its last heartbeat{peak}"


HINT = (
    "Lower hyperparameters.batch_size or model.input_size, use precision bf16, or run it on "
    "a worker with more memory"
)


def fail_if_killed_for_memory(
    db: Database,
    *,
    job_id: str,
    worker: str,
    lost: str,
    oom_kills_before: int | None,
    died_before: datetime,
) -> bool:
    """Fail the job when its worker child died of SIGKILL from the OOM killer (the kernel's
    count went up since the job was taken); True when it did.

    Celery reports the loss a while after the death (`died_before`); by then the reaper may
    have queued the job again (it is failed all the same), but a job started again since
    then, elsewhere, is left alone."""
    if oom_kills_before is None or not SIGKILL.search(lost) or oom_kills() <= oom_kills_before:
        return False
    with db.transaction() as session:
        job = queries.lock_job(session, job_id=job_id)
        restarted = job.started_at is not None and job.started_at >= died_before
        if job.worker != worker or job.status not in ("running", "queued") or restarted:
            return False
        message = (
            "out of memory: the kernel's out-of-memory killer ended the worker process training "
            f"it (SIGKILL) while it held {held(job.rss_bytes, job.peak_rss_bytes)}. {HINT}"
        )
        queries.finish_job(session, job=job, status="failed", error=message)
    log.warning("job %s failed: %s", job_id, message)
    return True


def memory_failure(error: BaseException) -> str | None:
    """The message for a job whose process could not allocate memory, or None for any other
    error (torch's CPU allocator raises RuntimeError "can't allocate memory")."""
    if not (isinstance(error, MemoryError) or "can't allocate memory" in str(error)):
        return None
    now = resident_memory()
    amount = "an unknown amount of memory"
    if now is not None:
        amount = f"{now[0] / GIB:.2f} GiB ({now[1] / GIB:.2f} GiB at its peak)"
    return f"out of memory: an allocation failed while the job held {amount}: {error}. {HINT}"
