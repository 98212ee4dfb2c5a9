"""Predictions from a model that a real (in-process) training run produced."""

import pytest
from fastapi.testclient import TestClient

from core.datasets.digits import load_digits_raw
from core.datasets.registry import split_indices
from core.registry import queries as registry
from tests.api.conftest import Trained


@pytest.fixture
def client(trained: Trained) -> TestClient:
    return trained.client


def test_predicting_raw_held_out_digits_matches_the_jobs_test_accuracy(
    client: TestClient, trained: Trained
) -> None:
    model_id, result = trained.model_id, trained.result
    raw = load_digits_raw()
    _, _, test_idx = split_indices(len(raw.targets), val_fraction=0.1, test_fraction=0.2, seed=0)
    samples = raw.inputs[test_idx].tolist()  # 8x8 values 0-16, as the dataset stores them
    response = client.post(f"/v1/models/{model_id}/predict", json={"inputs": samples})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    labels = raw.targets[test_idx].tolist()
    accuracy = sum(p["class_index"] == y for p, y in zip(predictions, labels)) / len(labels)
    assert accuracy == pytest.approx(result["test_acc"])  # the same preprocessing as evaluation
    assert accuracy > 0.8


def test_one_sample_gives_one_prediction_with_labels_and_probabilities(
    client: TestClient, trained: Trained
) -> None:
    model_id = trained.model_id
    raw = load_digits_raw()
    response = client.post(
        f"/v1/models/{model_id}/predict", json={"inputs": raw.inputs[0].tolist()}
    )
    (prediction,) = response.json()["predictions"]
    assert prediction["label"] == str(prediction["class_index"])
    assert set(prediction["probabilities"]) == {str(d) for d in range(10)}
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert (
        max(prediction["probabilities"], key=prediction["probabilities"].get) == prediction["label"]
    )


def test_top_k_returns_the_k_most_likely_classes_in_order(
    client: TestClient, trained: Trained
) -> None:
    model_id = trained.model_id
    sample = load_digits_raw().inputs[5].tolist()
    (prediction,) = client.post(
        f"/v1/models/{model_id}/predict", json={"inputs": sample, "top_k": 3}
    ).json()["predictions"]
    values = list(prediction["probabilities"].values())
    assert len(values) == 3 and values == sorted(values, reverse=True)
    assert next(iter(prediction["probabilities"])) == prediction["label"]


@pytest.mark.parametrize(
    "inputs",
    [[[1, 2], [3, 4]], [[[0] * 8] * 7], [[0] * 8] * 8 + [[1]], "abc", [[[0, "x"] * 4] * 8]],
)
def test_a_wrong_shape_is_a_422_that_states_the_expected_shape(
    client: TestClient, trained: Trained, inputs: object
) -> None:
    model_id = trained.model_id
    response = client.post(f"/v1/models/{model_id}/predict", json={"inputs": inputs})
    assert response.status_code == 422
    assert "[8, 8]" in response.text or "list" in response.text


def test_an_unknown_model_is_404(client: TestClient) -> None:
    response = client.post("/v1/models/feedfacefeedface/predict", json={"inputs": [[0] * 8] * 8})
    assert response.status_code == 404
    assert "no model" in response.json()["detail"]


def test_the_model_is_listed_on_its_job_and_its_checkpoint(
    client: TestClient, trained: Trained
) -> None:
    model_id = trained.model_id
    with trained.db.sessions() as session:
        model = registry.get_model_row(session, model_id=model_id)
        job_id = model.job_id
    checkpoints = client.get(f"/v1/jobs/{job_id}/checkpoints").json()
    assert checkpoints[-1]["epoch"] == 4 and len(checkpoints[-1]["sha256"]) == 64
    metrics = client.get(f"/v1/jobs/{job_id}/metrics", params={"name": "acc"}).json()
    assert {(m["epoch"], m["split"]) for m in metrics} == {
        (e, s) for e in range(1, 5) for s in ("train", "val")
    }
