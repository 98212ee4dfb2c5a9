"""`GET /v1/jobs/{id}/events`: a job's life as Server-Sent Events, read from the database.

The worker already commits every epoch's metrics and the job's progress to the database, so the
API follows a job by polling those rows: no broker, no pub/sub, and any number of readers, each
with its own cursor (the id of the last metric row it sent). Metric row ids grow in commit order
for a job (one worker writes it, one epoch per transaction), so every epoch is sent exactly once
and in order; a reconnecting EventSource resumes after its `Last-Event-ID`.

Events (the `data:` line is JSON):
- `status`: {status, worker, device, error} when the job's status changes (and first of all);
- `metrics`: {epoch, step, run, metrics} for each recorded epoch, `run` naming a k-fold fold
  (`c0/f2`) or null; per-layer diagnostics are left out (see GET /v1/jobs/{id}/metrics);
- `progress`: {epoch, epochs, step, elapsed_s, eta_s} when another epoch is done;
- `end`: {status, error, model_id} once the job has finished; the stream then closes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import OwnerDep
from api.openapi import text_content
from api.params import JobId
from core.auth.ownership import scope_to_owner
from core.db import Database
from core.errors import ServiceError
from core.jobs import queries
from core.jobs.metrics import LAYER_SPLIT, MetricKey, MetricPoint, metrics_after
from core.jobs.schemas import FINISHED_STATUSES
from core.registry import queries as registry
from core.tables import Job, utcnow

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
POLL_S = 0.5  # how often each reader looks for new rows
KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing a quiet stream
# A metric row's id, as the stream sends it: digits, and within a database bigint.
EVENT_ID_PATTERN = r"^[0-9]{1,18}$"


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any]
    id: str | None = None

    def encode(self) -> bytes:
        lines = [f"event: {self.kind}"]
        if self.id is not None:
            lines.append(f"id: {self.id}")
        lines.append(f"data: {json.dumps(self.data, separators=(',', ':'))}")
        return ("\n".join(lines) + "\n\n").encode()


@dataclass
class Cursor:
    """What one reader has been sent so far."""

    after_id: int = 0
    status: str | None = None
    epoch: int = 0
    step: int = 0
    in_epoch: int = 0  # steps done in the epoch under way, as last sent
    done: bool = False


def metric_events(points: Iterable[MetricPoint]) -> list[Event]:
    """One event per recorded epoch: consecutive rows of the same (epoch, step, run)."""
    events: list[Event] = []
    group: tuple[int, int, str | None] | None = None
    values: dict[str, float] = {}
    for point in points:
        run, _, split = point.split.rpartition("/")
        key = (point.epoch, point.step, run or None)
        if key != group:
            group, values = key, {}
            data = {"epoch": point.epoch, "step": point.step, "run": run or None, "metrics": values}
            events.append(Event("metrics", data))
        if split != LAYER_SPLIT:
            values[MetricKey(split, point.name).flat] = point.value
        events[-1] = Event("metrics", events[-1].data, id=str(point.id))  # id: the group's last row
    return events


def progress_event(job: Job, step: int) -> Event:
    """Epochs done of planned and steps done in the epoch under way (from the job's heartbeat),
    with an estimate of the time left from the pace so far. A finished job's time stops at its
    end: every later read tells the same elapsed_s."""
    ended = job.finished_at if job.status in FINISHED_STATUSES and job.finished_at else utcnow()
    elapsed = (ended - job.started_at).total_seconds() if job.started_at else None
    running = job.status == "running" and job.epoch_steps > 0
    in_epoch = min(job.step, job.epoch_steps) if running else 0
    done = job.epoch + (in_epoch / job.epoch_steps if running else 0.0)
    eta = None
    if elapsed is not None and done > 0:
        eta = round(elapsed / done * max(0.0, job.epochs - done), 1)
    data = {
        "epoch": job.epoch,
        "epochs": job.epochs,
        "epoch_step": in_epoch,
        "epoch_steps": job.epoch_steps if running else 0,
        "step": step,
        "elapsed_s": None if elapsed is None else round(elapsed, 1),
        "eta_s": eta,
    }
    return Event("progress", data)


def status_event(job: Job) -> Event:
    data = {"status": job.status, "worker": job.worker, "device": job.device, "error": job.error}
    return Event("status", data)


def poll(session: Session, *, job_id: str, cursor: Cursor) -> list[Event]:
    """What happened since the cursor. The job is read before its metrics: once it reads
    finished, every metric it recorded is already committed, so none is missed at the end."""
    job = queries.get_job(session, job_id=job_id)
    finished = job.status in FINISHED_STATUSES
    events = []
    if job.status != cursor.status and not finished:
        events.append(status_event(job))
    points = metrics_after(session, job_id=job_id, after_id=cursor.after_id)
    if points:
        cursor.after_id, cursor.step = points[-1].id, points[-1].step
        events.extend(metric_events(points))
    in_epoch = job.step if job.status == "running" else 0
    if job.epoch != cursor.epoch or in_epoch != cursor.in_epoch:
        cursor.epoch, cursor.in_epoch = job.epoch, in_epoch
        events.append(progress_event(job, cursor.step))
    if finished:
        if job.status != cursor.status:
            events.append(status_event(job))
        model_id = registry.model_ids_for_jobs(session, job_ids=[job.id]).get(job.id)
        data = {"status": job.status, "error": job.error, "model_id": model_id}
        events.append(Event("end", data))
        cursor.done = True
    cursor.status = job.status
    return events


def poll_once(db: Database, job_id: str, cursor: Cursor) -> list[Event]:
    """A short session per poll: a stream never holds a connection or a transaction open."""
    with db.sessions() as session:
        return poll(session, job_id=job_id, cursor=cursor)


async def event_stream(db: Database, job_id: str, cursor: Cursor) -> AsyncIterator[bytes]:
    quiet_s = 0.0
    while True:
        try:
            events = await run_in_threadpool(poll_once, db, job_id, cursor)
        except ServiceError as error:  # e.g. the job was deleted while followed
            yield Event("error", {"detail": str(error)}).encode()
            return
        for event in events:
            yield event.encode()
        if cursor.done:
            return
        quiet_s = 0.0 if events else quiet_s + POLL_S
        if quiet_s >= KEEPALIVE_S:
            quiet_s = 0.0
            yield b": keepalive\n\n"
        await anyio.sleep(POLL_S)


@router.get(
    "/{job_id}/events",
    summary="Follow a job live: status, every epoch's metrics, progress with ETA (SSE)",
    response_class=StreamingResponse,
    responses=text_content("text/event-stream", "Server-Sent Events, until the job ends"),
)
def job_events(
    job_id: JobId,
    request: Request,
    owner: OwnerDep,
    last_event_id: Annotated[
        str | None,
        Header(pattern=EVENT_ID_PATTERN, description="Resume after this event (an id it sent)."),
    ] = None,
) -> StreamingResponse:
    """Answers 404 at once for an unknown job; otherwise streams until the job ends."""
    db: Database = request.app.state.db
    with db.sessions() as session:  # not a request-long session: the stream may last hours
        queries.get_job(scope_to_owner(session, owner), job_id=job_id)
    cursor = Cursor(after_id=int(last_event_id or 0))
    return StreamingResponse(
        event_stream(db, job_id, cursor),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
