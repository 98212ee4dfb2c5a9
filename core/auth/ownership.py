"""Owners see only their own rows: one filter on the session, not one in every query.

With auth on, the API tags each request's session with the caller's owner. Every ORM SELECT the
session runs then gets SQLAlchemy's `with_loader_criteria` for the owned tables (jobs, datasets,
uploaded weights, and through their jobs the models, aliases and experiments), so a row of
another owner is simply not there: the route answers 404 as for an id that never existed, and no
query can forget the check. A worker's own bookkeeping runs untagged (it runs every owner's
jobs), but whatever a job *names* (a fine-tune source, a model, an uploaded dataset) the worker
resolves in a session tagged with the job's owner (`scope_to_job_owner`), never unscoped.
"""

from __future__ import annotations

from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from core.tables import Dataset, Experiment, Job, Model, ModelAlias, UploadedWeights

OWNER_KEY = "owner"
ALL_OWNERS = "all_owners"  # execution option: this one query looks across owners


def scope_to_owner(session: Session, owner: str | None) -> Session:
    """Make `session` see only `owner`'s rows; None (auth off) leaves it unscoped."""
    if owner is not None:
        session.info[OWNER_KEY] = owner
    return session


def scope_to_job_owner(session: Session, *, job_id: str) -> Session:
    """Make `session` see only what job `job_id`'s owner sees (everything when it has none)."""
    owner = session.scalar(
        select(Job.owner).where(Job.id == job_id), execution_options={ALL_OWNERS: True}
    )
    return scope_to_owner(session, owner)


@event.listens_for(Session, "do_orm_execute")
def _only_the_owners_rows(state: ORMExecuteState) -> None:
    owner = state.session.info.get(OWNER_KEY)
    if owner is None or not state.is_select or state.execution_options.get(ALL_OWNERS):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # attributes of a row the first query already let through
    jobs_of_owner = select(Job.id).where(Job.owner == owner)
    state.statement = state.statement.options(
        with_loader_criteria(Job, Job.owner == owner, include_aliases=True),
        with_loader_criteria(Dataset, Dataset.owner == owner, include_aliases=True),
        with_loader_criteria(UploadedWeights, UploadedWeights.owner == owner, include_aliases=True),
        with_loader_criteria(Model, Model.job_id.in_(jobs_of_owner), include_aliases=True),
        with_loader_criteria(
            ModelAlias,
            ModelAlias.model_id.in_(select(Model.id).where(Model.job_id.in_(jobs_of_owner))),
            include_aliases=True,
        ),
        with_loader_criteria(
            Experiment,
            Experiment.id.in_(select(Job.experiment_id).where(Job.owner == owner)),
            include_aliases=True,
        ),
    )
