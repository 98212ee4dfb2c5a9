"""Every value of a job that names a stored thing, resolved as the job's owner sees it.

A job names stored things in several places: an uploaded dataset (`dataset.name`), the weights a
fine-tune starts from (`finetune.source`: a job's model or an uploaded state_dict), each value a
sweep's `space` writes there (every trial may start from other weights), and a predict job's
model. The API resolves them all at submission in the caller's owner-scoped session; the worker
resolves them again, in a session scoped to the job's owner, before it trains, so a row that
names another owner's thing (a sweep's trial, a row written by an older version) fails instead
of reading that owner's weights or data. Another owner's thing reads as one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.datasets.queries import check_visible_upload
from core.errors import InvalidInputError, NotFoundError
from core.jobs.finetune import WeightSource, resolve_source
from core.jobs.predict_jobs import PredictJobCreate
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


def source_trials(spec: JobCreate) -> list[tuple[str, JobCreate]]:
    """(where, spec) of the job itself and of each sweep value that fine-tunes from other
    weights than the body's: a sweep may vary `finetune.source` (or its `job_id` or
    `checkpoint_id`) like any other field."""
    if spec.finetune is None:
        return []
    named = [(BASE_SOURCE, spec)]
    if spec.sweep is None:
        return named
    seen = {spec.finetune.source}
    for values in spec.sweep.checked_values():
        if not any(path.startswith("finetune.") for path in values):
            continue
        trial = spec.trial_spec(values)  # valid: the body's own validation built each once
        assert trial.finetune is not None
        if trial.finetune.source not in seen:
            seen.add(trial.finetune.source)
            shown = ", ".join(f"{path}={value!r}" for path, value in values.items())
            named.append((f"sweep.space ({shown})", trial))
    return named


def _resolve(session: Session, where: str, spec: JobCreate) -> ResolvedSource:
    try:
        return ResolvedSource(where, spec, resolve_source(session, spec))
    except NotFoundError as error:
        raise InvalidInputError(f"{where}: {error}") from None
    except InvalidInputError as error:
        if where == BASE_SOURCE:
            raise
        raise InvalidInputError(f"{where}: {error}") from None


def resolve_references(
    session: Session, spec: JobCreate | PredictJobCreate
) -> list[ResolvedSource]:
    """Check every stored thing `spec` names against what `session` (scoped to the owner) can
    see; the fine-tune sources it names, resolved. InvalidInputError naming the field otherwise.

    A predict job is checked by the model id the API stored (`model_id`) when it has one."""
    check_visible_upload(session, name=spec.dataset.name)
    if isinstance(spec, PredictJobCreate):
        try:
            if spec.model_id is not None:
                registry.get_model_row(session, model_id=spec.model_id)
            else:
                resolve_model(session, ref=spec.model)
        except NotFoundError as error:
            raise InvalidInputError(f"model: {error}") from None
        return []
    return [_resolve(session, where, trial) for where, trial in source_trials(spec)]
