"""GET /v1/recipes and recipe jobs over HTTP: the preset, its overrides, and the book beside ours."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.artifacts import ArtifactStore
from core.db import Database
from core.settings import Settings
from tests.conftest import RecordingQueue
from worker.runner import JobRunner


def test_every_recipe_is_listed_with_its_job_and_the_books_numbers(client: TestClient) -> None:
    recipes = client.get("/v1/recipes").json()
    names = [recipe["name"] for recipe in recipes]
    assert {"lenet", "poly-normal", "lenet-bn-scratch", "nadaraya-watson-parametric"} <= set(names)
    for recipe in recipes:
        assert recipe["book_printed"] and recipe["chapter"], recipe["name"]
        assert recipe["job"]["recipe"] == recipe["name"]
    lenet = client.get("/v1/recipes/lenet").json()
    assert lenet["job"]["hyperparameters"]["lr"] == 0.9 and lenet["book"]["test_acc"] == 0.779
    assert [variant["name"] for variant in lenet["variants"]] == ["digits"]


def test_a_recipe_says_which_files_the_books_data_need(client: TestClient) -> None:
    data = client.get("/v1/recipes/lenet").json()["book_data"]
    assert data["dataset"] == "fashion_mnist" and data["available"] is False
    assert any("train-images-idx3-ubyte" in path for path in data["missing_files"])
    assert "recipe_variant" in data["message"]
    assert client.get("/v1/recipes/poly-normal").json()["book_data"]["available"] is True


def test_an_unknown_recipe_is_a_404_listing_the_known_ones(client: TestClient) -> None:
    response = client.get("/v1/recipes/lenet5")
    assert response.status_code == 404
    assert "lenet" in response.json()["detail"] and "poly-normal" in response.json()["detail"]


def test_submitting_a_recipe_whose_data_are_absent_offers_the_variant(
    client: TestClient, queue: RecordingQueue
) -> None:
    response = client.post("/v1/jobs", json={"recipe": "lenet"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "FashionMNIST" in detail and '"recipe_variant": "digits"' in detail
    assert queue.sent == []
    unknown = client.post("/v1/jobs", json={"recipe": "lenet5"})
    assert unknown.status_code == 422 and "known recipes" in unknown.text


def test_a_recipe_job_is_an_ordinary_job_with_overrides(
    client: TestClient, queue: RecordingQueue
) -> None:
    body = {
        "recipe": "lenet",
        "recipe_variant": "digits",
        "hyperparameters": {"epochs": 2},
        "device": "cpu",
    }
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    assert queue.sent == [(job["id"], "cpu")]
    params = job["params"]
    assert (params["recipe"], params["recipe_variant"]) == ("lenet", "digits")
    assert params["hyperparameters"]["epochs"] == 2 and params["hyperparameters"]["lr"] == 0.9
    assert job["experiment"] == "lenet-digits" and job["progress"]["epochs"] == 2
    assert job["book"]["book"]["test_acc"] == 0.779 and job["book"]["within"] is None
    assert job["book"]["overrides"] == ["hyperparameters.epochs: 30 -> 2"]


def test_a_finished_recipe_job_sets_its_numbers_beside_the_books(
    client: TestClient, settings: Settings, sqlite_db: Database, store: ArtifactStore
) -> None:
    body = {"recipe": "poly-normal", "hyperparameters": {"epochs": 50}, "device": "cpu"}
    job_id = client.post("/v1/jobs", json=body).json()["id"]
    runner = JobRunner(
        db=sqlite_db, store=store, data_dir=settings.datasets_dir, worker_name="test"
    )
    runner.run(job_id)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    book = job["book"]
    assert book["book"]["weights"] == [5.010, 1.235, -3.423, 5.503]
    assert len(book["ours"]["weights"]) == 4
    assert book["ours"]["weights"][1:] == job["result"]["weights"]["w"][1:]
    assert all(check["within"] is not None for check in book["checks"])
    # The three polynomial recipes share an experiment: its chart overlays train and test loss.
    png = client.get(
        "/v1/experiments/polynomial-fit/curves.png",
        params=[("metric", "train_loss"), ("metric", "test_loss"), ("yscale", "log")],
    )
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
