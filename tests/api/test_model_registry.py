"""The model registry over HTTP: list, describe, aliases that move, delete (and its refusal)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.artifacts import ArtifactStore
from core.db import Database
from core.jobs import queries
from core.jobs.metrics import record_epoch
from core.registry.queries import create_model
from core.tables import Model
from tests.api.conftest import Trained
from tests.factories import add_job

RESULT = {
    "test_acc": 0.9,
    "test_loss": 0.3,
    "task": "classification",
    "class_names": [str(d) for d in range(10)],
    "preprocessing": {"raw_shape": [8, 8], "in_channels": 1, "input_size": 28},
}


def add_model(db: Database, store: ArtifactStore, *, arch: str = "lenet") -> tuple[str, str]:
    """A succeeded job with one checkpoint file on disk and its model: (model id, file path)."""
    with db.transaction() as session:
        job = add_job(session, model={"arch": arch})
        stored = store.write_bytes(f"jobs/{job.id}/epoch-0002.pt", b"weights")
        checkpoint = queries.add_checkpoint(session, job_id=job.id, epoch=2, stored=stored)
        record_epoch(session, job_id=job.id, epoch=2, step=10, values={("val", "acc"): 0.8})
        queries.finish_job(session, job=job, status="succeeded", result=RESULT)
        model = create_model(session, job=job, checkpoint=checkpoint, arch=arch)
        return model.id, stored.path


def name(client: TestClient, model_id: str, alias: str, production: bool = False) -> dict:
    response = client.post(
        f"/v1/models/{model_id}/alias", json={"name": alias, "production": production}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_models_are_listed_newest_first_and_described(
    client: TestClient, sqlite_db: Database, store: ArtifactStore
) -> None:
    first, _ = add_model(sqlite_db, store)
    second, _ = add_model(sqlite_db, store, arch="mlp")
    page = client.get("/v1/models").json()
    assert [item["id"] for item in page["items"]] == [second, first] and page["total"] == 2
    assert [m["id"] for m in client.get("/v1/models", params={"arch": "mlp"}).json()["items"]] == [
        second
    ]
    model = client.get(f"/v1/models/{first}").json()
    assert model["arch"] == "lenet" and model["dataset"] == "digits"
    assert model["metrics"] == {"test_acc": 0.9, "test_loss": 0.3}
    assert model["class_names"] == RESULT["class_names"]
    assert model["preprocessing"]["raw_shape"] == [8, 8]
    assert model["checkpoint"]["epoch"] == 2 and model["aliases"] == []


def test_an_alias_gives_versions_and_latest_follows_the_newest(
    client: TestClient, sqlite_db: Database, store: ArtifactStore
) -> None:
    old, _ = add_model(sqlite_db, store)
    new, _ = add_model(sqlite_db, store)
    assert name(client, old, "digits")["aliases"] == ["digits:1", "digits:latest"]
    assert name(client, new, "digits")["aliases"] == ["digits:2", "digits:latest"]
    assert client.get(f"/v1/models/{old}").json()["aliases"] == ["digits:1"]
    # naming a model again keeps its version; latest stays on the highest version
    assert name(client, old, "digits")["aliases"] == ["digits:1"]
    for ref, expected in (("digits:1", old), ("digits:2", new), ("digits:latest", new)):
        assert client.get(f"/v1/models/{ref}").json()["id"] == expected
    listed = client.get("/v1/models", params={"name": "digits"}).json()["items"]
    assert {item["id"] for item in listed} == {old, new}


def test_production_moves_only_when_asked(
    client: TestClient, sqlite_db: Database, store: ArtifactStore
) -> None:
    old, _ = add_model(sqlite_db, store)
    new, _ = add_model(sqlite_db, store)
    name(client, old, "digits", production=True)
    name(client, new, "digits")
    assert client.get("/v1/models/digits:production").json()["id"] == old
    promoted = name(client, "digits:2", "digits", production=True)  # by alias too
    assert promoted["id"] == new
    assert promoted["aliases"] == ["digits:2", "digits:latest", "digits:production"]
    assert client.get(f"/v1/models/{old}").json()["aliases"] == ["digits:1"]


def test_an_unknown_alias_is_a_404_that_lists_the_names_tags(
    client: TestClient, sqlite_db: Database, store: ArtifactStore
) -> None:
    model_id, _ = add_model(sqlite_db, store)
    name(client, model_id, "digits")
    response = client.get("/v1/models/digits:production")
    assert response.status_code == 404
    assert "digits:1" in response.json()["detail"] and "digits:latest" in response.json()["detail"]
    response = client.get("/v1/models/digits:beta")
    assert response.status_code == 404 and "name:latest" in response.json()["detail"]


def test_a_bad_alias_name_is_a_422_naming_the_field(
    client: TestClient, sqlite_db: Database, store: ArtifactStore
) -> None:
    model_id, _ = add_model(sqlite_db, store)
    response = client.post(f"/v1/models/{model_id}/alias", json={"name": "a:b"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "name"]


def test_deleting_an_aliased_model_is_refused_and_says_what_to_do(
    client: TestClient, sqlite_db: Database, store: ArtifactStore
) -> None:
    model_id, path = add_model(sqlite_db, store)
    name(client, model_id, "digits", production=True)
    response = client.delete(f"/v1/models/{model_id}")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "digits:production" in detail and f"DELETE /v1/models/{model_id}/alias/digits" in detail
    assert store.resolve(path).exists()
    assert client.get(f"/v1/models/{model_id}").status_code == 200


def test_removing_a_name_lets_latest_fall_back_and_the_model_be_deleted(
    client: TestClient, sqlite_db: Database, store: ArtifactStore
) -> None:
    old, _ = add_model(sqlite_db, store)
    new, _ = add_model(sqlite_db, store)
    name(client, old, "digits")
    name(client, new, "digits", production=True)
    remaining = client.delete(f"/v1/models/{new}/alias/digits").json()
    assert remaining["aliases"] == []
    assert client.get("/v1/models/digits:latest").json()["id"] == old
    assert client.get("/v1/models/digits:production").status_code == 404
    assert client.delete(f"/v1/models/{new}").status_code == 204
    assert client.get(f"/v1/models/{new}").status_code == 404
    assert client.delete(f"/v1/models/{new}/alias/digits").status_code == 404


def test_deleting_a_model_removes_its_checkpoint_files_and_keeps_its_metrics(
    client: TestClient, sqlite_db: Database, store: ArtifactStore
) -> None:
    model_id, path = add_model(sqlite_db, store)
    with sqlite_db.sessions() as session:
        job_id = session.get(Model, model_id).job_id  # type: ignore[union-attr]
    assert client.delete(f"/v1/models/{model_id}").status_code == 204
    assert not store.resolve(path).exists()
    assert client.get(f"/v1/jobs/{job_id}/checkpoints").json() == []
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["model_id"] is None
    assert job["result"]["test_acc"] == 0.9
    assert client.get(f"/v1/jobs/{job_id}/metrics").json()[0]["value"] == 0.8
    assert client.post(f"/v1/models/{model_id}/predict", json={"inputs": [0]}).status_code == 404
    finetune = {
        "kind": "finetune",
        "model": {"arch": "lenet"},
        "dataset": {"name": "digits"},
        "finetune": {"source": {"job_id": job_id}},
    }
    refused = client.post("/v1/jobs", json=finetune)
    assert refused.status_code == 422 and "model was deleted" in refused.json()["detail"]


def test_a_trained_model_predicts_by_its_alias(trained: Trained) -> None:
    client = trained.client
    sample = [[0, 0, 5, 13, 9, 1, 0, 0]] * 8
    name(client, trained.model_id, "trained-lenet", production=True)
    by_id = client.post(f"/v1/models/{trained.model_id}/predict", json={"inputs": sample})
    by_alias = client.post("/v1/models/trained-lenet:production/predict", json={"inputs": sample})
    assert by_alias.status_code == 200, by_alias.text
    assert by_alias.json() == by_id.json()
    assert by_alias.json()["model_id"] == trained.model_id
