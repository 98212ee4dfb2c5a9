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


class ArchitectureOut(BaseModel):
    """An architecture of the zoo, as GET /v1/architectures lists it."""

    name: str
    description: str
    chapter: str
    task: str
    default_input_size: int
    min_input_size: int
    max_input_size: int | None
    options: dict[str, Any] = Field(description="JSON Schema of the builder's options.")


class LayerRow(BaseModel):
    """One leaf layer of a net, in execution order (the course's shape printout)."""

    name: str
    type: str
    output_shape: list[Any] | None = Field(
        description="The output's shape; a list of shapes for a layer with several outputs."
    )
    parameters: int


class NetOut(ArchitectureOut):
    """A concrete net for a dataset (GET /v1/architectures/{name}): its layers and its cost."""

    dataset: str
    input_size: int
    config: dict[str, Any]
    parameters: int
    weight_bytes: int
    input_shape: list[int] | None = Field(description="One input (batch of 1); null: not images.")
    flops: int | None = Field(description="Forward FLOPs of one input; null: not images.")
    layers: list[LayerRow]


class TensorStats(BaseModel):
    """A state_dict tensor's shape, dtype and statistics (null statistics: an empty tensor)."""

    name: str
    shape: list[int]
    dtype: str
    numel: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    l2_norm: float


class TensorValues(TensorStats):
    """One tensor's statistics and its first values, flattened in row-major order."""

    values: list[int | float | bool]
    truncated: bool = Field(description="More values than `limit` were left out.")
