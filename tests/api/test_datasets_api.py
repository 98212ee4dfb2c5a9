"""/v1/datasets: built-ins with availability, uploads accepted or refused, delete guarded by jobs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.db import Database
from core.settings import Settings
from core.tables import Dataset, Experiment, Job
from migrations.upgrade import upgrade
from tests.conftest import RecordingQueue
from tests.core.datasets.test_datasets import MNIST_NAMES, write_mnist
from tests.core.datasets.test_uploads import BAD_UPLOADS, image_folder, npz_bytes, zip_bytes


def post_upload(client: TestClient, data: bytes, filename: str, **form: str):
    return client.post("/v1/datasets", files={"file": (filename, data)}, data=form)


def stored_files(settings: Settings) -> list[Path]:
    uploads = settings.datasets_dir / "uploads"
    return sorted(uploads.rglob("*")) if uploads.exists() else []


def test_builtins_are_listed_with_their_availability(
    client: TestClient, settings: Settings
) -> None:
    listing = {item["id"]: item for item in client.get("/v1/datasets").json()}
    assert {"digits", "fake_images", "mnist", "fashion_mnist", "cifar10"} <= set(listing)
    assert listing["digits"]["available"] and listing["fake_images"]["source"] == "synthetic"
    mnist = listing["mnist"]
    assert mnist["source"] == "torchvision" and not mnist["available"] and not mnist["download"]
    raw = settings.datasets_dir / "MNIST" / "raw"
    assert mnist["missing_files"] == [str(raw / name) for name in MNIST_NAMES]

    write_mnist(settings.datasets_dir, "MNIST", gz=True)
    mnist = client.get("/v1/datasets/mnist").json()
    assert mnist["available"] and mnist["missing_files"] == [] and mnist["raw_shape"] == [28, 28]


def test_upload_list_get_and_delete(
    client: TestClient, settings: Settings, sqlite_db: Database
) -> None:
    answer = post_upload(
        client, zip_bytes(image_folder(classes=2, per_class=3)), "pets.zip", name="pets", size="6x7"
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["source"] == "upload" and created["name"] == "pets" and created["available"]
    assert created["raw_shape"] == [3, 6, 7] and created["counts"] == {"class_0": 3, "class_1": 3}
    dataset_id = created["id"]
    assert dataset_id in {item["id"] for item in client.get("/v1/datasets").json()}
    assert client.get(f"/v1/datasets/{dataset_id}").json()["sha256"] == created["sha256"]

    assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 204
    assert client.get(f"/v1/datasets/{dataset_id}").status_code == 404
    assert stored_files(settings) == []
    with sqlite_db.sessions() as session:
        assert session.query(Dataset).count() == 0


def test_delete_is_refused_while_an_active_job_uses_the_dataset(
    client: TestClient, sqlite_db: Database
) -> None:
    x = np.zeros((4, 5, 5), dtype=np.uint8)
    dataset_id = post_upload(client, npz_bytes(x=x, y=np.array([0, 1, 0, 1])), "d.npz").json()["id"]
    with sqlite_db.transaction() as session:
        experiment = Experiment(name="uses-upload")
        job = Job(
            experiment=experiment,
            kind="train",
            status="running",
            queue="cpu",
            epochs=1,
            params={"dataset": {"name": dataset_id}},
        )
        session.add(job)
        session.flush()
        job_id = job.id
    refused = client.delete(f"/v1/datasets/{dataset_id}")
    assert refused.status_code == 409 and job_id in refused.json()["detail"]
    with sqlite_db.transaction() as session:
        session.get(Job, job_id).status = "succeeded"
    assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 204


def test_builtins_cannot_be_deleted_and_unknown_ids_are_404(client: TestClient) -> None:
    assert client.delete("/v1/datasets/mnist").status_code == 409
    assert client.delete(f"/v1/datasets/{'a' * 32}").status_code == 404
    assert client.get("/v1/datasets/nope").status_code == 404


def test_a_bad_size_field_is_a_422(client: TestClient, settings: Settings) -> None:
    answer = post_upload(client, zip_bytes(image_folder()), "x.zip", size="0x5")
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "size"]
    assert stored_files(settings) == []


@contextmanager
def limited_client(data_dir: Path, *, max_bytes: int) -> Iterator[tuple[TestClient, Settings]]:
    """An app with the upload limits of tests/core/datasets/test_uploads.py (byte limit given)."""
    settings = Settings(
        data_dir=data_dir,
        upload_max_bytes=max_bytes,
        upload_max_members=100,
        upload_max_expanded_bytes=50_000_000,
    )
    settings.ensure_dirs()
    upgrade(settings.database_url)
    app = create_app(settings)
    app.state.job_queue = RecordingQueue()
    with TestClient(app) as test_client:
        yield test_client, settings


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_every_bad_upload_is_a_4xx_that_leaves_nothing(tmp_path: Path, case: str) -> None:
    filename, build, status, reason = BAD_UPLOADS[case]
    max_bytes = 20_000 if case == "oversize" else 10_000_000
    with limited_client(tmp_path / "data", max_bytes=max_bytes) as (client, settings):
        answer = post_upload(client, build(), filename)
        assert answer.status_code == status, answer.text
        assert reason in answer.json()["detail"]
        assert stored_files(settings) == []
        uploads = [item for item in client.get("/v1/datasets").json() if item["source"] == "upload"]
        assert uploads == []
