"""The model registry's reads and writes: trained models (find one by id or alias, name it, list,
delete) and uploaded state_dicts (add, read, which active jobs start from one, remove).

Aliases are rows `(name, tag) -> model`. A numeric tag is a version: given once, it never moves
to another model. `latest` always follows the highest version of a name; `production` moves only
when asked to. Keyword-only, one transaction per caller, as in core/jobs/queries.py.
`get_model_row` is a row; `models.get_model` builds a network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.artifacts import StoredFile
from core.auth.ownership import ALL_OWNERS
from core.errors import ConflictError, NotFoundError
from core.registry.schemas import ALIAS_REF, CheckpointRef, ModelOut
from core.tables import ACTIVE_STATUSES, Checkpoint, Job, Model, ModelAlias, UploadedWeights, utcnow

ALIAS_HINT = "an alias is written name:VERSION, name:latest or name:production"


def resolve_model(session: Session, *, ref: str) -> Model:
    """The model a URL names: its id, or an alias `name:tag`; NotFoundError saying which."""
    match = ALIAS_REF.match(ref)
    if match is None:
        model = session.get(Model, ref)
        if model is None:
            hint = f"; {ALIAS_HINT}" if ":" in ref else ""
            raise NotFoundError(f"no model with id {ref!r}{hint}")
        return model
    alias = session.scalar(
        select(ModelAlias).where(ModelAlias.name == match["name"], ModelAlias.tag == match["tag"])
    )
    if alias is None:
        known = ", ".join(f"{match['name']}:{tag}" for tag in _tags(session, match["name"]))
        raise NotFoundError(
            f"no model is called {ref!r}" + (f"; that name has {known}" if known else "")
        )
    return get_model_row(session, model_id=alias.model_id)


def _tags(session: Session, name: str) -> list[str]:
    rows = session.scalars(select(ModelAlias.tag).where(ModelAlias.name == name))
    return sorted(rows, key=lambda tag: (not tag.isdigit(), int(tag) if tag.isdigit() else 0, tag))


def aliases_of(session: Session, *, model_ids: Sequence[str]) -> dict[str, list[str]]:
    """model id -> its aliases, versions first (`name:2`, `name:latest`, `name:production`)."""
    rows = session.scalars(select(ModelAlias).where(ModelAlias.model_id.in_(model_ids))).all()
    ordered = sorted(
        rows, key=lambda a: (a.name, not a.tag.isdigit(), int(a.tag) if a.tag.isdigit() else 0)
    )
    names: dict[str, list[str]] = {model_id: [] for model_id in model_ids}
    for alias in ordered:
        names[alias.model_id].append(f"{alias.name}:{alias.tag}")
    return names


def _point(session: Session, *, name: str, tag: str, model_id: str | None) -> None:
    """Make `name:tag` point at `model_id` (None: remove it)."""
    alias = session.scalar(select(ModelAlias).where(ModelAlias.name == name, ModelAlias.tag == tag))
    if model_id is None:
        if alias is not None:
            session.delete(alias)
        return
    if alias is None:
        session.add(ModelAlias(name=name, tag=tag, model_id=model_id))
    elif alias.model_id != model_id:
        alias.model_id, alias.updated_at = model_id, utcnow()


def _versions(session: Session, *, name: str) -> dict[int, str]:
    """version -> model id, for every version of `name`."""
    rows = session.execute(
        select(ModelAlias.tag, ModelAlias.model_id).where(ModelAlias.name == name)
    )
    return {int(tag): model_id for tag, model_id in rows if tag.isdigit()}


def _name_taken(session: Session, *, name: str) -> bool:
    """Whether any model, of any owner, answers to `name` (names are one namespace)."""
    taken = session.scalar(
        select(ModelAlias.id).where(ModelAlias.name == name).limit(1),
        execution_options={ALL_OWNERS: True},
    )
    return taken is not None


def assign_alias(session: Session, *, model: Model, name: str, production: bool) -> None:
    """Give `model` a version under `name` (its existing one, else the next), move `latest` to
    the highest version, and `production` to this model when asked."""
    versions = _versions(session, name=name)
    if not versions and _name_taken(session, name=name):
        raise ConflictError(f"the name {name!r} is used by another owner's models; choose another")
    if model.id not in versions.values():
        version = max(versions, default=0) + 1
        session.add(ModelAlias(name=name, tag=str(version), model_id=model.id))
        versions[version] = model.id
    _point(session, name=name, tag="latest", model_id=versions[max(versions)])
    if production:
        _point(session, name=name, tag="production", model_id=model.id)
    session.flush()


def remove_aliases(session: Session, *, model: Model, name: str) -> None:
    """Take every alias under `name` off `model`; `latest` falls back to the highest version
    left. `production` is never moved to another model implicitly."""
    mine = session.scalars(
        select(ModelAlias).where(ModelAlias.name == name, ModelAlias.model_id == model.id)
    ).all()
    if not mine:
        raise NotFoundError(f"model {model.id} has no alias under the name {name!r}")
    for alias in mine:
        session.delete(alias)
    session.flush()
    versions = _versions(session, name=name)
    _point(
        session,
        name=name,
        tag="latest",
        model_id=versions[max(versions)] if versions else None,
    )
    session.flush()


def list_models(
    session: Session, *, name: str | None, arch: str | None, limit: int, offset: int
) -> tuple[Sequence[Model], int]:
    """A page of models, newest first, optionally those named `name` or of one architecture."""
    query = select(Model)
    if name is not None:
        named = select(ModelAlias.model_id).where(ModelAlias.name == name)
        query = query.where(Model.id.in_(named))
    if arch is not None:
        query = query.where(Model.arch == arch)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page = session.scalars(
        query.order_by(Model.created_at.desc(), Model.id).limit(limit).offset(offset)
    )
    return page.unique().all(), total


def delete_model(session: Session, *, model: Model) -> list[str]:
    """Forget the model and its job's checkpoints (rows now; the caller removes the returned
    files after commit). The job, its metrics and result stay. Refused while aliases point at it."""
    aliases = aliases_of(session, model_ids=[model.id])[model.id]
    if aliases:
        names = sorted({alias.split(":")[0] for alias in aliases})
        how = " and ".join(f"DELETE /v1/models/{model.id}/alias/{n}" for n in names)
        raise ConflictError(
            f"model {model.id} is served as {', '.join(aliases)}; remove those aliases first "
            f"({how}), or point them at another model, then delete it"
        )
    job_id = model.job_id
    session.delete(model)
    session.flush()
    checkpoints = session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id)).all()
    paths = [checkpoint.path for checkpoint in checkpoints]
    for checkpoint in checkpoints:
        session.delete(checkpoint)
    session.flush()
    return paths


def describe(session: Session, *, model: Model, config: dict[str, Any], dataset: str) -> ModelOut:
    """The model as GET /v1/models/{id} shows it, read from its job (no checkpoint load): its
    builder's options (`config`) and dataset as the job's stored body gives them."""
    job, result = model.job, model.job.result or {}
    return ModelOut(
        id=model.id,
        job_id=job.id,
        experiment=job.experiment.name,
        arch=model.arch,
        config=config,
        dataset=dataset,
        task=str(result.get("task", "classification")),
        class_names=[str(name) for name in result.get("class_names", [])],
        preprocessing=result.get("preprocessing"),
        metrics={
            key: float(value)
            for key, value in result.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        },
        checkpoint=CheckpointRef(
            epoch=model.checkpoint.epoch,
            bytes=model.checkpoint.bytes,
            sha256=model.checkpoint.sha256,
        ),
        aliases=aliases_of(session, model_ids=[model.id])[model.id],
        created_at=model.created_at,
    )


def create_model(session: Session, *, job: Job, checkpoint: Checkpoint, arch: str) -> Model:
    """Register the model a succeeded job serves."""
    model = Model(job_id=job.id, checkpoint_id=checkpoint.id, arch=arch)
    session.add(model)
    session.flush()
    return model


def get_model_row(session: Session, *, model_id: str) -> Model:
    """The model `model_id`, or NotFoundError."""
    model = session.get(Model, model_id)
    if model is None:
        raise NotFoundError(f"no model with id {model_id!r}")
    return model


def model_ids_for_jobs(session: Session, *, job_ids: Sequence[str]) -> dict[str, str]:
    """job id -> model id, for the jobs that produced a model."""
    rows = session.execute(select(Model.job_id, Model.id).where(Model.job_id.in_(job_ids)))
    return {job_id: model_id for job_id, model_id in rows}


def add_uploaded_weights(
    session: Session,
    *,
    filename: str,
    arch: str,
    config: dict[str, Any],
    in_channels: int,
    num_classes: int,
    input_size: int,
    stored: StoredFile,
    weights_id: str,
    owner: str | None = None,
) -> UploadedWeights:
    """Record a state_dict that is already durable on disk and checked against its arch."""
    row = UploadedWeights(
        id=weights_id,
        owner=owner,
        filename=filename,
        arch=arch,
        config=config,
        in_channels=in_channels,
        num_classes=num_classes,
        input_size=input_size,
        path=stored.path,
        sha256=stored.sha256,
        bytes=stored.bytes,
    )
    session.add(row)
    session.flush()
    return row


def get_uploaded_weights(session: Session, *, weights_id: str) -> UploadedWeights:
    """The uploaded state_dict `weights_id`, or NotFoundError."""
    row = session.get(UploadedWeights, weights_id)
    if row is None:
        raise NotFoundError(f"no uploaded checkpoint with id {weights_id!r}")
    return row


def active_jobs_using_weights(session: Session, *, weights_id: str) -> list[str]:
    """Ids of queued or running fine-tune jobs that start from the upload `weights_id`."""
    source = Job.params[("finetune", "source", "checkpoint_id")].as_string()
    query = select(Job.id).where(Job.status.in_(ACTIVE_STATUSES), source == weights_id)
    return list(session.scalars(query.order_by(Job.created_at)))


def delete_uploaded_weights_row(session: Session, *, row: UploadedWeights) -> None:
    """Remove the row; the caller removes the file after the commit."""
    session.delete(row)
    session.flush()
