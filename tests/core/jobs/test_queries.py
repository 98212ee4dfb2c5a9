"""The database layer on the embedded SQLite and on PostgreSQL, after the real migrations."""

import pytest
from sqlalchemy import inspect

from core.artifacts import StoredFile
from core.db import Database
from core.errors import NotFoundError
from core.experiments.queries import list_experiments
from core.jobs import queries
from core.jobs.metrics import latest_metrics, list_metrics, record_epoch
from core.registry import queries as registry
from tests.factories import add_job


def test_migrations_create_every_table(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert {"experiments", "jobs", "metrics", "checkpoints", "models", "alembic_version"} <= tables


def test_a_job_stores_its_spec_and_starts_queued(db: Database) -> None:
    with db.transaction() as session:
        job = add_job(session, experiment="exp-a")
        job_id = job.id
    with db.sessions() as session:
        stored = queries.get_job(session, job_id=job_id)
        assert stored.status == "queued"
        assert stored.params["model"]["arch"] == "lenet"
        assert stored.experiment.name == "exp-a"
        assert (stored.epoch, stored.epochs) == (0, 2)


def test_unknown_job_is_not_found(db: Database) -> None:
    with db.sessions() as session, pytest.raises(NotFoundError, match="no job"):
        queries.get_job(session, job_id="nope")


def test_rerun_epoch_metrics_are_upserted_to_one_row_each(db: Database) -> None:
    with db.transaction() as session:
        job_id = add_job(session).id
    first = {("train", "loss"): 1.0, ("val", "acc"): 0.5}
    again = {("train", "loss"): 0.8, ("val", "acc"): 0.6}
    for values in (first, again):
        with db.transaction() as session:
            record_epoch(session, job_id=job_id, epoch=1, step=10, values=values)
    with db.sessions() as session:
        rows = list_metrics(session, job_id=job_id)
        assert [(r.split, r.name, r.value) for r in rows] == [
            ("train", "loss", 0.8),
            ("val", "acc", 0.6),
        ]
        assert latest_metrics(session, job_id=job_id) == {"train_loss": 0.8, "val_acc": 0.6}
        assert queries.get_job(session, job_id=job_id).epoch == 1


def test_latest_metrics_are_those_of_the_newest_epoch(db: Database) -> None:
    with db.transaction() as session:
        job_id = add_job(session).id
        for epoch in (1, 2):
            record_epoch(
                session,
                job_id=job_id,
                epoch=epoch,
                step=epoch * 5,
                values={("train", "loss"): 1 / epoch},
            )
    with db.sessions() as session:
        assert latest_metrics(session, job_id=job_id) == {"train_loss": 0.5}


def test_jobs_list_filters_and_paginates_newest_first(db: Database) -> None:
    with db.transaction() as session:
        ids = [add_job(session, experiment="a" if i % 2 else "b").id for i in range(5)]
    with db.sessions() as session:
        page, total = queries.list_jobs(session, experiment="b", status=None, limit=2, offset=0)
        assert total == 3 and len(page) == 2
        assert all(job.experiment.name == "b" for job in page)
        rest, _ = queries.list_jobs(session, experiment="b", status=None, limit=2, offset=2)
        assert {job.id for job in page} | {job.id for job in rest} == {ids[0], ids[2], ids[4]}
        none, total = queries.list_jobs(
            session, experiment=None, status="running", limit=10, offset=0
        )
        assert total == 0 and not none
        experiments = {e.name: n for e, n in list_experiments(session)}
        assert experiments == {"a": 2, "b": 3}


def test_pruning_keeps_the_newest_checkpoints_and_the_served_one(db: Database) -> None:
    with db.transaction() as session:
        job = add_job(session)
        checkpoints = [
            queries.add_checkpoint(
                session,
                job_id=job.id,
                epoch=e,
                stored=StoredFile(f"jobs/{job.id}/{e}.pt", "0" * 64, 10),
            )
            for e in range(1, 6)
        ]
        registry.create_model(session, job=job, checkpoint=checkpoints[0], arch="lenet")
        doomed = queries.prune_checkpoints(session, job_id=job.id, keep=2)
        job_id = job.id
    assert doomed == [f"jobs/{job_id}/{e}.pt" for e in (2, 3)]
    with db.sessions() as session:
        assert [c.epoch for c in queries.list_checkpoints(session, job_id=job_id)] == [1, 4, 5]


def test_a_rerun_epoch_checkpoint_replaces_the_old_row(db: Database) -> None:
    with db.transaction() as session:
        job_id = add_job(session).id
        queries.add_checkpoint(
            session, job_id=job_id, epoch=1, stored=StoredFile("a.pt", "1" * 64, 1)
        )
        queries.add_checkpoint(
            session, job_id=job_id, epoch=1, stored=StoredFile("a.pt", "2" * 64, 2)
        )
    with db.sessions() as session:
        (only,) = queries.list_checkpoints(session, job_id=job_id)
        assert only.sha256 == "2" * 64


def test_a_cancel_waits_for_a_worker_starting_the_job_and_then_asks_it_to_stop(
    db: Database,
) -> None:
    """On both databases: the worker's claim and the API's cancel take the row in turn, so the
    cancel sees the job running (and asks it to stop) instead of cancelling a queued job that a
    worker then trains to the end."""
    import threading

    with db.transaction() as session:
        job_id = add_job(session).id
    seen: list[str] = []

    def cancel() -> None:
        with db.transaction() as session:
            job = queries.lock_job(session, job_id=job_id)
            seen.append(job.status)
            queries.request_cancel(session, job=job)

    with db.transaction() as session:  # the worker's claim, holding the row
        job = queries.lock_job(session, job_id=job_id)
        canceller = threading.Thread(target=cancel)
        canceller.start()
        canceller.join(timeout=0.5)  # it waits for the claim's transaction
        queries.mark_running(session, job=job, worker="w", device="cpu")
    canceller.join(timeout=30)
    assert seen == ["running"]
    with db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert (job.status, job.cancel_requested) == ("running", True)
