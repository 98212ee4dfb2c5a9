"""Reads and writes of jobs and their checkpoints: keyword-only, one transaction per caller."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from core.artifacts import StoredFile
from core.auth.ownership import ALL_OWNERS
from core.errors import ConflictError, NotFoundError
from core.jobs.kind_registry import JobSpec, get_kind, worker_run_kinds
from core.tables import (
    Checkpoint,
    Experiment,
    Job,
    Model,
    utcnow,
)

CANCELLED_AWAY = "cancelled while its worker was away; checkpoints are kept"


def get_or_create_experiment(session: Session, *, name: str) -> Experiment:
    """The experiment called `name`, created on first use."""
    # Across owners: experiment names are one namespace, and each owner sees only their jobs.
    experiment = session.scalar(
        select(Experiment).where(Experiment.name == name), execution_options={ALL_OWNERS: True}
    )
    if experiment is None:
        experiment = Experiment(name=name)
        session.add(experiment)
        session.flush()
    return experiment


def create_job(
    session: Session,
    *,
    spec: JobSpec,
    queue: str,
    owner: str | None = None,
    parent_id: str | None = None,
) -> Job:
    """A queued job row holding the validated spec as JSON, with the epochs its kind's card
    plans in all; `parent_id` links a sweep's trial."""
    experiment = get_or_create_experiment(session, name=spec.experiment)
    job = Job(
        experiment=experiment,
        kind=spec.kind,
        status="queued",
        queue=queue,
        params=spec.model_dump(mode="json"),
        epochs=get_kind(spec.kind).planned_epochs(spec),
        owner=owner,
        parent_id=parent_id,
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, job_id: str) -> Job:
    """The job `job_id`, or NotFoundError."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"no job with id {job_id!r}")
    return job


def list_jobs(
    session: Session,
    *,
    experiment: str | None,
    status: str | None,
    limit: int,
    offset: int,
    parent: str | None = None,
) -> tuple[Sequence[Job], int]:
    """A page of jobs, newest first, and how many match in all (`parent`: a sweep's trials)."""
    query = select(Job)
    if parent is not None:
        query = query.where(Job.parent_id == parent)
    if experiment is not None:
        query = query.join(Job.experiment).where(Experiment.name == experiment)
    if status is not None:
        query = query.where(Job.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = session.scalars(
        query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    )
    return page.unique().all(), total


def lock_job(session: Session, *, job_id: str) -> Job:
    """The job, locked until the transaction ends, so that starting, cancelling, reaping it and
    stepping a sweep never interleave. A no-op UPDATE comes first: SQLite ignores SELECT ... FOR
    UPDATE and its driver begins no transaction for a read, so without it a cancel could read a
    job as queued while a worker was starting it (which then trained on, cancelled)."""
    touch = update(Job).where(Job.id == job_id).values(kind=Job.kind)
    session.execute(touch.execution_options(synchronize_session=False))
    query = (
        select(Job)
        .where(Job.id == job_id)
        .with_for_update(of=Job)
        .execution_options(populate_existing=True)  # fresh, not what the session saw before
    )
    job = session.scalars(query).unique().one_or_none()
    if job is None:
        raise NotFoundError(f"no job with id {job_id!r}")
    return job


def mark_running(session: Session, *, job: Job, worker: str, device: str) -> None:
    """The job started (again) on `worker`, training on `device`: one more attempt."""
    job.status = "running"
    job.worker = worker
    job.device = device
    job.started_at = utcnow()
    job.heartbeat_at = job.started_at
    job.attempts += 1
    job.error = None


def beat(
    session: Session,
    *,
    job_id: str,
    step: int = 0,
    epoch_steps: int = 0,
    rss_bytes: int | None = None,
    peak_rss_bytes: int | None = None,
) -> tuple[bool, bool]:
    """Refresh a running job's heartbeat, its progress within the epoch and the memory its
    process holds; whether it is asked to (cancel, go back to the queue)."""
    job = get_job(session, job_id=job_id)
    job.heartbeat_at = utcnow()
    job.step, job.epoch_steps = step, epoch_steps
    if rss_bytes is not None:
        job.rss_bytes, job.peak_rss_bytes = rss_bytes, peak_rss_bytes
    return job.cancel_requested, job.requeue_requested


def request_requeue(session: Session, *, worker: str) -> list[str]:
    """Ask every job running on `worker` (which is shutting down) to stop at its next step and
    go back to the queue; their ids."""
    jobs = session.scalars(select(Job).where(Job.worker == worker, Job.status == "running")).all()
    for job in jobs:
        job.requeue_requested = True
    return [job.id for job in jobs]


def request_cancel(session: Session, *, job: Job) -> None:
    """A queued job is cancelled at once (it will never start); a running one is asked to stop
    at its next step, keeping its checkpoints."""
    if job.status == "queued":
        finish_job(session, job=job, status="cancelled", error="cancelled before it started")
    elif job.status == "running":
        job.cancel_requested = True
    else:
        raise ConflictError(f"job {job.id} is already {job.status}; there is nothing to cancel")


def stale_jobs(session: Session, *, silent_since: datetime) -> Sequence[Job]:
    """Running jobs with no heartbeat since `silent_since` (their worker died), locked; rows
    another reaper holds are skipped, so each stale job is handled once."""
    query = (
        select(Job)
        .where(Job.status == "running")
        .where(Job.kind.in_(worker_run_kinds()))  # a sweep's controller sends no heartbeat
        .where(or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < silent_since))
        .with_for_update(of=Job, skip_locked=True)
    )
    return session.scalars(query).unique().all()


def requeue_job(session: Session, *, job: Job, shutdown: bool = False) -> bool:
    """Back in the queue after its worker died (or, `shutdown`, stopped it to shut down: not a
    failed attempt); the next attempt resumes from its checkpoint. A job whose cancel was asked
    for ends `cancelled` instead and never trains again: whether it went back (the caller then
    publishes it)."""
    if job.cancel_requested:
        finish_job(session, job=job, status="cancelled", error=CANCELLED_AWAY)
        return False
    job.status = "queued"
    job.heartbeat_at = None
    job.requeue_requested = False
    job.sent_at = utcnow()
    if shutdown:
        job.attempts = max(0, job.attempts - 1)
    return True


def finish_job(
    session: Session,
    *,
    job: Job,
    status: str,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """The job ended: succeeded with a result, or failed/cancelled with the reason."""
    job.status = status
    job.result = result
    job.error = error
    job.finished_at = utcnow()


def add_checkpoint(session: Session, *, job_id: str, epoch: int, stored: StoredFile) -> Checkpoint:
    """Record a checkpoint file that is already durable on disk (replacing a re-run epoch's)."""
    previous = session.scalar(
        select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.epoch == epoch)
    )
    if previous is not None:
        session.delete(previous)
        session.flush()
    checkpoint = Checkpoint(
        job_id=job_id, epoch=epoch, path=stored.path, sha256=stored.sha256, bytes=stored.bytes
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


def list_checkpoints(session: Session, *, job_id: str) -> Sequence[Checkpoint]:
    """A job's checkpoints, oldest first."""
    query = select(Checkpoint).where(Checkpoint.job_id == job_id).order_by(Checkpoint.epoch)
    return session.scalars(query).all()


def prune_checkpoints(session: Session, *, job_id: str, keep: int) -> list[str]:
    """Drop all but the newest `keep` checkpoint rows; returns the paths whose files can go."""
    checkpoints = list(list_checkpoints(session, job_id=job_id))
    served = set(session.scalars(select(Model.checkpoint_id).where(Model.job_id == job_id)))
    doomed = [c for c in checkpoints[: max(0, len(checkpoints) - keep)] if c.id not in served]
    for checkpoint in doomed:
        session.delete(checkpoint)
    return [checkpoint.path for checkpoint in doomed]
