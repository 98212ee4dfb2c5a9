"""A job on an uploaded dataset: upload, submit, train through the runner, predict its images."""

import numpy as np
import torch
from fastapi.testclient import TestClient

from core.datasets.digits import load_digits_raw
from core.db import Database
from core.settings import Settings
from tests.api.conftest import train_submitted
from tests.core.datasets.test_uploads import npz_bytes


def upload_digits(client: TestClient) -> str:
    raw = load_digits_raw()
    keep = (raw.targets < 3).nonzero().flatten()  # digits 0, 1 and 2 as 8x8 grey images
    images = (raw.inputs[keep] * 255 / 16).round().to(dtype=torch.uint8).numpy()
    data = npz_bytes(
        x=images, y=raw.targets[keep].numpy(), classes=np.array(["zero", "one", "two"])
    )
    response = client.post("/v1/datasets", files={"file": ("three_digits.npz", data)})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_job_trains_on_an_uploaded_dataset_and_serves_its_class_names(
    client: TestClient, sqlite_db: Database, settings: Settings
) -> None:
    dataset_id = upload_digits(client)
    body = {
        "model": {"arch": "lenet", "config": {"activation": "relu"}},
        "dataset": {"name": dataset_id},
        "hyperparameters": {"epochs": 3, "batch_size": 32, "lr": 0.1},
    }
    job = train_submitted(client, body, db=sqlite_db, settings=settings)
    assert (
        job["result"]["class_names"] == ["zero", "one", "two"] and job["result"]["test_acc"] > 0.8
    )
    sample = load_digits_raw().inputs[1] * 255 / 16  # a "1", as the upload stores pixels
    prediction = client.post(
        f"/v1/models/{job['model_id']}/predict", json={"inputs": [sample.tolist()]}
    )
    assert prediction.status_code == 200, prediction.text
    assert prediction.json()["predictions"][0]["label"] == "one"


def test_a_model_that_cannot_take_the_upload_is_refused_at_submission(client: TestClient) -> None:
    dataset_id = upload_digits(client)
    body = {
        "model": {"arch": "lenet"},
        "dataset": {"name": dataset_id},
        "hyperparameters": {"dropout": 0.3},
    }
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422 and "lenet has no dropout" in response.text
    missing = {"model": {"arch": "lenet"}, "dataset": {"name": "0" * 32}}
    assert client.post("/v1/jobs", json=missing).status_code == 422
