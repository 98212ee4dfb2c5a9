"""Serving regression models: a linear model on polynomial features, and attention pooling."""

import io
import math

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from core.artifacts import ArtifactStore
from core.datasets import load_raw
from core.db import Database
from tests.factories import add_job
from worker.runner import JobRunner


def train(client: TestClient, db: Database, store: ArtifactStore, **spec) -> dict:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        job_id = add_job(session, **spec).id
    JobRunner(db=db, store=store, data_dir=store.root, worker_name="w").run(job_id)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    return job


def test_a_linear_polynomial_model_predicts_values_for_raw_rows(
    client: TestClient, sqlite_db: Database, store: ArtifactStore
) -> None:
    job = train(
        client,
        sqlite_db,
        store,
        model={
            "arch": "mlp",
            "config": {"hidden_sizes": [], "flat_features": True},
            "input_size": 4,
        },
        dataset={"name": "poly_regression", "val_fraction": 0},
        hyperparameters={"epochs": 100, "batch_size": 10, "lr": 0.01, "optimizer": "sgd"},
    )
    raw = load_raw("poly_regression", root=store.root)
    rows = raw.inputs[:5]
    response = client.post(f"/v1/models/{job['model_id']}/predict", json={"inputs": rows.tolist()})
    assert response.status_code == 200, response.text
    values = [p["value"] for p in response.json()["predictions"]]
    assert values == pytest.approx(raw.targets[:5].tolist(), abs=0.5)


def test_attention_pooling_predicts_from_its_training_examples(
    client: TestClient, sqlite_db: Database, store: ArtifactStore
) -> None:
    job = train(
        client,
        sqlite_db,
        store,
        model={"arch": "nadaraya_watson", "config": {"parametric": False}},
        dataset={"name": "kernel_regression", "val_fraction": 0},
        hyperparameters={"epochs": 5},
    )
    assert job["progress"] == {
        "epoch": 1,
        "epochs": 1,
        "step": 0,
        "steps": 0,
    }  # nothing to learn: evaluated once
    response = client.post(f"/v1/models/{job['model_id']}/predict", json={"inputs": [[2.0], [4.0]]})
    assert response.status_code == 200, response.text
    truth = [2 * math.sin(x) + x**0.8 for x in (2.0, 4.0)]
    values = [p["value"] for p in response.json()["predictions"]]
    assert values == pytest.approx(truth, abs=1.0)


def test_attention_pooling_draws_its_attention_heatmap(
    client: TestClient, sqlite_db: Database, store: ArtifactStore
) -> None:
    job = train(
        client,
        sqlite_db,
        store,
        model={"arch": "nadaraya_watson", "config": {"parametric": True}},
        dataset={"name": "kernel_regression", "val_fraction": 0},
        hyperparameters={"epochs": 5, "lr": 0.5},
    )
    response = client.get(f"/v1/models/{job['model_id']}/attention.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.size == (600, 400)
    linear = train(
        client,
        sqlite_db,
        store,
        model={
            "arch": "mlp",
            "config": {"hidden_sizes": [], "flat_features": True},
            "input_size": 4,
        },
        dataset={"name": "poly_regression", "val_fraction": 0},
        hyperparameters={"epochs": 1, "batch_size": 10, "lr": 0.01},
    )
    refused = client.get(f"/v1/models/{linear['model_id']}/attention.png")
    assert refused.status_code == 422 and "not an attention-pooling model" in refused.text
