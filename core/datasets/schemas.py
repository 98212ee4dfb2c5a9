"""What GET/POST /v1/datasets answer: built-in and uploaded datasets in one shape."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

DatasetSource = Literal["builtin", "torchvision", "synthetic", "upload"]


class DatasetOut(BaseModel):
    """A dataset a job can name in `dataset.name` (its `id`)."""

    id: str = Field(description="The name jobs use: a built-in name or an upload's id.")
    name: str
    source: DatasetSource
    description: str
    raw_shape: list[int] = Field(description="One raw sample, as predictions take it.")
    in_channels: int
    task: Literal["classification", "regression"] = Field(
        description="What a model trained on it predicts: a class, or one value."
    )
    class_names: list[str] = Field(
        description="The classes; for a regression, the name of the predicted value."
    )
    features: list[str] | None = Field(
        default=None, description="A CSV upload's feature columns, in the order rows take them."
    )
    target: str | None = Field(default=None, description="A CSV upload's target column.")
    available: bool = Field(description="Whether its files are there to train on now.")
    missing_files: list[str] = Field(
        default_factory=list, description="Where to put which files (torchvision's layout)."
    )
    download: bool = Field(
        default=False, description="True when the service may download the missing files."
    )
    format: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    counts: dict[str, int] | None = None
    num_examples: int | None = None
    created_at: datetime | None = None
