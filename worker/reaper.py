"""The reaper: running jobs whose heartbeat stopped go back to the queue (or fail for good),
and queued jobs whose message the broker lost are published again.

Every worker runs it beside its own heartbeat, so a job whose worker was killed outright (no
warm shutdown, no redelivery from the broker for a visibility timeout) is running again on a
live worker within about `D2L_HEARTBEAT_TIMEOUT_S`. Stale rows are locked with SKIP LOCKED
(PostgreSQL), so two reapers never handle the same job; the next attempt resumes from the job's
latest checkpoint (see `JobRunner`). A job whose cancel was asked for while its worker was away
ends `cancelled` here instead of going back.

The database is the source of truth for what waits: a queued job whose message is gone (Redis
restarted without persistence, an API killed between its commit and its publish) is published
again once it was last sent `D2L_REPUBLISH_QUEUED_AFTER_S` ago and the broker holds fewer
messages on its queue than there are queued jobs. A duplicate message is harmless: the task
claims the job under a row lock and leaves a running or finished one alone.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from core.db import Database
from core.jobs import queries
from core.jobs.lost_messages import queued_counts, sweeps_to_wake, unsent_jobs
from core.queue import JobQueue
from core.tables import Job, utcnow

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
            if not queries.requeue_job(session, job=job):
                log.warning("job %s cancelled: %s after its cancel was asked for", job.id, silent)
                continue
            requeued.append((job.id, job.queue, job.params))
            log.warning("job %s re-queued: %s", job.id, silent)
    for job_id, queue, params in requeued:  # after the commit: the taker sees "queued"
        job_queue.send_again(job_id, queue, params)
    return [job_id for job_id, _, _ in requeued]


def republish_lost(db: Database, job_queue: JobQueue, *, older_than_s: float) -> list[str]:
    """Publish again each job queued and last sent `older_than_s` ago on a queue where the
    broker holds fewer messages than jobs wait (a message was lost); the ids sent. A job that
    simply waits its turn behind others keeps its one message."""
    sent_before = utcnow() - timedelta(seconds=older_than_s)
    resend: list[tuple[str, str, dict[str, Any]]] = []
    with db.transaction() as session:
        unsent = unsent_jobs(session, sent_before=sent_before)
        if not unsent:
            return []
        queued = queued_counts(session)
        lost_on = {
            queue
            for queue in {job.queue for job in unsent}
            if job_queue.waiting(queue) < queued.get(queue, 0)
        }
        for job in unsent:
            if job.queue in lost_on:
                job.sent_at = utcnow()
                resend.append((job.id, job.queue, job.params))
    for job_id, queue, _ in resend:
        log.warning("job %s queued on %s but its message is gone: sent again", job_id, queue)
    for job_id, queue, params in resend:
        job_queue.send_again(job_id, queue, params)
    return [job_id for job_id, _, _ in resend]


def wake_sweeps(db: Database, job_queue: JobQueue, *, idle_s: float) -> list[str]:
    """Ask for a step of each sweep that could start (or conclude) trials and was not stepped
    for `idle_s`: its step was lost, or its owner had no room for trials then (a step is
    idempotent: one with nothing to do changes nothing). The ids stepped."""
    woken: list[Job] = []
    with db.transaction() as session:
        for sweep in sweeps_to_wake(session, sent_before=utcnow() - timedelta(seconds=idle_s)):
            sweep.sent_at = utcnow()
            woken.append(sweep)
    for sweep in woken:
        job_queue.enqueue_sweep_step(sweep.id, queue=sweep.queue)
    return [sweep.id for sweep in woken]
