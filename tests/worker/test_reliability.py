"""Nothing lost when a worker dies: resume, duplicate deliveries, attempts, the reaper, cancel."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import torch
from sqlalchemy import delete

from core.artifacts import ArtifactStore
from core.db import Database
from core.jobs import metrics, queries
from core.tables import Model, utcnow
from tests.conftest import RecordingQueue
from tests.factories import add_job, job_spec
from worker.engine import fit
from worker.reaper import reap
from worker.runner import JobRunner
from worker.training_state import Callbacks, EpochReport, JobCancelled

CPU = torch.device("cpu")
NOWHERE = Path("/nonexistent")  # digits ship with scikit-learn: no data directory needed

# Everything that carries state from epoch to epoch: momentum, an lr schedule, dropout and
# augmentation draws, the shuffle order, early-stopping progress.
STATEFUL = {
    "model": {"arch": "mlp", "config": {"hidden_sizes": [64], "dropout": 0.3}},
    "hyperparameters": {
        "epochs": 5,
        "batch_size": 64,
        "lr": 0.1,
        "momentum": 0.9,
        "lr_schedule": {"name": "cosine"},
        "augmentation": {"random_crop_padding": 2},
        "early_stopping": {"metric": "val_acc", "patience": 10},
        "seed": 3,
    },
}


def through_a_file(payload: dict[str, Any]) -> dict[str, Any]:
    """What a resumed attempt reads: the checkpoint saved and loaded with weights_only."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_a_resumed_run_ends_exactly_as_an_uninterrupted_one() -> None:
    spec = job_spec(**STATEFUL)
    whole: list[EpochReport] = []
    expected = fit(spec, device=CPU, data_dir=NOWHERE, callbacks=Callbacks(on_epoch=whole.append))

    saved: dict[int, dict[str, Any]] = {}
    interrupted = Callbacks(
        on_checkpoint=lambda epoch, payload: saved.__setitem__(epoch, through_a_file(payload)),
        should_stop=lambda: 2 in saved,  # dies early in epoch 3
    )
    with pytest.raises(JobCancelled, match="epoch 3"):
        fit(spec, device=CPU, data_dir=NOWHERE, callbacks=interrupted)

    resumed: list[EpochReport] = []
    result = fit(
        spec,
        device=CPU,
        data_dir=NOWHERE,
        callbacks=Callbacks(on_epoch=resumed.append),
        resume=saved[2],
    )
    assert [report.epoch for report in resumed] == [3, 4, 5]
    for before, after in zip(whole[2:], resumed, strict=True):
        assert before.metrics[("train", "loss")] == after.metrics[("train", "loss")]
        assert before.metrics[("val", "acc")] == after.metrics[("val", "acc")]
    for key in ("train_loss", "train_acc", "val_acc", "test_loss", "test_acc", "steps"):
        assert result[key] == expected[key], key


def make_runner(db: Database, store: ArtifactStore, **options: Any) -> JobRunner:
    return JobRunner(
        db=db, store=store, data_dir=store.root, worker_name="w2", heartbeat_timeout_s=2, **options
    )


def claim(db: Database, job_id: str, *, silent_for: timedelta, attempts: int = 1) -> None:
    """The job as a worker left it: running, last heartbeat `silent_for` ago."""
    with db.transaction() as session:
        job = queries.get_job(session, job_id=job_id)
        queries.mark_running(session, job=job, worker="w1", device="cpu")
        job.attempts = attempts
        job.heartbeat_at = utcnow() - silent_for


