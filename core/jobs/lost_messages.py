"""Queued rows whose broker message may be gone, and sweeps whose controller waits for a step.

The database is the source of truth: a job is `queued` until a worker claims it. Its message can
still vanish (Redis restarted without persistence, an API process killed between its commit and
its publish), and a sweep's step can be lost, or held back until its owner has room for trials.
The reaper (worker/reaper.py) finds them here; rows are locked with SKIP LOCKED (PostgreSQL), so
two reapers never send the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from core.jobs.kind_registry import controlled_kinds, worker_run_kinds
from core.jobs.sweep_queries import sweep_settings
from core.tables import ACTIVE_STATUSES, Job


def unsent_jobs(session: Session, *, sent_before: datetime) -> Sequence[Job]:
    """Queued jobs (not sweeps) last sent to the broker before `sent_before`, oldest first,
    locked; rows another reaper holds are skipped."""
    query = (
        select(Job)
        .where(Job.status == "queued", Job.kind.in_(worker_run_kinds()))
        .where(or_(Job.sent_at.is_(None), Job.sent_at < sent_before))
        .order_by(Job.created_at)
        .with_for_update(of=Job, skip_locked=True)
    )
    return session.scalars(query).unique().all()


def queued_counts(session: Session) -> dict[str, int]:
    """queue -> how many jobs wait on it (sweeps take no message of their own)."""
    rows = session.execute(
        select(Job.queue, func.count())
        .where(Job.status == "queued", Job.kind.in_(worker_run_kinds()))
        .group_by(Job.queue)
    )
    return {queue: count for queue, count in rows}


def sweeps_to_wake(session: Session, *, sent_before: datetime) -> list[Job]:
    """Unfinished sweeps not stepped since `sent_before` that could start a trial (fewer
    queued or running than `max_concurrent`, fewer made than `trials`) or conclude: their
    step was lost, or held back until their owner had room. Locked, as `unsent_jobs`."""
    query = (
        select(Job)
        .where(Job.kind.in_(controlled_kinds()), Job.status.in_(ACTIVE_STATUSES))
        .where(or_(Job.sent_at.is_(None), Job.sent_at < sent_before))
        .with_for_update(of=Job, skip_locked=True)
    )
    sweeps = session.scalars(query).unique().all()
    if not sweeps:
        return []
    active = case((Job.status.in_(ACTIVE_STATUSES), 1), else_=0)
    counts = {
        parent: (made, running)
        for parent, made, running in session.execute(
            select(Job.parent_id, func.count(), func.sum(active))
            .where(Job.parent_id.in_([sweep.id for sweep in sweeps]))
            .group_by(Job.parent_id)
        )
    }
    waiting = []
    for sweep in sweeps:
        settings = sweep_settings(sweep)
        made, running = counts.get(sweep.id, (0, 0))
        if running == 0 or (running < settings.max_concurrent and made < settings.total_trials):
            waiting.append(sweep)
    return waiting
