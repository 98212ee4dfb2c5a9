"""Offloaded predictions: a `kind: "predict"` job runs a trained model over a whole dataset split.

For batches too big for one request. The job names a model (id or alias) and a dataset split; the
API resolves the model once, at submission, and stores its id beside the reference, so an alias
that moves later does not change what the job predicts with. The worker writes the predictions
as an artifact (JSON lines or CSV) and a summary in the job's result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag, model_validator
from sqlalchemy.orm import Session

from core.bodies import Frozen, Int
from core.datasets import check_available, get_dataset
from core.datasets.queries import check_visible_upload
from core.errors import InvalidInputError, NotFoundError
from core.jobs.schemas import MAX_TIME_LIMIT_S, DatasetSpec, JobCreate
from core.names import MODEL_REF_PATTERN, NAME_PATTERN
from core.registry.queries import resolve_model
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
    def planned_epochs(self) -> int:
        """Progress reads 0 of 1 until the predictions are written, then 1 of 1."""
        return 1

    @property
    def wants_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def artifact_path(self) -> str:
        return f"predictions.{self.format}"


def submission_kind(body: Any) -> str:
    """The union member a POST /v1/jobs body is: `predict`, or `job` (train, kfold, finetune)."""
    kind = body.get("kind") if isinstance(body, dict) else getattr(body, "kind", None)
    return "predict" if kind == "predict" else "job"


# What POST /v1/jobs accepts. The tag never reaches a client: api/routes/jobs.py drops it from
# error locations, so a train job's errors read `body.model.arch` as they always did.
JobSubmission = Annotated[
    Annotated[JobCreate, Tag("job")] | Annotated[PredictJobCreate, Tag("predict")],
    Discriminator(submission_kind),
]
SUBMISSION_TAGS = ("job", "predict")


def parse_job_params(params: dict[str, Any]) -> JobCreate | PredictJobCreate:
    """A job row's stored request, rebuilt as the object the API accepted."""
    if submission_kind(params) == "predict":
        return PredictJobCreate.model_validate(params)
    return JobCreate.model_validate(params)


def resolve_predict_job(
    session: Session,
    spec: PredictJobCreate,
    *,
    datasets_dir: Path,
    download: bool,
    max_time_limit_s: float,
) -> PredictJobCreate:
    """Check what only the server can (the model exists and fits the dataset, whose files are
    here) and return the spec with the model's id filled in; InvalidInputError otherwise."""
    if spec.time_limit_s is not None and spec.time_limit_s > max_time_limit_s:
        raise InvalidInputError(
            f"time_limit_s: at most {max_time_limit_s:g} s on this service "
            f"(D2L_JOB_TIME_LIMIT_S); got {spec.time_limit_s:g}"
        )
    try:
        model = resolve_model(session, ref=spec.model)
    except NotFoundError as error:
        raise InvalidInputError(f"model: {error}") from None
    check_visible_upload(session, name=spec.dataset.name)  # not another owner's
    check_available(spec.dataset.name, datasets_dir, download=download)
    info = get_dataset(spec.dataset.name, root=datasets_dir)
    trained = model.job.result or {}
    task = str(trained.get("task", "classification"))
    if task != info.task:
        raise InvalidInputError(
            f"dataset: model {model.id} is a {task} model; {info.name} is a {info.task} dataset"
        )
    raw_shape = list((trained.get("preprocessing") or {}).get("raw_shape", []))
    if raw_shape != list(info.raw_shape):
        raise InvalidInputError(
            f"dataset: model {model.id} takes raw samples of shape {raw_shape}; "
            f"{info.name} stores samples of shape {list(info.raw_shape)}"
        )
    return spec.model_copy(update={"model_id": model.id})
