"""The service's tables as typed SQLAlchemy 2.0 ORM classes. Alembic owns the schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# A job in one of these may still run: what it names (a dataset, weights) must stay.
ACTIVE_STATUSES = ("queued", "running")


def utcnow() -> datetime:
    """Timezone-aware now, so SQLite and PostgreSQL rows compare the same way."""
    return datetime.now(UTC)


def new_id() -> str:
    """Server-generated ids: unguessable, and unique across worker machines."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps that come back timezone-aware (UTC) from SQLite too, which stores them naive."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Experiment(Base):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    jobs: Mapped[list[Job]] = relationship(back_populates="experiment")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_experiment_created", "experiment_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True, default="queued")
    queue: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    epoch: Mapped[int] = mapped_column(default=0)
    epochs: Mapped[int]
    worker: Mapped[str | None] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Reliability: deliveries so far, the running job's last sign of life, and a cancel request
    # the training loop honours at its next step.
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    heartbeat_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=false())
    # When its message (a sweep: its controller step) was last sent to the broker; a queued
    # job whose message the broker lost is sent again (worker/reaper.py). None: not known.
    sent_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    # Its worker is shutting down: stop at the next step and go back to the queue.
    requeue_requested: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Live progress within the current epoch, written with the heartbeat (not per step).
    step: Mapped[int] = mapped_column(default=0, server_default="0")
    epoch_steps: Mapped[int] = mapped_column(default=0, server_default="0")
    # Resident memory of the process training it, at the last heartbeat and at its peak: what
    # it held when the kernel's out-of-memory killer ended it.
    rss_bytes: Mapped[int | None] = mapped_column(BigInteger)
    peak_rss_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Who submitted it (the API token's owner; None when auth is off), and the sweep a trial
    # belongs to.
    owner: Mapped[str | None] = mapped_column(String(100), index=True)
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )

    experiment: Mapped[Experiment] = relationship(back_populates="jobs", lazy="joined")


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = (
        UniqueConstraint(
            "job_id", "epoch", "split", "name", name="uq_metrics_job_epoch_split_name"
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    step: Mapped[int]
    split: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("job_id", "epoch", name="uq_checkpoints_job_epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int]
    path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Model(Base):
    """A servable model: what a succeeded job produced, pointing at the checkpoint it serves."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id"))
    arch: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    checkpoint: Mapped[Checkpoint] = relationship(lazy="joined")
    job: Mapped[Job] = relationship(lazy="joined")


class ModelAlias(Base):
    """A name a model answers to: `name:<version>` (fixed once given), `name:latest`, or
    `name:production` (both move). A model an alias points at cannot be deleted."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("name", "tag", name="uq_model_aliases_name_tag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    tag: Mapped[str] = mapped_column(String(20))
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Dataset(Base):
    """An uploaded dataset; its files live in `datasets/uploads/<id>/` beside a meta.json copy."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    class_names: Mapped[list[str]] = mapped_column(JSON)
    raw_shape: Mapped[list[int]] = mapped_column(JSON)
    counts: Mapped[dict[str, Any]]
    num_examples: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    owner: Mapped[str | None] = mapped_column(String(100), index=True)


class UploadedWeights(Base):
    """A state_dict uploaded for fine-tuning, checked to load into its declared architecture."""

    __tablename__ = "uploaded_weights"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    filename: Mapped[str] = mapped_column(String(255))
    arch: Mapped[str] = mapped_column(String(50))
    config: Mapped[dict[str, Any]]
    in_channels: Mapped[int]
    num_classes: Mapped[int]
    input_size: Mapped[int]
    path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    owner: Mapped[str | None] = mapped_column(String(100), index=True)


class ApiToken(Base):
    """An API token: only its sha256 is stored; the secret is shown once, at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Worker(Base):
    """A worker process as it last reported itself: what it consumes and what it can train on."""

    __tablename__ = "workers"

    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    queues: Mapped[list[str]] = mapped_column(JSON)
    devices: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]
