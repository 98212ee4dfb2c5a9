"""Per-owner bounds on job submission: a rate over the last minute and a cap on waiting jobs.

Both are counted in the database, so they hold across API processes and machines. Two requests
racing may each pass the check and overshoot by one: a bound against floods, not an invoice.
Sweep trials are created by the sweep, not submitted, and are not counted.
"""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core.errors import TooManyRequestsError
from core.settings import Settings
from core.tables import Job, utcnow

WINDOW = timedelta(seconds=60)
QUEUED_RETRY_S = 30


def _submitted_by(owner: str | None) -> ColumnElement[bool]:
    mine = Job.owner.is_(None) if owner is None else Job.owner == owner
    return mine & Job.parent_id.is_(None)


def check_quota(session: Session, *, owner: str | None, settings: Settings) -> None:
    """TooManyRequestsError (429, with Retry-After) when `owner` may not submit another job."""
    who = f"owner {owner!r}" if owner is not None else "this service"
    cap = settings.max_queued_per_owner
    if cap:
        queued = session.scalar(
            select(func.count()).where(_submitted_by(owner), Job.status == "queued")
        )
        if queued is not None and queued >= cap:
            raise TooManyRequestsError(
                f"{who} has {queued} jobs waiting, the most allowed (D2L_MAX_QUEUED_PER_OWNER="
                f"{cap}); submit again when some have started, or cancel some",
                retry_after_s=QUEUED_RETRY_S,
            )
    rate = settings.submit_rate_per_minute
    if rate:
        now = utcnow()
        recent = session.scalars(
            select(Job.created_at)
            .where(_submitted_by(owner), Job.created_at > now - WINDOW)
            .order_by(Job.created_at.desc())
            .limit(rate)
        ).all()
        if len(recent) >= rate:
            retry_s = math.ceil((WINDOW - (now - recent[-1])).total_seconds())
            raise TooManyRequestsError(
                f"{who} submitted {rate} jobs in the last minute, the most allowed "
                f"(D2L_SUBMIT_RATE_PER_MINUTE={rate}); retry in {retry_s} s",
                retry_after_s=retry_s,
            )
