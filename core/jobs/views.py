"""What the API answers about a job (its views), and what a stored job request names: the
specifications themselves are core/jobs/schemas.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.jobs.kinds import get_kind, load_stored
from core.jobs.kinds.card import RequestSummary
from core.jobs.schemas import JobStatus
from core.recipes import BookComparison


class Progress(BaseModel):
    epoch: int = Field(description="Epochs done.")
    epochs: int = Field(description="Epochs planned (k-fold: every fold's and the final run's).")
    step: int = Field(default=0, description="Steps done in the epoch under way (live).")
    steps: int = Field(default=0, description="Steps in that epoch; 0 until it is known.")


class JobOut(BaseModel):
    """A job as GET /v1/jobs/{id} shows it."""

    id: str
    kind: str
    experiment: str
    status: JobStatus
    progress: Progress
    params: dict[str, Any]
    metrics: dict[str, float] = Field(description="The latest epoch's metrics, split_name: value.")
    result: dict[str, Any] | None
    error: str | None
    worker: str | None
    device: str | None
    model_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int = Field(
        default=0, description="Deliveries so far; above 1, a worker died and the job resumed."
    )
    cancel_requested: bool = Field(
        default=False, description="A cancel was asked for; the job stops at its next step."
    )
    rss_bytes: int | None = Field(
        default=None,
        description="Memory the process training it held at its last heartbeat (resident set).",
    )
    peak_rss_bytes: int | None = Field(
        default=None, description="The most memory that process held while training it."
    )
    book: BookComparison | None = Field(
        default=None, description="For a recipe job: the book's numbers beside this job's."
    )


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    limit: int
    offset: int


class MetricOut(BaseModel):
    epoch: int
    step: int
    split: str
    name: str
    value: float


class CheckpointOut(BaseModel):
    id: int
    epoch: int
    path: str
    sha256: str
    bytes: int
    created_at: datetime


def request_summary(params: dict[str, Any]) -> RequestSummary:
    """What a stored job's body names (its architecture, options, dataset, hyperparameters,
    recipe), read through its kind's card: the one reader of a stored body for listings."""
    spec = load_stored(params)
    return get_kind(spec.kind).summary(spec)
