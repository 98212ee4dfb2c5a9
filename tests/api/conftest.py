"""One short real training run, shared by the API tests that need a trained model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from api.app import create_app
from core.artifacts import open_artifact_store
from core.db import Database
from core.serving.inference import LoadedModel, respond, run_forward
from core.serving.schemas import PredictResponse
from core.settings import Settings
from tests.conftest import RecordingQueue
from tests.factories import add_job, migrated
from worker.runner import JobRunner


@dataclass(frozen=True)
class Trained:
    client: TestClient
    db: Database
    job_id: str
    model_id: str
    result: dict[str, Any]


def predict_unbatched(
    loaded: LoadedModel, model_id: str, raw: torch.Tensor, *, top_k: int | None
) -> PredictResponse:
    """What a request's samples give in one forward pass, with no batcher between: the answer
    the batched and chunked paths must match."""
    return respond(loaded, model_id, run_forward(loaded, raw), top_k=top_k)


@pytest.fixture(scope="package")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """A LeNet (ReLU) trained for 4 epochs on digits through the real runner, and an app on it."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("trained"))
    db = migrated(settings)
    with db.transaction() as session:
        job_id = add_job(
            session,
            model={"arch": "lenet", "config": {"activation": "relu"}},
            hyperparameters={"epochs": 4, "batch_size": 32, "lr": 0.1},
        ).id
    JobRunner(
        db=db,
        store=open_artifact_store(settings),
        data_dir=settings.datasets_dir,
        worker_name="test",
    ).run(job_id)
    with TestClient(create_app(settings)) as client:
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "succeeded", job["error"]
        yield Trained(client, db, job_id, job["model_id"], job["result"])
    db.engine.dispose()


def train_submitted(
    client: TestClient, body: dict[str, Any], *, db: Database, settings: Settings
) -> dict[str, Any]:
    """Submit `body` through the API, train it through the real runner (as a worker would), and
    return the finished job as GET /v1/jobs/{id} shows it."""
    submitted = client.post("/v1/jobs", json=body)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    JobRunner(
        db=db,
        store=open_artifact_store(settings),
        data_dir=settings.datasets_dir,
        worker_name="w",
    ).run(job_id)
    job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    return job


@pytest.fixture
def any_db_client(
    settings: Settings, db: Database, database_url: str, queue: RecordingQueue
) -> Iterator[TestClient]:
    """An app on the embedded SQLite and, as a second run, on PostgreSQL (`database_url`'s
    two params), its broker recorded."""
    app = create_app(Settings(data_dir=settings.data_dir, database_url=database_url))
    app.state.job_queue = queue
    with TestClient(app) as client:
        yield client
