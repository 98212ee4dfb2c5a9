"""POST /v1/jobs with `kind: "sweep"`: validated at submission, stored, its controller step
enqueued (never a training slot); trials listed with ?parent=; cancelling reaches the trials."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.db import Database
from core.queue import SWEEP_STEP_TASK
from core.settings import Settings
from tests.conftest import RecordingQueue
from worker.sweep_control import sweep_step

BASE: dict[str, Any] = {
    "kind": "sweep",
    "experiment": "sweep-api",
    "model": {"arch": "mlp", "config": {"hidden_sizes": [32]}},
    "dataset": {"name": "digits"},
    "hyperparameters": {"epochs": 2, "batch_size": 64},
}


def sweep(**settings: Any) -> dict[str, Any]:
    return {**BASE, "sweep": settings}


def test_a_sweep_is_stored_and_only_its_controller_step_is_enqueued(
    client: TestClient, queue: RecordingQueue
) -> None:
    response = client.post(
        "/v1/jobs",
        json=sweep(space={"lr": [0.05, 0.1], "dropout": {"low": 0.1, "high": 0.5}}, trials=4),
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["kind"], job["status"]) == ("sweep", "queued")
    assert job["params"]["sweep"]["space"] == {
        "hyperparameters.lr": [0.05, 0.1],
        "hyperparameters.dropout": {"low": 0.1, "high": 0.5, "log": False, "type": None},
    }
    assert job["progress"] == {
        "epoch": 0,
        "epochs": 8,
        "step": 0,
        "steps": 0,
    }  # 4 trials of 2 epochs
    assert queue.steps == [job["id"]] and queue.sent == []  # no training slot for the sweep
    assert SWEEP_STEP_TASK == "d2l.sweep_step"


@pytest.mark.parametrize(
    ("sweep_settings", "named"),
    [
        ({"space": {"lr": [0.1, -1.0]}}, "hyperparameters.lr"),
        ({"space": {"hyperparameters.weight_decay": {"low": 0.0, "high": 50.0}}}, "weight_decay"),
        ({"space": {"bogus_option": [1, 2]}}, "bogus_option"),
        ({"space": {"experiment": ["a", "b"]}}, "experiment"),
        (
            {"space": {"lr": {"low": 0.01, "high": 0.1}}, "search": "grid"},
            "space.hyperparameters.lr",
        ),
        ({"space": {"lr": [0.1, 0.2]}, "search": "grid", "trials": 3}, "trials"),
        ({"space": {"lr": {"low": 0.0, "high": 0.1, "log": True}}}, "log range"),
        ({"space": {}}, "space"),
    ],
)
def test_a_bad_space_is_a_422_naming_the_field(
    client: TestClient, queue: RecordingQueue, sweep_settings: dict[str, Any], named: str
) -> None:
    response = client.post("/v1/jobs", json=sweep(**sweep_settings))
    assert response.status_code == 422, response.text
    assert named in response.text
    assert queue.steps == []


def test_kind_and_settings_must_go_together(client: TestClient) -> None:
    response = client.post("/v1/jobs", json={**BASE, "kind": "train", "sweep": {"space": {}}})
    assert response.status_code == 422
    response = client.post("/v1/jobs", json=BASE)
    assert response.status_code == 422 and "sweep settings" in response.text


def test_trials_are_listed_by_parent_and_cancelled_with_their_sweep(
    client: TestClient, queue: RecordingQueue, sqlite_db: Database
) -> None:
    sweep_id = client.post(
        "/v1/jobs",
        json=sweep(space={"lr": [0.05, 0.1, 0.2]}, search="grid", max_concurrent=2),
    ).json()["id"]
    started = sweep_step(sqlite_db, queue, sweep_id)  # as the worker would, on the step
    assert len(started) == 2 and [job_id for job_id, _ in queue.sent] == started
    assert sweep_step(sqlite_db, queue, sweep_id) == []  # at most 2 queued or running
    shown = client.get(f"/v1/jobs/{sweep_id}").json()
    assert shown["status"] == "running" and shown["result"] is None
    page = client.get("/v1/jobs", params={"parent": sweep_id}).json()
    assert page["total"] == 2 and {job["id"] for job in page["items"]} == set(started)
    assert {job["kind"] for job in page["items"]} == {"train"}
    assert client.get("/v1/jobs", params={"experiment": "sweep-api"}).json()["total"] == 3

    cancelled = client.post(f"/v1/jobs/{sweep_id}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    trials = client.get("/v1/jobs", params={"parent": sweep_id}).json()["items"]
    assert {job["status"] for job in trials} == {"cancelled"}  # queued: cancelled at once
    assert sweep_step(sqlite_db, queue, sweep_id) == []  # and no more are asked for
    assert client.get("/v1/jobs", params={"parent": sweep_id}).json()["total"] == 2
    assert client.post(f"/v1/jobs/{sweep_id}/cancel").status_code == 409


def test_a_broker_that_refuses_the_step_fails_the_sweep(
    client: TestClient, queue: RecordingQueue
) -> None:
    queue.fail_with = ConnectionError("no broker")
    response = client.post("/v1/jobs", json=sweep(space={"lr": [0.05, 0.1]}))
    assert response.status_code == 503


def test_a_broker_that_refuses_the_trials_fails_the_sweep(
    client: TestClient, queue: RecordingQueue, sqlite_db: Database
) -> None:
    sweep_id = client.post("/v1/jobs", json=sweep(space={"lr": [0.05, 0.1]})).json()["id"]
    queue.fail_with = ConnectionError("no broker")
    assert sweep_step(sqlite_db, queue, sweep_id) == []
    shown = client.get(f"/v1/jobs/{sweep_id}").json()
    assert shown["status"] == "failed" and "broker unreachable" in shown["error"]
    trials = client.get("/v1/jobs", params={"parent": sweep_id}).json()["items"]
    assert len(trials) == 2 and {trial["status"] for trial in trials} == {"failed"}


def test_sweeps_beyond_the_services_bounds_are_refused_naming_the_setting(
    settings: Settings, sqlite_db: Database, queue: RecordingQueue
) -> None:
    bounded = settings.model_copy(update={"sweep_max_trials": 4, "sweep_max_space_values": 5})
    app = create_app(bounded)
    app.state.job_queue = queue
    with TestClient(app) as client:
        too_many = client.post("/v1/jobs", json=sweep(space={"lr": [0.1, 0.2]}, trials=5))
        assert too_many.status_code == 422
        assert "D2L_SWEEP_MAX_TRIALS" in too_many.json()["detail"]
        default = client.post("/v1/jobs", json=sweep(space={"lr": [0.1, 0.2]}))
        assert "D2L_SWEEP_MAX_TRIALS" in default.text  # a random search's 10 trials
        space = {"lr": [0.1, 0.2, 0.3], "dropout": [0.1, 0.2]}
        within = client.post("/v1/jobs", json=sweep(space=space, trials=4))
        assert within.status_code == 202, within.text  # 5 values, 4 trials: at the bounds
        grid = client.post("/v1/jobs", json=sweep(space=space, search="grid"))
        assert "D2L_SWEEP_MAX_TRIALS" in grid.text  # 6 grid points
        wider = {**space, "weight_decay": {"low": 0.0, "high": 0.1}}  # a range counts 2
        wide = client.post("/v1/jobs", json=sweep(space=wider, trials=2))
        assert wide.status_code == 422
        assert "D2L_SWEEP_MAX_SPACE_VALUES" in wide.json()["detail"]
    assert len(queue.steps) == 1
