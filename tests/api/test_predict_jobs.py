"""Offloaded predictions: a `predict` job runs a trained model over a dataset split on a worker
and stores the file; its answers are those of the online predict endpoint."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.datasets.digits import load_digits_raw
from core.datasets.registry import split_indices
from core.jobs import queries
from core.jobs.predict_jobs import PredictJobCreate
from tests.api.conftest import Trained
from worker.predictions import Samples, predict_rows
from worker.runner import JobRunner
from worker.training_state import JobCancelled, StepProgress


@pytest.fixture
def client(trained: Trained) -> TestClient:
    return trained.client


def run_job(trained: Trained, job_id: str) -> dict[str, Any]:
    """Run the job through the real runner, as a worker would; the job as GET shows it."""
    app = trained.client.app
    JobRunner(
        db=trained.db,
        store=app.state.serving.store,  # type: ignore[attr-defined]
        data_dir=app.state.settings.datasets_dir,  # type: ignore[attr-defined]
        worker_name="w",
    ).run(job_id)
    job: dict[str, Any] = trained.client.get(f"/v1/jobs/{job_id}").json()
    return job


def submit(client: TestClient, **fields: Any) -> Any:
    body = {"kind": "predict", "dataset": {"name": "digits"}, **fields}
    return client.post("/v1/jobs", json=body)


def test_offloaded_predictions_equal_the_online_endpoints(
    client: TestClient, trained: Trained
) -> None:
    submitted = submit(client, model=trained.model_id, top_k=3, batch_size=50)
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert job["kind"] == "predict" and job["status"] == "queued"
    assert job["params"]["model_id"] == trained.model_id
    assert (job["progress"]["epoch"], job["progress"]["epochs"]) == (0, 1)

    job = run_job(trained, job["id"])
    assert job["status"] == "succeeded", job["error"]
    assert (job["progress"]["epoch"], job["progress"]["epochs"]) == (1, 1)
    raw = load_digits_raw()
    _, _, test_idx = split_indices(len(raw.targets), val_fraction=0.1, test_fraction=0.2, seed=0)
    result = job["result"]
    assert result["count"] == len(test_idx) and result["split"] == "test"
    assert result["accuracy"] == pytest.approx(trained.result["test_acc"])  # as evaluation

    download = client.get(f"/v1/jobs/{job['id']}/predictions")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/x-ndjson")
    assert len(download.content) == result["predictions"]["bytes"]
    rows = [json.loads(line) for line in download.text.splitlines()]
    assert [row["index"] for row in rows] == test_idx.tolist()

    online = client.post(
        f"/v1/models/{trained.model_id}/predict",
        json={"inputs": raw.inputs[test_idx].tolist(), "top_k": 3},
    ).json()["predictions"]
    for row, answer in zip(rows, online, strict=True):
        assert (row["class_index"], row["label"]) == (answer["class_index"], answer["label"])
        assert list(row["probabilities"]) == list(answer["probabilities"])
        assert list(row["probabilities"].values()) == pytest.approx(
            list(answer["probabilities"].values()), abs=1e-6
        )
        assert row["target"] == int(raw.targets[row["index"]])
        assert row["correct"] == (row["class_index"] == row["target"])


def test_an_alias_is_resolved_at_submission_and_csv_downloads(
    client: TestClient, trained: Trained
) -> None:
    named = client.post(f"/v1/models/{trained.model_id}/alias", json={"name": "offload-test"})
    assert named.status_code == 200, named.text
    try:
        submitted = submit(
            client,
            model="offload-test:latest",
            dataset={"name": "digits", "split": "val"},
            format="csv",
        )
    finally:
        client.delete(f"/v1/models/{trained.model_id}/alias/offload-test")
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["params"]["model_id"] == trained.model_id
    job = run_job(trained, submitted.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    download = client.get(f"/v1/jobs/{job['id']}/predictions")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(download.text)))
    assert len(table) == job["result"]["count"] > 0
    assert {"index", "class_index", "label", "top10_probability", "target", "correct"} <= set(
        table[0]
    )


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"model": "feedfacefeedface"}, ["model", "no model with id"]),
        ({"model": "nobody-has-this:production"}, ["no model is called"]),
        ({"dataset": {"name": "imagenet"}}, ["unknown dataset", "digits"]),
        ({"dataset": {"name": "0" * 32}}, ["0" * 32]),
        ({"dataset": {"name": "fake_images"}}, ["[8, 8]", "[3, 32, 32]"]),
        ({"dataset": {"name": "kernel_regression"}}, ["classification", "regression"]),
        ({"dataset": {"name": "digits", "split": "val", "val_fraction": 0}}, ["empty"]),
        ({"top_k": 0}, ["top_k"]),
        ({"device": "all"}, ["device"]),
        ({"epochs": 3}, ["epochs"]),
    ],
)
def test_bad_model_or_dataset_references_are_4xx_saying_what(
    client: TestClient, trained: Trained, fields: dict[str, Any], words: list[str]
) -> None:
    response = submit(client, **{"model": trained.model_id, **fields})
    assert response.status_code == 422, response.text
    for word in words:
        assert word in response.text


def test_validation_errors_name_the_field_without_the_union_tag(client: TestClient) -> None:
    response = submit(client, top_k=0)
    locations = [error["loc"] for error in response.json()["detail"]]
    assert ["body", "model"] in locations and ["body", "top_k"] in locations


def test_predictions_are_404_with_the_reason_until_the_job_has_them(
    client: TestClient, trained: Trained
) -> None:
    queued = submit(client, model=trained.model_id).json()
    response = client.get(f"/v1/jobs/{queued['id']}/predictions")
    assert response.status_code == 404 and "queued" in response.json()["detail"]
    response = client.get(f"/v1/jobs/{trained.job_id}/predictions")
    assert response.status_code == 404 and "train job" in response.json()["detail"]
    assert client.get("/v1/jobs/feedfacefeedface/predictions").status_code == 404


def test_a_predict_job_on_a_gpu_waits_in_the_gpu_queue(trained: Trained) -> None:
    job = submit(trained.client, model=trained.model_id, device="cuda:0").json()
    with trained.db.sessions() as session:
        assert queries.get_job(session, job_id=job["id"]).queue == "gpu"


def test_a_cancelled_queued_predict_job_never_runs(client: TestClient, trained: Trained) -> None:
    job = submit(client, model=trained.model_id).json()
    assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    finished = run_job(trained, job["id"])
    assert finished["status"] == "cancelled" and finished["result"] is None
    response = client.get(f"/v1/jobs/{job['id']}/predictions")
    assert response.status_code == 404 and "cancelled" in response.json()["detail"]


def test_a_cancelled_predict_job_stops_between_batches(trained: Trained) -> None:
    app = trained.client.app
    loaded = app.state.serving.get(trained.model_id)  # type: ignore[attr-defined]
    raw = load_digits_raw()
    samples = Samples(
        raw.targets.new_tensor(range(100)), raw.inputs[:100], raw.targets[:100], loaded.class_names
    )
    calls = iter([False, True])
    progress = StepProgress()
    rows = predict_rows(
        loaded,
        "m",
        samples,
        batch_size=60,
        top_k=None,
        should_stop=lambda: next(calls),
        progress=progress,
    )
    with pytest.raises(JobCancelled, match="after 60 of 100"):
        list(rows)
    assert (progress.done, progress.total) == (1, 2)


def test_the_stored_request_is_rebuilt_as_accepted(client: TestClient, trained: Trained) -> None:
    job = submit(client, model=trained.model_id, top_k=2).json()
    spec = PredictJobCreate.model_validate(job["params"])
    assert spec.model_id == trained.model_id and spec.top_k == 2 and spec.dataset.split == "test"


def test_a_predict_job_is_no_source_for_fine_tuning(client: TestClient, trained: Trained) -> None:
    job = submit(client, model=trained.model_id).json()
    body = {
        "kind": "finetune",
        "model": {"arch": "lenet", "config": {"activation": "relu"}},
        "dataset": {"name": "digits"},
        "finetune": {"source": {"job_id": job["id"]}},
    }
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422 and "predict job" in response.text
