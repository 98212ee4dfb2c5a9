"""GET /v1/jobs/{id}/sweep-plots: Optuna's own plots of a sweep (optimisation history, parallel
coordinates, per-epoch values), as Plotly figures, from the study rebuilt from its trial rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from core.auth import tokens
from core.db import Database
from core.jobs import metrics, queries
from core.jobs.schemas import JobCreate
from core.settings import Settings
from tests.factories import add_job, migrated

BASE: dict[str, Any] = {
    "experiment": "sweeps",
    "model": {"arch": "mlp", "config": {"hidden_sizes": [32]}},
    "dataset": {"name": "digits"},
    "hyperparameters": {"epochs": 3, "batch_size": 64, "lr": 0.1},
}
LR_TRIALS = {0.01: [0.3, 0.5, 0.6], 0.1: [0.7, 0.85, 0.9], 0.5: [0.6, 0.7, 0.75]}


def add_sweep_with_trials(
    db: Database,
    *,
    space: dict[str, Any] | None = None,
    trials: dict[Any, list[float]] | None = None,
    owner: str | None = None,
) -> str:
    """A finished sweep whose trials (one per value of its one searched path) recorded these
    validation accuracies, epoch by epoch."""
    space = space or {"hyperparameters.lr": list(LR_TRIALS)}
    trials = trials or LR_TRIALS
    ((path, _),) = space.items()
    sweep_body = {**BASE, "kind": "sweep", "sweep": {"space": space, "trials": len(trials)}}
    with db.transaction() as session:
        sweep = queries.create_job(
            session, spec=JobCreate.model_validate(sweep_body), queue="cpu", owner=owner
        )
        for value, accuracies in trials.items():
            section, key = path.split(".", 1)
            body = {**BASE, section: {**BASE[section], key: value}}
            if section == "model":
                body["model"] = {**BASE["model"], "config": {"hidden_sizes": value}}
            trial = queries.create_job(
                session,
                spec=JobCreate.model_validate(body),
                queue="cpu",
                parent_id=sweep.id,
                owner=owner,
            )
            for epoch, accuracy in enumerate(accuracies, start=1):
                values = {("val", "acc"): accuracy}
                metrics.record_epoch(
                    session, job_id=trial.id, epoch=epoch, step=epoch, values=values
                )
            queries.finish_job(session, job=trial, status="succeeded", result={})
        queries.finish_job(session, job=sweep, status="succeeded", result={})
        return sweep.id


def test_a_sweeps_plots_show_every_trials_value_and_its_epochs(
    client: TestClient, sqlite_db: Database
) -> None:
    sweep_id = add_sweep_with_trials(sqlite_db)
    answer = client.get(f"/v1/jobs/{sweep_id}/sweep-plots")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["metric"], body["direction"]) == ("val_acc", "maximize")
    assert (body["trials"], body["complete"]) == (3, 3)
    history = body["plots"]["optimization_history"]["data"]
    values = [trace["y"] for trace in history if trace.get("mode") == "markers" and trace["y"]]
    assert values == [[0.6, 0.9, 0.75]]  # each trial's final value, in the order asked
    per_epoch = body["plots"]["intermediate_values"]["data"]
    assert sorted(trace["y"] for trace in per_epoch) == sorted(LR_TRIALS.values())
    lines = body["plots"]["parallel_coordinate"]["data"]
    shown = {tuple(pair) for trace in lines for pair in trace.get("customdata", [])}
    assert {("hyperparameters.lr", lr) for lr in ("0.01", "0.1", "0.5")} <= shown


def test_choices_are_named_on_the_axes_not_numbered(
    client: TestClient, sqlite_db: Database
) -> None:
    sizes = {(64,): [0.8, 0.9], (32, 16): [0.7, 0.75]}
    sweep_id = add_sweep_with_trials(
        sqlite_db,
        space={"model.config.hidden_sizes": [[64], [32, 16]]},
        trials={tuple_: accuracies for tuple_, accuracies in sizes.items()},
    )
    body = client.get(f"/v1/jobs/{sweep_id}/sweep-plots").json()
    lines = body["plots"]["parallel_coordinate"]["data"]
    shown = {value for trace in lines for _, value in trace.get("customdata", [])}
    assert {"[64]", "[32, 16]"} <= shown  # the choices themselves, not their indices 0 and 1


def test_a_job_that_is_not_a_sweep_is_refused_and_an_unknown_one_is_404(
    client: TestClient, sqlite_db: Database
) -> None:
    with sqlite_db.transaction() as session:
        job_id = add_job(session).id
    refused = client.get(f"/v1/jobs/{job_id}/sweep-plots")
    assert refused.status_code == 422
    assert "not a sweep" in refused.json()["detail"]
    assert client.get("/v1/jobs/nosuchjob/sweep-plots").status_code == 404


def test_another_owners_sweep_is_404(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth=True)
    db = migrated(settings)
    sweep_id = add_sweep_with_trials(db, owner="alice")
    with db.transaction() as session:
        alice = tokens.create_token(session, owner="alice")[1]
        bob = tokens.create_token(session, owner="bob")[1]
    with TestClient(create_app(settings)) as client:
        path = f"/v1/jobs/{sweep_id}/sweep-plots"
        assert client.get(path, headers={"Authorization": f"Bearer {alice}"}).status_code == 200
        assert client.get(path, headers={"Authorization": f"Bearer {bob}"}).status_code == 404
    db.engine.dispose()
