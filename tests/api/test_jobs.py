"""The jobs and experiments endpoints, with the broker replaced by a recording queue."""

from fastapi.testclient import TestClient

from tests.conftest import RecordingQueue

BODY = {
    "kind": "train",
    "experiment": "lenet-digits",
    "model": {"arch": "lenet"},
    "dataset": {"name": "digits"},
    "hyperparameters": {"epochs": 10, "batch_size": 64, "lr": 0.9, "optimizer": "sgd"},
}


def test_submit_stores_the_job_then_enqueues_its_id(
    client: TestClient, queue: RecordingQueue
) -> None:
    response = client.post("/v1/jobs", json=BODY)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued"
    assert job["progress"] == {"epoch": 0, "epochs": 10, "step": 0, "steps": 0}
    assert queue.sent == [(job["id"], "cpu")]
    stored = client.get(f"/v1/jobs/{job['id']}").json()
    assert stored["params"]["hyperparameters"]["lr"] == 0.9
    assert stored["experiment"] == "lenet-digits"
    assert stored["model_id"] is None and stored["metrics"] == {}


def test_a_job_that_asks_for_a_gpu_goes_to_the_gpu_queue(
    client: TestClient, queue: RecordingQueue
) -> None:
    response = client.post("/v1/jobs", json={**BODY, "device": "cuda:0"})
    assert response.status_code == 202
    assert queue.sent[-1][1] == "gpu"


def errors_of(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {".".join(map(str, e["loc"][1:])): e["msg"] for e in response.json()["detail"]}


def test_unknown_arch_names_the_field_and_the_allowed_values(
    client: TestClient, queue: RecordingQueue
) -> None:
    response = client.post("/v1/jobs", json={**BODY, "model": {"arch": "lenet9"}})
    assert response.status_code == 422
    message = errors_of(response)["model.arch"]
    assert "lenet9" in message and "lenet" in message.split("allowed:")[1]
    assert queue.sent == []


def test_unknown_dataset_names_the_field_and_the_allowed_values(client: TestClient) -> None:
    response = client.post("/v1/jobs", json={**BODY, "dataset": {"name": "imagenet"}})
    assert response.status_code == 422
    assert "digits" in errors_of(response)["dataset.name"]


def test_out_of_range_hyperparameters_are_refused_with_the_limit(client: TestClient) -> None:
    body = {**BODY, "hyperparameters": {"lr": -1, "epochs": 0, "optimizer": "lbfgs"}}
    errors = errors_of(client.post("/v1/jobs", json=body))
    assert "greater than 0" in errors["hyperparameters.lr"]
    assert "greater than or equal to 1" in errors["hyperparameters.epochs"]
    assert "'sgd'" in errors["hyperparameters.optimizer"]


def test_options_the_arch_does_not_take_are_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/jobs", json={**BODY, "model": {"arch": "lenet", "config": {"depth": 3}}}
    )
    assert response.status_code == 422
    assert "activation" in response.text  # names the options it does take


def test_option_values_the_net_refuses_are_caught_at_submission(client: TestClient) -> None:
    response = client.post(
        "/v1/jobs", json={**BODY, "model": {"arch": "lenet", "config": {"activation": "swish"}}}
    )
    assert response.status_code == 422
    assert "swish" in response.text


def test_an_input_size_too_small_for_the_arch_names_the_smallest(client: TestClient) -> None:
    response = client.post("/v1/jobs", json={**BODY, "model": {"arch": "lenet", "input_size": 8}})
    assert response.status_code == 422
    assert "at least 12" in response.text


def test_unknown_fields_are_refused(client: TestClient) -> None:
    response = client.post("/v1/jobs", json={**BODY, "epochs": 3})
    assert response.status_code == 422
    assert "epochs" in response.text


def test_an_unreachable_broker_is_a_503_and_the_job_is_marked_failed(
    client: TestClient, queue: RecordingQueue
) -> None:
    queue.fail_with = ConnectionError("connection refused")
    response = client.post("/v1/jobs", json=BODY)
    assert response.status_code == 503
    assert "broker" in response.json()["detail"]
    (job,) = client.get("/v1/jobs").json()["items"]
    assert job["status"] == "failed" and "connection refused" in job["error"]


def test_unknown_job_is_404(client: TestClient) -> None:
    for path in ("", "/metrics", "/checkpoints"):
        response = client.get(f"/v1/jobs/0123456789abcdef{path}")
        assert response.status_code == 404
        assert "no job" in response.json()["detail"]


def test_list_filters_by_experiment_and_status_and_paginates(client: TestClient) -> None:
    for experiment in ("a", "a", "b"):
        client.post("/v1/jobs", json={**BODY, "experiment": experiment})
    page = client.get("/v1/jobs", params={"experiment": "a", "limit": 1}).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    assert client.get("/v1/jobs", params={"status": "running"}).json()["total"] == 0
    assert client.get("/v1/jobs", params={"status": "exploded"}).status_code == 422
    experiments = {e["name"]: e["jobs"] for e in client.get("/v1/experiments").json()}
    assert experiments == {"a": 2, "b": 1}


def test_the_openapi_document_carries_a_working_example(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    example = schema["components"]["schemas"]["JobCreate"]["examples"][0]
    assert client.post("/v1/jobs", json=example).status_code == 202


def test_knobs_that_do_not_fit_together_are_refused(client: TestClient) -> None:
    adam_momentum = {**BODY, "hyperparameters": {"optimizer": "adam", "momentum": 0.9}}
    response = client.post("/v1/jobs", json=adam_momentum)
    assert response.status_code == 422 and "momentum applies to optimizer 'sgd'" in response.text
    no_dropout = {**BODY, "hyperparameters": {"dropout": 0.5}}
    response = client.post("/v1/jobs", json=no_dropout)
    assert response.status_code == 422 and "lenet has no dropout" in response.text
    mlp = {**BODY, "model": {"arch": "mlp"}, "hyperparameters": {"dropout": 0.5}}
    assert client.post("/v1/jobs", json=mlp).status_code == 202


def test_the_full_set_of_knobs_is_accepted_and_recorded(client: TestClient) -> None:
    knobs = {
        "epochs": 5,
        "batch_size": 32,
        "lr": 0.05,
        "optimizer": "sgd",
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "label_smoothing": 0.1,
        "grad_clip_norm": 1.0,
        "lr_schedule": {"name": "cosine", "warmup_epochs": 1},
        "init": "kaiming_normal",
        "early_stopping": {"metric": "val_acc", "patience": 2},
        "precision": "bf16",
        "seed": 3,
    }
    response = client.post("/v1/jobs", json={**BODY, "hyperparameters": knobs})
    assert response.status_code == 202, response.text
    recorded = response.json()["params"]["hyperparameters"]
    assert recorded["lr_schedule"]["name"] == "cosine" and recorded["momentum"] == 0.9
    assert recorded["early_stopping"] == {"metric": "val_acc", "patience": 2, "min_delta": 0.0}
