"""Sweeps end to end in the test process: the controller step (worker.sweep_control), real trials
trained by the runner in threads (tests/client's ThreadWorker), pruning and cancelling."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest

from core.artifacts import ArtifactStore
from core.db import Database
from core.jobs import metrics, queries, sweep_queries
from core.jobs.schemas import JobCreate
from core.tables import Job
from tests.client.conftest import ThreadWorker
from worker.runner import JobRunner
from worker.sweep_control import should_prune, sweep_step

TINY_MLP: dict[str, Any] = {
    "experiment": "sweeps",
    "model": {"arch": "mlp", "config": {"hidden_sizes": [32]}},
    "dataset": {"name": "digits"},
    "hyperparameters": {"epochs": 2, "batch_size": 64, "lr": 0.1, "layer_diagnostics": False},
}


def sweep_body(**sweep: Any) -> dict[str, Any]:
    return {**TINY_MLP, "kind": "sweep", "sweep": sweep}


def add_sweep(db: Database, body: dict[str, Any]) -> str:
    with db.transaction() as session:
        spec = JobCreate.model_validate(body)
        return queries.create_job(session, spec=spec, queue="cpu", owner="ada").id


def thread_worker(db: Database, store: ArtifactStore) -> ThreadWorker:
    runner = JobRunner(db=db, store=store, data_dir=store.root, worker_name="w")
    worker = ThreadWorker(runner)
    runner.on_job_end = worker.notify_sweep
    return worker


def drain(worker: ThreadWorker, *, timeout_s: float = 300) -> None:
    """Wait until no trial or step thread is left (each starts the next before it ends)."""
    deadline = time.monotonic() + timeout_s
    while alive := [thread for thread in worker.threads if thread.is_alive()]:
        assert time.monotonic() < deadline, "the sweep did not finish in time"
        alive[0].join(timeout=1)


def run_sweep(db: Database, store: ArtifactStore, body: dict[str, Any]) -> tuple[Job, list[Job]]:
    sweep_id = add_sweep(db, body)
    worker = thread_worker(db, store)
    worker.enqueue_sweep_step(sweep_id, queue="cpu")
    drain(worker)
    with db.sessions() as session:
        sweep = queries.get_job(session, job_id=sweep_id)
        return sweep, list(sweep_queries.list_trials(session, sweep_id=sweep_id))


def most_at_once(trials: Sequence[Job]) -> int:
    """The largest number of trials whose [started_at, finished_at] overlap."""
    events: list[tuple[datetime, int]] = []
    for trial in trials:
        assert trial.started_at is not None and trial.finished_at is not None
        events += [(trial.started_at, 1), (trial.finished_at, -1)]
    running = peak = 0
    for _, change in sorted(events, key=lambda event: (event[0], event[1])):
        running += change
        peak = max(peak, running)
    return peak


def last_val(db: Database, job_id: str, name: str = "acc") -> float:
    with db.sessions() as session:
        rows = metrics.list_metrics(session, job_id=job_id, name=name)
        return [row.value for row in rows if row.split == "val"][-1]


def test_a_sweep_of_4_trials_runs_at_most_2_at_once_and_picks_the_best(
    db: Database, store: ArtifactStore
) -> None:
    """On SQLite and on PostgreSQL (row locks there; a write lock taken first on SQLite)."""
    body = sweep_body(
        space={"lr": {"low": 0.01, "high": 1.0, "log": True}, "dropout": [0.0, 0.3]},
        trials=4,
        max_concurrent=2,
        metric="val_acc",
    )
    sweep, trials = run_sweep(db, store, body)
    assert sweep.status == "succeeded", sweep.error
    assert len(trials) == 4
    assert all(trial.status == "succeeded" for trial in trials), [t.error for t in trials]
    assert all(trial.parent_id == sweep.id and trial.owner == "ada" for trial in trials)
    assert {trial.kind for trial in trials} == {"train"}
    assert {trial.experiment.name for trial in trials} == {"sweeps"}
    assert most_at_once(trials) == 2  # two start together; never a third beside them
    scores = {trial.id: last_val(db, trial.id) for trial in trials}
    best = max(scores, key=lambda job_id: scores[job_id])
    result = sweep.result or {}
    assert result["best_trial"] == best
    assert result["best_value"] == pytest.approx(scores[best])
    assert [row["job_id"] for row in result["trials"]] == [trial.id for trial in trials]
    best_trial = next(trial for trial in trials if trial.id == best)
    assert result["best_params"] == {
        "hyperparameters.lr": best_trial.params["hyperparameters"]["lr"],
        "hyperparameters.dropout": best_trial.params["hyperparameters"]["dropout"],
    }
    lrs = [trial.params["hyperparameters"]["lr"] for trial in trials]
    assert len(set(lrs)) == 4 and all(0.01 <= lr <= 1.0 for lr in lrs)  # four fresh draws
    assert sweep.epoch == 8 and sweep.started_at is not None


def test_a_grid_sweep_trains_every_grid_point_once(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    body = sweep_body(
        space={"lr": [0.05, 0.5], "hidden_sizes": [[16], [32, 16]]},
        search="grid",
        max_concurrent=3,
        metric="val_loss",
    )
    body["hyperparameters"] = {**body["hyperparameters"], "epochs": 1}
    sweep, trials = run_sweep(sqlite_db, store, body)
    assert sweep.status == "succeeded", sweep.error
    points = sorted(
        (t.params["hyperparameters"]["lr"], t.params["model"]["config"]["hidden_sizes"])
        for t in trials
    )
    assert points == [(0.05, [16]), (0.05, [32, 16]), (0.5, [16]), (0.5, [32, 16])]
    assert most_at_once(trials) <= 3
    losses = {trial.id: last_val(sqlite_db, trial.id, "loss") for trial in trials}
    assert (sweep.result or {})["best_trial"] == min(losses, key=lambda job_id: losses[job_id])
    assert (sweep.result or {})["direction"] == "minimize"


def add_trial(
    db: Database, sweep_id: str, *, lr: float, val_acc: Sequence[float], status: str
) -> str:
    """A trial row with recorded validation accuracies (as if it had trained)."""
    spec = JobCreate.model_validate(
        {**TINY_MLP, "hyperparameters": {**TINY_MLP["hyperparameters"], "lr": lr, "epochs": 3}}
    )
    with db.transaction() as session:
        trial = queries.create_job(session, spec=spec, queue="cpu", parent_id=sweep_id)
        for epoch, value in enumerate(val_acc, start=1):
            metrics.record_epoch(
                session, job_id=trial.id, epoch=epoch, step=epoch, values={("val", "acc"): value}
            )
        if status != "queued":
            trial.status = status
        if status == "succeeded":
            queries.finish_job(session, job=trial, status="succeeded", result={})
        return trial.id


def test_a_clearly_bad_trial_is_pruned_after_its_first_epoch(
    sqlite_db: Database, store: ArtifactStore
) -> None:
    sweep_id = add_sweep(
        sqlite_db,
        sweep_body(
            space={"lr": [1e-6, 0.1]},
            trials=3,
            prune="median",
            prune_startup_trials=1,
            max_concurrent=1,
        ),
    )
    add_trial(sqlite_db, sweep_id, lr=0.1, val_acc=[0.97, 0.98, 0.99], status="succeeded")
    # An lr of 1e-6 leaves the net at chance (~10%): far below the finished trial's 97%.
    bad = add_trial(sqlite_db, sweep_id, lr=1e-6, val_acc=[], status="queued")
    JobRunner(db=sqlite_db, store=store, data_dir=store.root, worker_name="w").run(bad)
    with sqlite_db.sessions() as session:
        trial = queries.get_job(session, job_id=bad)
        assert trial.status == "cancelled"
        assert trial.result is not None and trial.result["pruned"] is True
        assert trial.result["at_epoch"] == 1
        assert trial.error is not None and "pruned by the sweep's median pruner" in trial.error
        epochs = {row.epoch for row in metrics.list_metrics(session, job_id=bad)}
        assert epochs == {1}  # epochs 2 and 3 never ran
        assert queries.list_checkpoints(session, job_id=bad)  # kept, as for a cancel
        sweep = queries.get_job(session, job_id=sweep_id)
        trials = list(sweep_queries.list_trials(session, sweep_id=sweep_id))
        settings = sweep_queries.sweep_settings(sweep)
        series = sweep_queries.metric_series(
            session, job_ids=[t.id for t in trials], key=("val", "acc")
        )
    summary = sweep_queries.sweep_result(trials, series, settings)
    assert [row["status"] for row in summary["trials"]] == ["succeeded", "pruned"]


def test_a_good_trial_is_not_pruned_and_asha_keeps_the_best_of_a_rung(
    sqlite_db: Database,
) -> None:
    sweep_id = add_sweep(
        sqlite_db,
        sweep_body(space={"lr": [0.1, 0.2]}, trials=4, prune="median", prune_startup_trials=1),
    )
    add_trial(sqlite_db, sweep_id, lr=0.1, val_acc=[0.5, 0.6, 0.7], status="succeeded")
    good = add_trial(sqlite_db, sweep_id, lr=0.2, val_acc=[0.8], status="running")
    with sqlite_db.sessions() as session:
        settings = sweep_queries.sweep_settings(queries.get_job(session, job_id=sweep_id))
    decide = dict(db=sqlite_db, settings=settings, sweep_id=sweep_id, job_id=good, epoch=1)
    assert not should_prune(**decide, value=0.8)  # type: ignore[arg-type]
    assert should_prune(**decide, value=0.1)  # type: ignore[arg-type]
    asha = settings.model_copy(update={"prune": "asha", "reduction_factor": 2})
    decide["settings"] = asha
    # Rung 0 (epoch 1) holds 0.5 (the finished trial): with 2 competing values, only the best
    # of the two goes on.
    assert not should_prune(**decide, value=0.8)  # type: ignore[arg-type]
    assert should_prune(**decide, value=0.3)  # type: ignore[arg-type]


def test_cancelling_a_sweep_cancels_its_trials_and_asks_for_no_more(
    db: Database, store: ArtifactStore
) -> None:
    body = sweep_body(space={"lr": [0.05, 0.1, 0.2, 0.4]}, search="grid", max_concurrent=2)
    body["hyperparameters"] = {**body["hyperparameters"], "epochs": 200}
    sweep_id = add_sweep(db, body)
    worker = thread_worker(db, store)
    worker.enqueue_sweep_step(sweep_id, queue="cpu")
    deadline = time.monotonic() + 60
    while True:
        with db.sessions() as session:
            trials = sweep_queries.list_trials(session, sweep_id=sweep_id)
            if [t.status for t in trials] == ["running", "running"]:
                break
        assert time.monotonic() < deadline, [t.status for t in trials]
        time.sleep(0.2)
    with db.transaction() as session:
        sweep = queries.lock_job(session, job_id=sweep_id)
        sweep_queries.cancel_sweep(session, sweep=sweep)
    drain(worker, timeout_s=120)
    with db.sessions() as session:
        sweep = queries.get_job(session, job_id=sweep_id)
        trials = sweep_queries.list_trials(session, sweep_id=sweep_id)
        assert sweep.status == "cancelled"
        assert [t.status for t in trials] == ["cancelled", "cancelled"]  # and no third trial
        assert all(t.epoch < 200 for t in trials)
    assert sweep_step(db, worker, sweep_id) == []  # a late step changes nothing
