"""With D2L_ARTIFACT_URL=s3://..., a job's checkpoints live in the bucket and the API serves them.

The job is trained through the real runner with the store the worker's task opens
(`open_artifact_store(settings)`), the bucket is moto's S3 server reached through s3fs, and the
settings come from the environment exactly as a deployment's do.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from core.artifacts import ArtifactStore, FsspecArtifactStore, open_artifact_store
from core.datasets.digits import load_digits_raw
from core.db import Database
from core.jobs.logs import capture, publish_log, read_job_log
from core.settings import Settings
from tests.api.conftest import train_submitted
from tests.factories import add_job
from tests.objectstore import S3Server, moto_s3_server

TINY_JOB = {
    "experiment": "s3-artifacts",
    "model": {"arch": "mlp", "config": {"hidden_sizes": [16]}},
    "dataset": {"name": "digits"},
    "hyperparameters": {"epochs": 1, "batch_size": 128, "lr": 0.1},
}


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with moto_s3_server() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Replaces the suite's settings: artifacts in a fresh bucket, configured by environment."""
    bucket = s3_server.new_bucket()
    monkeypatch.setenv("D2L_ARTIFACT_URL", f"s3://{bucket}/d2l")
    monkeypatch.setenv("D2L_ARTIFACT_STORAGE_OPTIONS", json.dumps(s3_server.storage_options))
    return Settings(data_dir=tmp_path / "data")


def test_a_job_stores_its_checkpoint_in_the_bucket_and_the_api_serves_it(
    client: TestClient, sqlite_db: Database, settings: Settings
) -> None:
    store = open_artifact_store(settings)
    assert isinstance(store, FsspecArtifactStore)
    assert isinstance(client.app.state.serving.store, FsspecArtifactStore)  # type: ignore[attr-defined]

    job = train_submitted(client, TINY_JOB, db=sqlite_db, settings=settings)
    (checkpoint,) = client.get(f"/v1/jobs/{job['id']}/checkpoints").json()
    key = f"{store.prefix}/{checkpoint['path']}"
    store.fs.invalidate_cache()
    assert store.fs.exists(key)
    data = store.fs.cat_file(key)
    assert hashlib.sha256(data).hexdigest() == checkpoint["sha256"]
    assert len(data) == checkpoint["bytes"]
    assert not any(settings.artifacts.rglob("*.pt"))  # nothing went to the local directory

    saved = torch.load(io.BytesIO(data), weights_only=True)["state_dict"]
    downloaded = client.get(f"/v1/models/{job['model_id']}/state_dict")
    assert downloaded.status_code == 200
    served = torch.load(io.BytesIO(downloaded.content), weights_only=True)
    assert served.keys() == saved.keys()
    assert all(torch.equal(served[name], saved[name]) for name in saved)

    sample = load_digits_raw().inputs[:2].tolist()
    predicted = client.post(f"/v1/models/{job['model_id']}/predict", json={"inputs": sample})
    assert predicted.status_code == 200, predicted.text
    exported = client.get(f"/v1/models/{job['model_id']}/export?format=torchscript")
    assert exported.status_code == 200 and exported.content

    assert client.delete(f"/v1/models/{job['model_id']}").status_code == 204
    store.fs.invalidate_cache()
    assert not store.fs.exists(key)  # deleting the model deletes its object


def test_the_log_of_a_job_run_on_another_machine_is_read_from_the_bucket(
    client: TestClient, sqlite_db: Database, settings: Settings, tmp_path: Path
) -> None:
    """A worker elsewhere writes the log on its own disk and copies it to the store when the
    attempt ends; the API, with no file of its own, answers from that copy."""
    with sqlite_db.transaction() as session:
        job_id = add_job(session).id
    other_machine = tmp_path / "machine-2-artifacts"
    with capture(other_machine, job_id):
        logging.getLogger("worker.runner").warning("epoch 1 trained elsewhere")
        logging.getLogger("worker.runner").warning("last line")
    publish_log(open_artifact_store(settings), other_machine, job_id, worker="w2@machine-2")

    text = client.get(f"/v1/jobs/{job_id}/logs").text
    assert "epoch 1 trained elsewhere" in text and "last line" in text
    tail = client.get(f"/v1/jobs/{job_id}/logs", params={"tail": 1}).text
    assert "last line" in tail and "elsewhere" not in tail


def test_a_directory_store_holding_the_log_is_not_copied_to(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    with capture(artifacts, "job"):
        logging.getLogger("worker.runner").warning("here")
    store = ArtifactStore(artifacts)
    publish_log(store, artifacts, "job", worker="w1")
    assert store.list_keys("logs") == ["logs/job.log"]  # the file itself, no copy beside it
    assert read_job_log(artifacts, "job", store=store).endswith("here\n")
