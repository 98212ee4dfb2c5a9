"""GET /v1/experiments/{name} and /compare: an experiment's runs at a glance."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from core.db import Database
from core.jobs import metrics, queries
from tests.factories import add_job


def run(
    db: Database,
    *,
    lr: float,
    status: str,
    final: dict[tuple[str, str], float],
    result: dict[str, Any] | None = None,
) -> str:
    """A job of experiment `exp` trained with `lr`, its last epoch recorded, ended as `status`."""
    with db.transaction() as session:
        job = add_job(session, experiment="exp", hyperparameters={"epochs": 2, "lr": lr})
        queries.mark_running(session, job=job, worker="w", device="cpu")
        for epoch in (1, 2):
            values = {key: value - 0.1 * (2 - epoch) for key, value in final.items()}
            values[("c0/f1/val", "acc")] = 0.99  # a fold's curve: never a run's final metric
            values[("layers", "0.weight/grad_norm")] = 5.0
            metrics.record_epoch(session, job_id=job.id, epoch=epoch, step=epoch, values=values)
        if status != "running":
            queries.finish_job(session, job=job, status=status, result=result)
        return job.id


def three_runs(db: Database) -> tuple[str, str, str]:
    good = run(
        db,
        lr=0.1,
        status="succeeded",
        final={
            ("train", "acc"): 0.95,
            ("val", "acc"): 0.9,
            ("train", "loss"): 0.2,
            ("val", "loss"): 0.3,
        },
        result={"test_acc": 0.88, "parameters": 1234},
    )
    worse = run(
        db,
        lr=0.5,
        status="succeeded",
        final={
            ("train", "acc"): 0.99,
            ("val", "acc"): 0.8,
            ("train", "loss"): 0.05,
            ("val", "loss"): 0.6,
        },
        result={"test_acc": 0.91, "parameters": 1234},
    )
    running = run(db, lr=0.9, status="running", final={("train", "acc"): 0.5, ("val", "acc"): 0.99})
    return good, worse, running


def test_summary_counts_statuses_and_names_the_best_succeeded_run(
    client: TestClient, sqlite_db: Database
) -> None:
    good, worse, _ = three_runs(sqlite_db)
    summary = client.get("/v1/experiments/exp").json()
    assert summary["jobs"] == 3
    assert summary["status_counts"] == {
        "queued": 0,
        "running": 1,
        "succeeded": 2,
        "failed": 0,
        "cancelled": 0,
    }
    assert summary["metric"] == "val_acc" and summary["goal"] == "max"
    assert summary["best"]["job_id"] == good and summary["best"]["value"] == 0.9

    by_test = client.get("/v1/experiments/exp", params={"metric": "test_acc"}).json()
    assert by_test["best"]["job_id"] == worse
    by_loss = client.get("/v1/experiments/exp", params={"metric": "val_loss"}).json()
    assert by_loss["goal"] == "min" and by_loss["best"]["job_id"] == good
    flipped = client.get("/v1/experiments/exp", params={"metric": "val_loss", "goal": "max"})
    assert flipped.json()["best"]["job_id"] == worse


def test_compare_lists_runs_best_first_with_what_differs(
    client: TestClient, sqlite_db: Database
) -> None:
    good, worse, running = three_runs(sqlite_db)
    table = client.get("/v1/experiments/exp/compare", params={"metric": "val_acc"}).json()
    assert table["varying"] == ["hyperparameters.lr"]
    assert [row["job_id"] for row in table["runs"]] == [running, good, worse]
    best = table["runs"][1]
    assert best["rank"] == 2 and best["settings"] == {"hyperparameters.lr": 0.1}
    assert best["final"] == {"train_acc": 0.95, "val_acc": 0.9, "train_loss": 0.2, "val_loss": 0.3}
    assert best["gap"]["acc"] == 0.95 - 0.9 and best["gap"]["loss"] == 0.3 - 0.2
    assert best["test"] == {"test_acc": 0.88} and best["parameters"] == 1234
    assert best["epochs"] == 2 and best["wall_time_s"] >= 0
    assert best["hyperparameters"]["lr"] == 0.1 and best["arch"] == "lenet"


def test_unknown_experiment_and_malformed_metric_are_refused(
    client: TestClient, sqlite_db: Database
) -> None:
    three_runs(sqlite_db)
    missing = client.get("/v1/experiments/nope/compare")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    bad = client.get("/v1/experiments/exp", params={"metric": "accuracy"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "metric"]
    wrong_goal = client.get("/v1/experiments/exp", params={"goal": "best"})
    assert wrong_goal.status_code == 422
