"""Uploaded state_dicts' rows beyond adding and reading them (core/queries.py): which active
jobs start from one, and removing one."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.dataset_queries import ACTIVE_STATUSES
from core.tables import Job, UploadedWeights


def active_jobs_using_weights(session: Session, *, weights_id: str) -> list[str]:
    """Ids of queued or running fine-tune jobs that start from the upload `weights_id`."""
    source = Job.params[("finetune", "source", "checkpoint_id")].as_string()
    query = select(Job.id).where(Job.status.in_(ACTIVE_STATUSES), source == weights_id)
    return list(session.scalars(query.order_by(Job.created_at)))


def delete_uploaded_weights_row(session: Session, *, row: UploadedWeights) -> None:
    """Remove the row; the caller removes the file after the commit."""
    session.delete(row)
    session.flush()
