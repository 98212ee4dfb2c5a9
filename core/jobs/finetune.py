"""Where a fine-tuning job's weights come from, checked the same way in the API and the worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.errors import InvalidInputError
from core.jobs import queries
from core.jobs.kind_registry import get_kind, load_stored
from core.jobs.schemas import JobCreate
from core.registry import queries as registry


@dataclass(frozen=True)
class WeightSource:
    """The source net's description and the stored file holding its state_dict."""

    description: str
    arch: str
    config: dict[str, Any]
    in_channels: int
    num_classes: int
    path: str
    sha256: str


def resolve_source(session: Session, spec: JobCreate) -> WeightSource:
    """The weights a finetune job starts from, or a 4xx saying why they cannot be used."""
    assert spec.finetune is not None
    source = spec.finetune.source
    if source.job_id is not None:
        job = queries.get_job(session, job_id=source.job_id)
        model_ids = registry.model_ids_for_jobs(session, job_ids=[job.id])
        if not get_kind(job.kind).makes_model:
            raise InvalidInputError(
                f"job {job.id} is a {job.kind} job; fine-tune from a job that trains a model"
            )
        if job.status != "succeeded":
            raise InvalidInputError(f"job {job.id} is {job.status}; fine-tune from a succeeded job")
        if job.id not in model_ids:
            raise InvalidInputError(
                f"job {job.id}'s model was deleted with its checkpoints; fine-tune from another "
                "job, or upload a state_dict (POST /v1/checkpoints)"
            )
        checkpoint = registry.get_model_row(session, model_id=model_ids[job.id]).checkpoint
        parent = load_stored(job.params)
        return WeightSource(
            description=f"job {job.id}",
            arch=parent.model.arch,
            config=parent.model_options,
            in_channels=int(job.result["preprocessing"]["in_channels"]),  # type: ignore[index]
            num_classes=len(job.result["class_names"]),  # type: ignore[index]
            path=checkpoint.path,
            sha256=checkpoint.sha256,
        )
    assert source.checkpoint_id is not None
    uploaded = registry.get_uploaded_weights(session, weights_id=source.checkpoint_id)
    return WeightSource(
        description=f"uploaded checkpoint {uploaded.id}",
        arch=uploaded.arch,
        config=uploaded.config,
        in_channels=uploaded.in_channels,
        num_classes=uploaded.num_classes,
        path=uploaded.path,
        sha256=uploaded.sha256,
    )


def check_compatible(spec: JobCreate, source: WeightSource, *, in_channels: int) -> None:
    """The job must build the source's net (same arch and options) for data of its channels."""
    if spec.model.arch != source.arch:
        raise InvalidInputError(
            f"{source.description} is a {source.arch}; set model.arch to {source.arch!r}"
        )
    options = {k: v for k, v in spec.model_options.items() if k != "dropout"}
    source_options = {k: v for k, v in source.config.items() if k != "dropout"}
    if options != source_options:
        raise InvalidInputError(
            f"{source.description} was built with config {source_options}; use the same config"
        )
    if in_channels != source.in_channels:
        raise InvalidInputError(
            f"{source.description} takes {source.in_channels}-channel input; the dataset has "
            f"{in_channels}"
        )


def lineage(source: WeightSource) -> dict[str, Any]:
    return {"source": source.description, "arch": source.arch, "source_classes": source.num_classes}
