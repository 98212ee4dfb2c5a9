"""Per-owner bounds on jobs: a rate over the last minute and a cap on waiting jobs.

Both are counted in the database, so they hold across API processes and machines. Two requests
racing may each pass the check and overshoot by one: a bound against floods, not an invoice.

A sweep's trials are jobs like any other: each counts against its owner's cap while it waits and
against the rate when it is made. The sweep's controller (worker/sweep_control.py) makes trials
only while there is `room`, and holds the rest back until there is (the reaper steps a waiting
sweep again); a sweep itself takes no queue slot (it holds no worker), but its submission counts
against the rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core.errors import TooManyRequestsError
from core.jobs.kind_registry import worker_run_kinds
from core.settings import Settings
from core.tables import Job, utcnow

WINDOW = timedelta(seconds=60)
QUEUED_RETRY_S = 30


@dataclass(frozen=True)
class Quota:
    """An owner's bounds: jobs waiting at once, and jobs made in any 60 s; 0: no bound."""

    max_queued: int = 0
    per_minute: int = 0

    @classmethod
    def of(cls, settings: Settings) -> Quota:
        return cls(settings.max_queued_per_owner, settings.submit_rate_per_minute)


def _owned_by(owner: str | None) -> ColumnElement[bool]:
    return Job.owner.is_(None) if owner is None else Job.owner == owner


def _queued(session: Session, owner: str | None) -> int:
    """The owner's jobs waiting for a worker, trials included (not sweeps: they take none)."""
    query = select(func.count()).where(
        _owned_by(owner), Job.status == "queued", Job.kind.in_(worker_run_kinds())
    )
    return session.scalar(query) or 0


def _recent(session: Session, owner: str | None, *, now: datetime, limit: int) -> list[datetime]:
    """When the owner's newest jobs (trials and sweeps included) of the last minute were made,
    newest first, at most `limit`."""
    query = (
        select(Job.created_at)
        .where(_owned_by(owner), Job.created_at > now - WINDOW)
        .order_by(Job.created_at.desc())
        .limit(limit)
    )
    return list(session.scalars(query).all())


def room(session: Session, *, owner: str | None, quota: Quota) -> int | None:
    """How many more jobs `owner` may have made now (None: no bound)."""
    left: list[int] = []
    if quota.max_queued:
        left.append(quota.max_queued - _queued(session, owner))
    if quota.per_minute:
        made = _recent(session, owner, now=utcnow(), limit=quota.per_minute)
        left.append(quota.per_minute - len(made))
    return max(0, min(left)) if left else None


def check_quota(session: Session, *, owner: str | None, settings: Settings) -> None:
    """TooManyRequestsError (429, with Retry-After) when `owner` may not submit another job."""
    who = f"owner {owner!r}" if owner is not None else "this service"
    cap = settings.max_queued_per_owner
    if cap:
        queued = _queued(session, owner)
        if queued >= cap:
            raise TooManyRequestsError(
                f"{who} has {queued} jobs waiting (a sweep's trials count too), the most "
                f"allowed (D2L_MAX_QUEUED_PER_OWNER={cap}); submit again when some have "
                "started, or cancel some",
                retry_after_s=QUEUED_RETRY_S,
            )
    rate = settings.submit_rate_per_minute
    if rate:
        now = utcnow()
        recent = _recent(session, owner, now=now, limit=rate)
        if len(recent) >= rate:
            retry_s = math.ceil((WINDOW - (now - recent[-1])).total_seconds())
            raise TooManyRequestsError(
                f"{who} made {rate} jobs in the last minute (a sweep's trials count too), the "
                f"most allowed (D2L_SUBMIT_RATE_PER_MINUTE={rate}); retry in {retry_s} s",
                retry_after_s=retry_s,
            )
