"""Metric and experiment reads on SQLite and PostgreSQL: the SQL the tracking endpoints use."""

from __future__ import annotations

import pytest

from core.db import Database
from core.errors import InvalidInputError
from core.experiments import queries as experiment_queries
from core.jobs import metrics
from core.jobs.metrics import MetricKey, metrics_after, read_metrics
from tests.factories import add_job


def record(db: Database, job_id: str, epoch: int, values: dict[tuple[str, str], float]) -> None:
    with db.transaction() as session:
        metrics.record_epoch(session, job_id=job_id, epoch=epoch, step=epoch * 10, values=values)


@pytest.mark.parametrize(
    ("flat", "key"),
    [
        ("val_acc", ("val", "acc")),
        ("train_grad_norm", ("train", "grad_norm")),  # a name may hold "_", a split never
        ("c0/f2/val_acc", ("c0/f2/val", "acc")),
        ("layers_grad_norm:net.0.weight", ("layers", "grad_norm:net.0.weight")),
    ],
)
def test_a_flat_metric_name_splits_at_its_first_underscore(flat: str, key: tuple[str, str]) -> None:
    parsed = MetricKey.parse(flat)
    assert parsed == key and hash(parsed) == hash(key)  # a plain tuple finds it in a dict
    assert parsed.flat == flat and MetricKey(*key).flat == flat


@pytest.mark.parametrize("flat", ["acc", "val_", "_acc", ""])
def test_what_is_not_split_name_is_refused(flat: str) -> None:
    with pytest.raises(InvalidInputError, match="split_name"):
        MetricKey.parse(flat)


def test_new_rows_come_in_commit_order_and_a_rerun_epoch_adds_none(db: Database) -> None:
    with db.transaction() as session:
        job_id = add_job(session).id
    record(db, job_id, 1, {("train", "loss"): 0.9, ("val", "acc"): 0.5})
    record(db, job_id, 2, {("train", "loss"): 0.7, ("val", "acc"): 0.6})
    with db.sessions() as session:
        first = metrics_after(session, job_id=job_id, after_id=0)
    assert [(p.epoch, p.key.flat) for p in first] == [
        (1, "train_loss"),
        (1, "val_acc"),
        (2, "train_loss"),
        (2, "val_acc"),
    ]
    record(db, job_id, 2, {("train", "loss"): 0.65, ("val", "acc"): 0.61})  # redelivered
    record(db, job_id, 3, {("train", "loss"): 0.5})
    with db.sessions() as session:
        later = metrics_after(session, job_id=job_id, after_id=first[-1].id)
    assert [(p.epoch, p.key.flat) for p in later] == [(3, "train_loss")]


def test_names_match_split_name_or_bare_name(db: Database) -> None:
    with db.transaction() as session:
        job_id = add_job(session).id
    for epoch in range(1, 11):
        record(
            db,
            job_id,
            epoch,
            {
                ("train", "acc"): 0.1 * epoch,
                ("val", "acc"): 0.05 * epoch,
                ("train", "grad_norm"): 1.0,
            },
        )
    with db.sessions() as session:
        keyed = read_metrics(session, job_id=job_id, names=["val_acc", "grad_norm"])
        bare = read_metrics(session, job_id=job_id, names=["acc"], max_points=3)
    assert {p.key.flat for p in keyed} == {"val_acc", "train_grad_norm"} and len(keyed) == 20
    assert [(p.key.flat, p.epoch) for p in bare] == [
        ("train_acc", 1),
        ("val_acc", 1),
        ("train_acc", 5),
        ("val_acc", 5),
        ("train_acc", 10),
        ("val_acc", 10),
    ]


def test_final_metrics_are_the_last_untagged_epoch(db: Database) -> None:
    with db.transaction() as session:
        job_id = add_job(session).id
    record(db, job_id, 1, {("train", "acc"): 0.5, ("c0/f1/val", "acc"): 0.2})
    record(db, job_id, 2, {("train", "acc"): 0.8, ("layers", "0.weight/norm"): 3.0})
    record(db, job_id, 9, {("c0/f2/val", "acc"): 0.3})  # a longer fold: not the run's end
    with db.sessions() as session:
        finals = experiment_queries.final_metrics(session, job_ids=[job_id])
        table = experiment_queries.compare(
            session, name="tests", metric="train_acc", goal=None, limit=10
        )
    assert finals == {job_id: {"train_acc": 0.8}}
    assert table.runs[0].value == 0.8 and table.runs[0].rank == 1
