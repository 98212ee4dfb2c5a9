"""The body of a `kind: "predict"` job: a trained model run over a whole dataset split.

For batches too big for one request. The job names a model (id or alias) and a dataset split; the
API resolves the model once, at submission (core/jobs/kinds/predict.py), and stores its id beside
the reference, so an alias that moves later does not change what the job predicts with. The
worker writes the predictions as an artifact (JSON lines or CSV) and a summary in the job's
result.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from core.bodies import Frozen, Int
from core.jobs.schemas import MAX_TIME_LIMIT_S, DatasetSpec
from core.names import MODEL_REF_PATTERN, NAME_PATTERN
from core.serving.schemas import TopK

PREDICT_DEVICE_PATTERN = r"^(auto|cpu|cuda(:[0-9]{1,2})?)$"
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv"}
SplitName = Literal["train", "val", "test", "all"]


class PredictDatasetSpec(DatasetSpec):
    """The samples to predict: a dataset, split as a train job splits it (same fractions and
    seed give the same samples), and which split (`all`: every sample, in the dataset's order)."""

    split: SplitName = Field(default="test", description="train, val, test or all.")

    @model_validator(mode="after")
    def _split_not_empty(self) -> PredictDatasetSpec:
        if self.split == "val" and self.val_fraction == 0:
            raise ValueError("split 'val' is empty with val_fraction 0; give val_fraction > 0")
        return self


class PredictJobCreate(Frozen):
    """POST /v1/jobs with `kind: "predict"`: predict a dataset split with a trained model."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "predict",
                    "model": "lenet-digits:production",
                    "dataset": {"name": "digits", "split": "test"},
                    "top_k": 3,
                }
            ]
        },
    )

    schema_version: Literal[1] = 1
    kind: Literal["predict"]
    experiment: str = Field(default="default", pattern=NAME_PATTERN)
    model: str = Field(
        pattern=MODEL_REF_PATTERN,
        description="A model id, or an alias: name:VERSION, name:latest, name:production.",
    )
    model_id: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Set by the service: the model `model` named at submission (a value given "
        "is replaced).",
    )
    dataset: PredictDatasetSpec
    top_k: TopK | None = Field(default=None, description="Only the k most likely classes.")
    batch_size: Int = Field(default=256, ge=1, le=8192, description="Samples per forward pass.")
    format: Literal["jsonl", "csv"] = Field(
        default="jsonl", description="jsonl: one JSON object a sample; csv: one row a sample."
    )
    device: str = Field(
        default="auto",
        pattern=PREDICT_DEVICE_PATTERN,
        description="auto (the worker's first GPU, else CPU), cpu, cuda or cuda:N.",
    )
    priority: Literal["high", "normal", "low"] = "normal"
    time_limit_s: float | None = Field(
        default=None,
        ge=1.0,
        le=MAX_TIME_LIMIT_S,
        description="Stop after this many seconds; the job then fails. At most the service's "
        "D2L_JOB_TIME_LIMIT_S.",
    )

    @property
    def wants_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def artifact_path(self) -> str:
        return f"predictions.{self.format}"
