"""Reads and writes of uploaded-dataset rows, and which active jobs use a dataset."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.datasets import is_upload_id
from core.errors import InvalidInputError, NotFoundError
from core.tables import ACTIVE_STATUSES, Dataset, Job


def create_dataset(session: Session, *, meta: dict[str, Any], owner: str | None = None) -> Dataset:
    """A row for an upload whose files are in place, from its meta.json contents."""
    dataset = Dataset(
        id=meta["id"],
        owner=owner,
        name=meta["name"][:255],
        format=meta["format"],
        sha256=meta["sha256"],
        bytes=meta["bytes"],
        class_names=list(meta["class_names"]),
        raw_shape=list(meta["raw_shape"]),
        counts=dict(meta["counts"]),
        num_examples=meta["num_examples"],
        created_at=datetime.fromisoformat(meta["created_at"]),
    )
    session.add(dataset)
    session.flush()
    return dataset


def check_visible_upload(session: Session, *, name: str) -> None:
    """A job may name an uploaded dataset only if the caller can see it (with auth on, one of
    their own): InvalidInputError (422) otherwise, worded as for an id that never existed."""
    if is_upload_id(name) and session.get(Dataset, name) is None:
        raise InvalidInputError(
            f"no uploaded dataset with id {name!r} (POST /v1/datasets uploads one)"
        )


def get_dataset_row(session: Session, *, dataset_id: str) -> Dataset:
    """The uploaded dataset `dataset_id`, or NotFoundError."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFoundError(f"no dataset with id {dataset_id!r}")
    return dataset


def list_dataset_rows(session: Session) -> Sequence[Dataset]:
    """Every uploaded dataset, newest first."""
    return session.scalars(select(Dataset).order_by(Dataset.created_at.desc())).all()


def active_jobs_using(session: Session, *, dataset_name: str) -> list[str]:
    """Ids of queued or running jobs whose spec names `dataset_name`."""
    named = Job.params[("dataset", "name")].as_string()
    query = select(Job.id).where(Job.status.in_(ACTIVE_STATUSES), named == dataset_name)
    return list(session.scalars(query.order_by(Job.created_at)))


def delete_dataset_row(session: Session, *, dataset: Dataset) -> None:
    """Remove the row; the caller removes the files after the commit."""
    session.delete(dataset)
    session.flush()
