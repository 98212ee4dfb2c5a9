"""D2L_AUTH=on: every view inside a net answers 404 for a model or job of another owner."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from core.artifacts import open_artifact_store
from core.auth import tokens
from core.db import Database
from core.settings import Settings
from tests.factories import migrated
from worker.runner import JobRunner

LENET: dict[str, Any] = {
    "experiment": "alice-inside",
    "model": {"arch": "lenet", "config": {"activation": "relu"}},
    "dataset": {"name": "digits"},
    "hyperparameters": {"epochs": 1, "batch_size": 32, "lr": 0.1},
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Database]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("inside-owners"), auth=True)
    db = migrated(settings)
    with TestClient(create_app(settings)) as client:
        yield client, db
    db.engine.dispose()


def token(db: Database, owner: str) -> dict[str, str]:
    with db.transaction() as session:
        _, secret = tokens.create_token(session, owner=owner)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="module")
def alices_job(service: tuple[TestClient, Database]) -> dict[str, Any]:
    client, db = service
    alice = token(db, "alice")
    submitted = client.post("/v1/jobs", json=LENET, headers=alice)
    assert submitted.status_code == 202, submitted.text
    settings = client.app.state.settings  # type: ignore[attr-defined]
    JobRunner(
        db=db,
        store=open_artifact_store(settings),
        data_dir=settings.datasets_dir,
        worker_name="w",
    ).run(submitted.json()["id"])
    job: dict[str, Any] = client.get(f"/v1/jobs/{submitted.json()['id']}", headers=alice).json()
    assert job["status"] == "succeeded", job["error"]
    return job | {"headers": alice}


def image() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.eye(16, dtype=np.uint8) * 255).save(buffer, format="PNG")
    return buffer.getvalue()


def views(job: dict[str, Any]) -> list[tuple[str, str]]:
    model, job_url = f"/v1/models/{job['model_id']}", f"/v1/jobs/{job['id']}"
    gets = [
        f"{model}/{view}"
        for view in (
            "feature-maps",
            "feature-maps.png",
            "filters",
            "filters.png",
            "saliency",
            "saliency.png",
        )
    ]
    gets += [
        f"{job_url}/{view}"
        for view in ("confusion", "confusion.png", "top-losses", "top-losses.png")
    ]
    posts = [
        f"{model}/{view}"
        for view in ("feature-maps", "feature-maps.png", "saliency", "saliency.png")
    ]
    return [("GET", path) for path in gets] + [("POST", path) for path in posts]


def ask(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    if method == "POST":
        files = {"file": ("x.png", image(), "image/png")}
        return client.post(path, files=files, headers=headers)
    return client.get(path, headers=headers)


def test_the_owner_sees_inside_and_another_owner_gets_404(
    service: tuple[TestClient, Database], alices_job: dict[str, Any]
) -> None:
    client, db = service
    bob = token(db, "bob")
    for method, path in views(alices_job):
        mine = ask(client, method, path, alices_job["headers"])
        assert mine.status_code == 200, (path, mine.text)
        theirs = ask(client, method, path, bob)
        assert theirs.status_code == 404, (path, theirs.text)
        assert alices_job["model_id"] not in theirs.text or "no " in theirs.text


def test_an_upload_the_caller_cannot_see_is_no_sample_source(
    service: tuple[TestClient, Database], alices_job: dict[str, Any]
) -> None:
    client, _ = service
    refused = client.get(
        f"/v1/models/{alices_job['model_id']}/feature-maps",
        params={"dataset": "0123456789abcdef0123456789abcdef"},
        headers=alices_job["headers"],
    )
    assert refused.status_code == 422 and "no uploaded dataset" in refused.text


def test_deleting_a_model_deletes_its_stored_test_evaluation(
    service: tuple[TestClient, Database], alices_job: dict[str, Any]
) -> None:
    client, _ = service
    headers = alices_job["headers"]
    settings = client.app.state.settings  # type: ignore[attr-defined]
    store = open_artifact_store(settings)
    model_id = alices_job["model_id"]
    assert client.get(f"/v1/jobs/{alices_job['id']}/confusion", headers=headers).status_code == 200
    assert store.list_keys(f"inside/{model_id}") != []
    assert client.delete(f"/v1/models/{model_id}", headers=headers).status_code == 204
    assert store.list_keys(f"inside/{model_id}") == []
