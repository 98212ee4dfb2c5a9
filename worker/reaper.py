"""The reaper: running jobs whose heartbeat stopped go back to the queue (or fail for good).

Every worker runs it beside its own heartbeat, so a job whose worker was killed outright (no
warm shutdown, no redelivery from the broker for a visibility timeout) is running again on a
live worker within about `D2L_HEARTBEAT_TIMEOUT_S`. Stale rows are locked with SKIP LOCKED
(PostgreSQL), so two reapers never handle the same job; the next attempt resumes from the job's
latest checkpoint (see `JobRunner`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from core import queries
from core.db import Database
from core.queue import JobQueue
from core.tables import utcnow

log = logging.getLogger(__name__)


def reap(db: Database, job_queue: JobQueue, *, timeout_s: float, max_attempts: int) -> list[str]:
    """Re-queue (or fail, when out of attempts) every job silent for `timeout_s`; returns the
    ids sent back to the queue."""
    requeued: list[tuple[str, str, dict[str, Any]]] = []
    silent_since = utcnow() - timedelta(seconds=timeout_s)
    with db.transaction() as session:
        for job in queries.stale_jobs(session, silent_since=silent_since):
            silent = f"no heartbeat for {timeout_s:g} s from {job.worker}"
            if job.attempts >= max_attempts:
                queries.finish_job(
                    session,
                    job=job,
                    status="failed",
                    error=f"{silent}, after {job.attempts} attempts: giving up",
                )
                log.warning("job %s failed: %s", job.id, silent)
                continue
            queries.requeue_job(session, job=job)
            requeued.append((job.id, job.queue, job.params))
            log.warning("job %s re-queued: %s", job.id, silent)
    for job_id, queue, params in requeued:  # after the commit: the taker sees "queued"
        job_queue.enqueue(
            job_id,
            queue=queue,
            time_limit_s=params.get("time_limit_s"),
            priority=params.get("priority", "normal"),
        )
    return [job_id for job_id, _, _ in requeued]
