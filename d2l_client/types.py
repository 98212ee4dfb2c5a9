"""The shapes of the service's JSON answers, for editors and type checkers.

`total=False`: the server may add fields; the client never fails because it did."""

from __future__ import annotations

from typing import Any, TypedDict


class Progress(TypedDict):
    epoch: int
    epochs: int
    step: int  # steps done in the epoch under way (while running)
    steps: int  # steps in that epoch; 0 until known


class JobInfo(TypedDict, total=False):
    id: str
    kind: str
    experiment: str
    status: str
    progress: Progress
    params: dict[str, Any]
    metrics: dict[str, float]
    result: dict[str, Any] | None
    error: str | None
    worker: str | None
    device: str | None
    model_id: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    cancel_requested: bool
    book: dict[str, Any] | None  # a recipe job: the book's numbers beside this job's


class JobPage(TypedDict):
    items: list[JobInfo]
    total: int
    limit: int
    offset: int


class MetricPoint(TypedDict):
    epoch: int
    step: int
    split: str
    name: str
    value: float


class ExperimentInfo(TypedDict, total=False):
    name: str
    created_at: str
    jobs: int


class PredictResponse(TypedDict):
    model_id: str
    predictions: list[dict[str, Any]]


FINISHED = frozenset({"succeeded", "failed", "cancelled"})
