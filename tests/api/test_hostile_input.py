"""Hostile request bodies and headers: non-JSON numbers, NUL characters, integers past what a
database column or an RNG takes, types the schema forbids, nets no machine could allocate. Each
is a 422 naming the field, on SQLite and on PostgreSQL, and leaves nothing behind (no job row,
nothing enqueued, no file)."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from core.db import Database
from core.settings import Settings
from tests.conftest import RecordingQueue
from tests.factories import add_job

BODY: dict[str, Any] = {
    "model": {"arch": "mlp", "config": {"hidden_sizes": [16]}},
    "dataset": {"name": "digits"},
    "hyperparameters": {"epochs": 1},
}
NOT_JSON_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400"]
# Where a number goes in a job body: a typed field, a builder option, a k-fold override, a
# sweep choice (the last three are free JSON until the job is checked as a whole).
PLACES: dict[str, tuple[str, list[str | int]]] = {
    "hyperparameter": (
        '{"model": {"arch": "lenet"}, "dataset": {"name": "digits"}, '
        '"hyperparameters": {"lr": %s}}',
        ["body", "hyperparameters", "lr"],
    ),
    "builder option": (
        '{"model": {"arch": "mlp", "config": {"dropout": %s}}, "dataset": {"name": "digits"}}',
        ["body", "model", "config", "dropout"],
    ),
    "k-fold override": (
        '{"kind": "kfold", "model": {"arch": "lenet"}, "dataset": {"name": "digits"}, '
        '"kfold": {"candidates": [{"label": "a", "hyperparameters": {"lr": %s}}]}}',
        ["body", "kfold", "candidates", 0, "hyperparameters", "lr"],
    ),
    "sweep choice": (
        '{"kind": "sweep", "model": {"arch": "lenet"}, "dataset": {"name": "digits"}, '
        '"sweep": {"space": {"lr": [0.1, %s]}}}',
        ["body", "sweep", "space", "lr", 1],
    ),
    "time limit": (
        '{"model": {"arch": "lenet"}, "dataset": {"name": "digits"}, "time_limit_s": %s}',
        ["body", "time_limit_s"],
    ),
}


def nothing_stored(client: TestClient, queue: RecordingQueue) -> bool:
    return client.get("/v1/jobs").json()["total"] == 0 and queue.sent == queue.steps == []


def locs(answer: Any) -> list[list[Any]]:
    return [error["loc"] for error in answer.json()["detail"]]


@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_non_json_number_is_a_422_naming_the_field(
    any_db_client: TestClient, queue: RecordingQueue, place: str
) -> None:
    template, loc = PLACES[place]
    for number in NOT_JSON_NUMBERS:
        answer = any_db_client.post(
            "/v1/jobs", content=template % number, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, (number, answer.text)
        assert locs(answer) == [loc]
    assert nothing_stored(any_db_client, queue)


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", None])
def test_a_body_of_bytes_that_are_not_text_is_a_422(
    any_db_client: TestClient, queue: RecordingQueue, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    answer = any_db_client.post("/v1/jobs", content=b"\xff\xfe{", headers=headers)
    assert answer.status_code == 422 and locs(answer) == [["body"]]
    assert nothing_stored(any_db_client, queue)


def test_a_non_json_number_in_an_alias_body_is_a_422(any_db_client: TestClient) -> None:
    answer = any_db_client.post(
        "/v1/models/0123abcd/alias",
        content='{"name": "lenet", "production": NaN}',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422 and locs(answer) == [["body", "production"]]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"kind": "predict", "model": "lenet\x00", "dataset": {"name": "digits"}}, ["model"]),
        (
            {**BODY, "kind": "finetune", "finetune": {"source": {"job_id": "\x00"}}},
            ["finetune", "source", "job_id"],
        ),
    ],
    ids=["predict-model", "finetune-source"],
)
def test_a_nul_in_a_body_string_is_a_422_naming_it(
    any_db_client: TestClient, queue: RecordingQueue, body: dict[str, Any], loc: list[str]
) -> None:
    answer = any_db_client.post("/v1/jobs", json=body)
    assert answer.status_code == 422, answer.text
    assert locs(answer) == [["body", *loc]]
    assert nothing_stored(any_db_client, queue)


# Integers past what the worker's RNGs (and databases) take, and a hidden layer no machine could
# allocate: each was accepted, and the job failed on the worker.
TOO_BIG: dict[str, tuple[dict[str, Any], list[Any]]] = {
    "seed": (
        {**BODY, "hyperparameters": {"epochs": 1, "seed": 2**70}},
        ["hyperparameters", "seed"],
    ),
    "split_seed": (
        {**BODY, "dataset": {"name": "digits", "split_seed": 2**70}},
        ["dataset", "split_seed"],
    ),
    "sweep seed": (
        {**BODY, "kind": "sweep", "sweep": {"space": {"lr": [0.1, 0.2]}, "seed": 2**70}},
        ["sweep", "seed"],
    ),
    "hidden size": (
        {**BODY, "model": {"arch": "mlp", "config": {"hidden_sizes": [1_000_000_000]}}},
        ["model", "config"],
    ),
}


@pytest.mark.parametrize("case", sorted(TOO_BIG))
def test_integers_past_their_bounds_are_refused_at_submission(
    any_db_client: TestClient, queue: RecordingQueue, case: str
) -> None:
    body, loc = TOO_BIG[case]
    answer = any_db_client.post("/v1/jobs", json=body)
    assert answer.status_code == 422, answer.text
    assert locs(answer)[0][: len(loc) + 1] == ["body", *loc]
    assert nothing_stored(any_db_client, queue)


# The schema's types, as the schema means them: no bool for a number, no text for a number, no
# time limit that rounds to nothing.
NOT_THE_SCHEMAS: dict[str, tuple[dict[str, Any], list[Any]]] = {
    "bool seed": (
        {**BODY, "dataset": {"name": "digits", "split_seed": False}},
        ["dataset", "split_seed"],
    ),
    "bool lr": ({**BODY, "hyperparameters": {"lr": True}}, ["hyperparameters", "lr"]),
    "text epochs": ({**BODY, "hyperparameters": {"epochs": "5"}}, ["hyperparameters", "epochs"]),
    "denormal time limit": ({**BODY, "time_limit_s": 5e-324}, ["time_limit_s"]),
}


@pytest.mark.parametrize("case", sorted(NOT_THE_SCHEMAS))
def test_values_the_schema_forbids_are_refused(
    any_db_client: TestClient, queue: RecordingQueue, case: str
) -> None:
    body, loc = NOT_THE_SCHEMAS[case]
    answer = any_db_client.post("/v1/jobs", json=body)
    assert answer.status_code == 422, answer.text
    assert locs(answer) == [["body", *loc]]
    assert nothing_stored(any_db_client, queue)


def test_an_integer_is_what_json_schema_counts_as_one(any_db_client: TestClient) -> None:
    """Neither `false` nor `"3"`, but 3.0 (JSON has one kind of number) is."""
    for seed in (False, "3", 3.5):
        body = {**BODY, "dataset": {"name": "digits", "split_seed": seed}}
        assert any_db_client.post("/v1/jobs", json=body).status_code == 422
    body = {
        **BODY,
        "hyperparameters": {"epochs": 1.0},
        "dataset": {"name": "digits", "split_seed": 3.0},
    }
    answer = any_db_client.post("/v1/jobs", json=body)
    assert answer.status_code == 202, answer.text
    params = answer.json()["params"]
    assert params["hyperparameters"]["epochs"] == 1 and params["dataset"]["split_seed"] == 3


# Every width within its bound, but 16 layers of 16,384 units are 4 billion weights.
HUGE = [16_384] * 16
OVER_BUDGET: dict[str, dict[str, Any]] = {
    "model": {**BODY, "model": {"arch": "mlp", "config": {"hidden_sizes": HUGE}}},
    "k-fold candidate": {
        **BODY,
        "kind": "kfold",
        "kfold": {"candidates": [{"label": "a"}, {"label": "b", "config": {"hidden_sizes": HUGE}}]},
    },
    "sweep choice": {
        **BODY,
        "kind": "sweep",
        "sweep": {"space": {"hidden_sizes": [[16], HUGE]}},
    },
}


@pytest.mark.parametrize("case", sorted(OVER_BUDGET))
def test_a_net_over_the_parameter_budget_is_refused(
    any_db_client: TestClient, queue: RecordingQueue, case: str
) -> None:
    answer = any_db_client.post("/v1/jobs", json=OVER_BUDGET[case])
    assert answer.status_code == 422, answer.text
    assert "D2L_MAX_MODEL_PARAMETERS" in answer.json()["detail"]
    assert nothing_stored(any_db_client, queue)


def test_the_parameter_budget_is_a_setting(
    settings: Settings, db: Database, database_url: str, queue: RecordingQueue
) -> None:
    from api.app import create_app

    small = Settings(
        data_dir=settings.data_dir, database_url=database_url, max_model_parameters=1000
    )
    app = create_app(small)
    app.state.job_queue = queue
    with TestClient(app) as client:
        answer = client.post("/v1/jobs", json=BODY)  # 784*16 + 16 + 16*10 + 10
    assert answer.status_code == 422 and "12,730 parameters" in answer.json()["detail"]


def test_a_huge_last_event_id_is_a_422(any_db_client: TestClient, db: Database) -> None:
    with db.transaction() as session:
        job_id = add_job(session).id
    answer = any_db_client.get(
        f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "99999999999999999999"}
    )
    assert answer.status_code == 422
    assert locs(answer) == [["header", "last-event-id"]]


def state_dict_file() -> bytes:
    buffer = io.BytesIO()
    torch.save({"output.weight": torch.zeros(10, 64), "output.bias": torch.zeros(10)}, buffer)
    return buffer.getvalue()


def test_a_checkpoint_is_checked_without_allocating_its_net(
    any_db_client: TestClient, settings: Settings
) -> None:
    """The declared net is built on the meta device: a terabyte-sized config costs nothing to
    refuse, and weights that fit their declared net are still accepted."""
    answer = any_db_client.post(
        "/v1/checkpoints",
        files={"file": ("w.pt", state_dict_file())},
        data={"arch": "mlp", "config": '{"hidden_sizes": [1000000000000]}', "input_size": "8"},
    )
    assert answer.status_code == 422
    assert "hidden_sizes" in answer.json()["detail"]
    assert not list((settings.artifacts / "uploads").glob("*"))
    answer = any_db_client.post(
        "/v1/checkpoints",
        files={"file": ("w.pt", state_dict_file())},
        data={"arch": "mlp", "config": '{"hidden_sizes": []}', "input_size": "8"},
    )
    assert answer.status_code == 201, answer.text


def test_an_upload_name_with_a_nul_is_refused_and_stores_nothing(
    any_db_client: TestClient, settings: Settings
) -> None:
    answer = any_db_client.post(
        "/v1/datasets", files={"file": ("x.csv", b"a,b\n1,2\n3,4\n")}, data={"name": "x\x00y"}
    )
    assert answer.status_code == 422 and locs(answer) == [["body", "name"]]
    assert any_db_client.get("/v1/datasets").json()[-1]["source"] != "upload"
    uploads = settings.datasets_dir / "uploads"
    assert not uploads.exists() or not list(uploads.iterdir())


def test_an_upload_file_name_with_a_nul_is_refused(any_db_client: TestClient) -> None:
    boundary = "d2lboundary"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="x\x00.csv"\r\n\r\n'
        "a,b\n1,2\n3,4\n\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    answer = any_db_client.post(
        "/v1/datasets",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert answer.status_code == 422
    assert "control characters" in answer.json()["detail"]
