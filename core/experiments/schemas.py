"""Answers of GET /v1/experiments (each with its number of jobs), /{name} (a summary) and
/compare (a table of runs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Goal = Literal["max", "min"]


class ExperimentOut(BaseModel):
    name: str
    created_at: datetime
    jobs: int


class BestRun(BaseModel):
    job_id: str
    value: float
    arch: str
    model_id: str | None
    finished_at: datetime | None


class ExperimentSummary(BaseModel):
    name: str
    created_at: datetime
    jobs: int
    status_counts: dict[str, int] = Field(description="Every status, 0 where no job has it.")
    metric: str
    goal: Goal
    best: BestRun | None = Field(description="The succeeded run with the best `metric`.")


class RunRow(BaseModel):
    """One run of the comparison table."""

    job_id: str
    status: str
    kind: str
    arch: str
    dataset: str
    value: float | None = Field(description="The compared metric (final epoch, or the result's).")
    rank: int | None = Field(description="1 for the best run; null for runs without the metric.")
    settings: dict[str, Any] = Field(description="The settings that differ between the runs.")
    hyperparameters: dict[str, Any]
    config: dict[str, Any] = Field(description="The model's builder options.")
    final: dict[str, float] = Field(description="Last recorded epoch's metrics, split_name.")
    test: dict[str, float] = Field(description="The result's test metrics, where it has any.")
    gap: dict[str, float] = Field(
        description="Train vs validation: acc = train_acc - val_acc, loss = val_loss - train_loss."
    )
    parameters: int | None
    epochs: int
    wall_time_s: float | None
    model_id: str | None


class Comparison(BaseModel):
    experiment: str
    metric: str
    goal: Goal
    varying: list[str] = Field(description="Settings (dotted paths) whose values differ.")
    runs: list[RunRow]
