"""The workers that ever reported: what each consumes, what it trains on, and whether it is
alive (its heartbeat) or stopping. Admission and GET /v1/workers read them; workers write them.

A worker counts as alive while its heartbeat is younger than `D2L_HEARTBEAT_TIMEOUT_S`, the
same silence after which the reaper takes its running jobs back: the callers pass that setting
in as `within_s`, so the two never disagree about a worker."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.tables import Worker, utcnow


def register_worker(
    session: Session, *, hostname: str, queues: list[str], devices: list[dict[str, Any]]
) -> None:
    """A worker (re)started: record what it consumes and what it trains on."""
    worker = session.get(Worker, hostname) or Worker(hostname=hostname)
    worker.queues, worker.devices = queues, devices
    worker.started_at = worker.last_seen = utcnow()
    worker.stopped_at = None
    session.add(worker)


def touch_worker(session: Session, *, hostname: str, stopped: bool = False) -> None:
    """The worker is alive now (heartbeat), or has begun stopping; only a restart
    (`register_worker`) makes a stopping worker a running one again."""
    worker = session.get(Worker, hostname)
    if worker is None:
        return
    worker.last_seen = utcnow()
    if stopped and worker.stopped_at is None:
        worker.stopped_at = worker.last_seen


def worker_stopping(session: Session, *, hostname: str) -> bool:
    """Whether `hostname` has begun (or finished) shutting down: it must start no more jobs."""
    worker = session.get(Worker, hostname)
    return worker is not None and worker.stopped_at is not None


def list_workers(session: Session) -> Sequence[Worker]:
    """Every worker that ever reported, most recently seen first."""
    return session.scalars(select(Worker).order_by(Worker.last_seen.desc())).all()


def is_alive(worker: Worker, *, now: datetime, within_s: float) -> bool:
    """Running and heard from within `within_s` (the heartbeat timeout): the one test of a live
    worker (the API's list, /metrics and memory admission)."""
    return worker.stopped_at is None and now - worker.last_seen < timedelta(seconds=within_s)


def live_workers(session: Session, *, within_s: float) -> list[Worker]:
    """The workers running now (`is_alive`), most recently seen first: those a job can go to."""
    now = utcnow()
    return [w for w in list_workers(session) if is_alive(w, now=now, within_s=within_s)]
