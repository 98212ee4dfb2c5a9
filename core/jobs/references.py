"""Every value of a job that names a stored thing, resolved as the job's owner sees it.

A job names stored things in several places: an uploaded dataset (`dataset.name`), the weights a
fine-tune starts from (`finetune.source`: a job's model or an uploaded state_dict), each value a
sweep's `space` writes there (every trial may start from other weights), and a predict job's
model. The API resolves them all at submission in the caller's owner-scoped session; the worker
resolves them again, in a session scoped to the job's owner, before it trains (each kind's
card says what its body names: `KindCard.resolve_references`), so a row that
names another owner's thing (a sweep's trial, a row written by an older version) fails instead
of reading that owner's weights or data. Another owner's thing reads as one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.datasets.queries import check_visible_upload
from core.errors import InvalidInputError, NotFoundError
from core.jobs.finetune import WeightSource, resolve_source
from core.jobs.schemas import JobCreate
from core.registry import queries as registry
from core.registry.queries import resolve_model

BASE_SOURCE = "finetune.source"


@dataclass(frozen=True)
class ResolvedSource:
    """Weights a job (or one of a sweep's trials) fine-tunes from, and where the job names them."""

    where: str  # `finetune.source`, or the sweep value that names them
    spec: JobCreate  # the job or trial that trains from them
    weights: WeightSource


def _resolve(session: Session, where: str, spec: JobCreate) -> ResolvedSource:
    try:
        return ResolvedSource(where, spec, resolve_source(session, spec))
    except NotFoundError as error:
        raise InvalidInputError(f"{where}: {error}") from None
    except InvalidInputError as error:
        if where == BASE_SOURCE:
            raise
        raise InvalidInputError(f"{where}: {error}") from None


def resolve_sources(
    session: Session, dataset: str, sources: list[tuple[str, JobCreate]]
) -> list[ResolvedSource]:
    """Check the dataset and each (where, spec) that fine-tunes against what `session` (scoped
    to the owner) can see; the sources resolved, or InvalidInputError naming the field."""
    check_visible_upload(session, name=dataset)
    return [_resolve(session, where, spec) for where, spec in sources]


def check_model_reference(
    session: Session, *, dataset: str, model: str, model_id: str | None
) -> None:
    """A predict job's dataset and model, visible to the owner: by the id the API stored
    (`model_id`) once it has one, else by the reference the client gave."""
    check_visible_upload(session, name=dataset)
    try:
        if model_id is not None:
            registry.get_model_row(session, model_id=model_id)
        else:
            resolve_model(session, ref=model)
    except NotFoundError as error:
        raise InvalidInputError(f"model: {error}") from None
