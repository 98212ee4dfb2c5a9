"""What the model registry takes and shows: aliases, a model's description, pages of models."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ALIAS_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
# A model reference in a URL: a model id, or `name:tag` with tag a version, latest or production.
ALIAS_REF = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,99}):(?P<tag>[0-9]{1,9}|latest|production)$"
)
ExportFormat = Literal["onnx", "torchscript"]


class AliasCreate(BaseModel):
    """POST /v1/models/{model_id}/alias: give the model a name (and a version under it)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"name": "lenet-digits", "production": True}]},
    )

    name: str = Field(
        pattern=ALIAS_NAME_PATTERN,
        description="Letters, digits, '_', '.', '-' (no ':'). The model becomes name:N, the next "
        "version (or keeps its version if it has one), and name:latest if N is the highest.",
    )
    production: bool = Field(default=False, description="Also move name:production to it.")


class CheckpointRef(BaseModel):
    epoch: int
    bytes: int
    sha256: str


class ModelOut(BaseModel):
    """A registered model: what it is, what it was trained on, how it scores, its names."""

    id: str
    job_id: str
    experiment: str
    arch: str
    config: dict[str, Any]
    dataset: str
    task: str
    class_names: list[str]
    preprocessing: dict[str, Any] | None
    metrics: dict[str, float] = Field(description="The job's final scores (test_acc, ...).")
    checkpoint: CheckpointRef
    aliases: list[str] = Field(description="name:version, name:latest, name:production")
    created_at: datetime


class ModelPage(BaseModel):
    items: list[ModelOut]
    total: int
    limit: int
    offset: int
