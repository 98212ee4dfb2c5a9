"""Learning-curve pictures: PNGs that decode, at the promised size."""

import io

from fastapi.testclient import TestClient
from PIL import Image

from core.artifacts import ArtifactStore
from core.db import Database
from tests.api.conftest import Trained
from tests.factories import add_job
from worker.runner import JobRunner


def png_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image.size


def test_a_jobs_curves_are_the_courses_chart(trained: Trained) -> None:
    response = trained.client.get(f"/v1/jobs/{trained.job_id}/curves.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert png_size(response.content) == (600, 400)


def test_an_experiments_runs_are_overlaid(trained: Trained) -> None:
    response = trained.client.get(
        "/v1/experiments/tests/curves.png", params={"metric": "train_loss"}
    )
    assert response.status_code == 200 and png_size(response.content) == (600, 400)
    unknown = trained.client.get("/v1/experiments/tests/curves.png", params={"metric": "val_bleu"})
    assert unknown.status_code == 404 and "val_bleu" in unknown.json()["detail"]
    assert trained.client.get("/v1/experiments/nope/curves.png").status_code == 404
    assert (
        trained.client.get("/v1/experiments/tests/curves.png", params={"metric": "acc"}).status_code
        == 422
    )
    assert trained.client.get("/v1/jobs/feedface/curves.png").status_code == 404


def test_a_kfold_job_draws_its_folds(
    client: TestClient, sqlite_db: Database, store: ArtifactStore
) -> None:
    with sqlite_db.transaction() as session:
        job_id = add_job(
            session,
            kind="kfold",
            kfold={"k": 2},
            model={"arch": "lenet", "config": {"activation": "relu"}},
            hyperparameters={"epochs": 2, "batch_size": 64, "lr": 0.1},
        ).id
    JobRunner(db=sqlite_db, store=store, data_dir=store.root, worker_name="w").run(job_id)
    response = client.get(f"/v1/jobs/{job_id}/curves.png")
    assert response.status_code == 200 and png_size(response.content) == (600, 400)