def test_a_second_delivery_of_a_live_job_does_not_train(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    with sqlite_db.transaction() as session:
        job_id = add_job(session).id
    claim(sqlite_db, job_id, silent_for=timedelta(0))
    make_runner(sqlite_db, store).run(job_id)
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert (job.status, job.worker, job.attempts) == ("running", "w1", 1)
        assert not metrics.list_metrics(session, job_id=job_id)


def test_a_delivery_of_a_job_whose_worker_went_silent_resumes_it(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    with sqlite_db.transaction() as session:
        job_id = add_job(session, hyperparameters={"epochs": 3, "batch_size": 64}).id
    make_runner(sqlite_db, store).run(job_id)  # a first, whole run gives epoch checkpoints
    with sqlite_db.transaction() as session:
        job = queries.get_job(session, job_id=job_id)
        first_result = job.result
        job.status, job.result = "queued", None  # as if the worker died in epoch 2:
        session.execute(delete(Model).where(Model.job_id == job_id))  # no model yet,
        for checkpoint in queries.list_checkpoints(session, job_id=job_id)[1:]:
            session.delete(checkpoint)  # only epoch 1's checkpoint
    claim(sqlite_db, job_id, silent_for=timedelta(minutes=5))
    make_runner(sqlite_db, store).run(job_id)
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert (job.status, job.worker, job.attempts) == ("succeeded", "w2", 2)
        assert job.result is not None and first_result is not None
        assert job.result["resumed_after_epoch"] == 1 and "resumed_after_epoch" not in first_result
        assert job.result["test_acc"] == first_result["test_acc"]
        losses = metrics.list_metrics(session, job_id=job_id, name="loss")
        assert sorted(m.epoch for m in losses if m.split == "train") == [1, 2, 3]


def test_a_job_out_of_attempts_fails_saying_why(sqlite_db: Database, store: ArtifactStore) -> None:
    with sqlite_db.transaction() as session:
        job_id = add_job(session).id
    claim(sqlite_db, job_id, silent_for=timedelta(minutes=5), attempts=3)
    make_runner(sqlite_db, store, max_attempts=3).run(job_id)
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "failed" and "gave up after 3 attempts" in (job.error or "")


def test_the_reaper_requeues_silent_jobs_once_and_fails_those_out_of_attempts(
    db: Database,
) -> None:
    with db.transaction() as session:
        silent, hopeless, alive = (add_job(session).id for _ in range(3))
    claim(db, silent, silent_for=timedelta(seconds=30))
    claim(db, hopeless, silent_for=timedelta(seconds=30), attempts=3)
    claim(db, alive, silent_for=timedelta(seconds=1))
    queue = RecordingQueue()
    assert reap(db, queue, timeout_s=10, max_attempts=3) == [silent]  # type: ignore[arg-type]
    assert queue.sent == [(silent, "cpu")]
    assert reap(db, queue, timeout_s=10, max_attempts=3) == []  # type: ignore[arg-type]
    with db.sessions() as session:
        status = {
            job_id: queries.get_job(session, job_id=job_id).status
            for job_id in (silent, hopeless, alive)
        }
        assert status == {silent: "queued", hopeless: "failed", alive: "running"}
        assert "giving up" in (queries.get_job(session, job_id=hopeless).error or "")


def test_a_queued_job_cancelled_never_starts(sqlite_db: Database, store: ArtifactStore) -> None:
    with sqlite_db.transaction() as session:
        job = add_job(session)
        queries.request_cancel(session, job=job)
        job_id = job.id
    make_runner(sqlite_db, store).run(job_id)
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert (job.status, job.attempts) == ("cancelled", 0)
        assert not metrics.list_metrics(session, job_id=job_id)


def test_a_running_job_cancelled_stops_soon_and_keeps_its_checkpoints(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    with sqlite_db.transaction() as session:
        job_id = add_job(session, hyperparameters={"epochs": 500, "batch_size": 64}).id
    runner = threading.Thread(target=make_runner(sqlite_db, store).run, args=(job_id,))
    runner.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with sqlite_db.sessions() as session:
            if queries.get_job(session, job_id=job_id).epoch >= 1:
                break
        time.sleep(0.1)
    with sqlite_db.transaction() as session:
        queries.request_cancel(session, job=queries.lock_job(session, job_id=job_id))
    asked = time.monotonic()
    runner.join(timeout=60)
    assert not runner.is_alive() and time.monotonic() - asked < 10
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "cancelled" and "checkpoints are kept" in (job.error or "")
        assert job.epoch < 500 and queries.list_checkpoints(session, job_id=job_id)


def test_a_job_past_its_time_limit_stops_and_fails_saying_so(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    with sqlite_db.transaction() as session:
        job_id = add_job(
            session, hyperparameters={"epochs": 500, "batch_size": 64}, time_limit_s=2
        ).id
    started = time.monotonic()
    make_runner(sqlite_db, store).run(job_id)
    assert time.monotonic() - started < 30
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "failed" and "time limit of 2 s reached" in (job.error or "")
        assert job.epoch < 500
        kept = len(queries.list_checkpoints(session, job_id=job_id))
        assert kept == min(job.epoch, 3)  # the epochs it finished, as many as it keeps


def test_a_job_cancelled_while_its_worker_was_away_never_trains_again(db: Database) -> None:
    """Its worker died; the cancel (202) only flags it: the reaper ends it `cancelled` instead of
    sending it back, and a delivery still on its way (the broker's own redelivery) trains
    nothing."""
    with db.transaction() as session:
        job_id = add_job(session, hyperparameters={"epochs": 8, "batch_size": 64}).id
    claim(db, job_id, silent_for=timedelta(minutes=5))
    with db.transaction() as session:
        queries.request_cancel(session, job=queries.lock_job(session, job_id=job_id))
    queue = RecordingQueue()
    assert reap(db, queue, timeout_s=10, max_attempts=3) == []  # type: ignore[arg-type]
    assert queue.sent == []
    with db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert job.status == "cancelled" and "worker was away" in (job.error or "")


def test_a_delivery_of_a_silent_job_whose_cancel_was_asked_trains_nothing(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    with sqlite_db.transaction() as session:
        job_id = add_job(session, hyperparameters={"epochs": 8, "batch_size": 64}).id
    claim(sqlite_db, job_id, silent_for=timedelta(minutes=5))
    with sqlite_db.transaction() as session:
        queries.request_cancel(session, job=queries.lock_job(session, job_id=job_id))
    make_runner(sqlite_db, store).run(job_id)  # before the reaper got to it
    with sqlite_db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert (job.status, job.worker, job.attempts) == ("cancelled", "w1", 1)
        assert job.epoch == 0 and not metrics.list_metrics(session, job_id=job_id)
