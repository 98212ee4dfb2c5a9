"""Rows of uploaded datasets, and the active-job lookup that guards their deletion."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.datasets import queries as dataset_queries
from core.db import Database
from core.errors import NotFoundError
from core.tables import Experiment, Job


def meta(dataset_id: str) -> dict:
    return {
        "id": dataset_id,
        "name": "pets",
        "format": "imagefolder",
        "sha256": "0" * 64,
        "bytes": 123,
        "class_names": ["cat", "dog"],
        "raw_shape": [3, 8, 8],
        "counts": {"cat": 2, "dog": 1},
        "num_examples": 3,
        "created_at": datetime.now(UTC).isoformat(),
    }


def add_raw_job(session, *, dataset_name: str, status: str) -> str:
    experiment = session.query(Experiment).filter_by(name="ds").one_or_none() or Experiment(
        name="ds"
    )
    job = Job(
        experiment=experiment,
        kind="train",
        status=status,
        queue="cpu",
        epochs=1,
        params={"dataset": {"name": dataset_name}},
    )
    session.add(job)
    session.flush()
    return job.id


def test_create_get_list_delete(db: Database) -> None:
    with db.transaction() as session:
        dataset_queries.create_dataset(session, meta=meta("a" * 32))
    with db.transaction() as session:
        row = dataset_queries.get_dataset_row(session, dataset_id="a" * 32)
        assert row.class_names == ["cat", "dog"] and row.raw_shape == [3, 8, 8]
        assert [r.id for r in dataset_queries.list_dataset_rows(session)] == ["a" * 32]
        dataset_queries.delete_dataset_row(session, dataset=row)
    with db.sessions() as session, pytest.raises(NotFoundError):
        dataset_queries.get_dataset_row(session, dataset_id="a" * 32)


def test_only_queued_or_running_jobs_naming_the_dataset_count(db: Database) -> None:
    with db.transaction() as session:
        queued = add_raw_job(session, dataset_name="b" * 32, status="queued")
        running = add_raw_job(session, dataset_name="b" * 32, status="running")
        add_raw_job(session, dataset_name="b" * 32, status="succeeded")
        add_raw_job(session, dataset_name="digits", status="running")
    with db.sessions() as session:
        assert sorted(dataset_queries.active_jobs_using(session, dataset_name="b" * 32)) == sorted(
            [queued, running]
        )
        assert dataset_queries.active_jobs_using(session, dataset_name="c" * 32) == []
