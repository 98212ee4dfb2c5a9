"""Nets with BatchNorm or dropout answer in eval mode: the same sample, the same answer, alone or
in any batch; and the model cache keeps them within its byte budget."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.serving import Serving
from core.artifacts import ArtifactStore
from core.datasets.digits import load_digits_raw
from core.db import Database
from core.settings import Settings
from tests.factories import add_job, migrated
from worker.runner import JobRunner

MODELS = {
    "batchnorm": {"arch": "lenet_bn"},
    "dropout": {"arch": "mlp", "config": {"hidden_sizes": [64], "dropout": 0.5}},
}


@dataclass(frozen=True)
class Served:
    client: TestClient
    model_ids: dict[str, str]
    settings: Settings
    db: Database


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A LeNet with BatchNorm and an MLP with dropout 0.5, one epoch each on digits."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("eval-mode"))
    db = migrated(settings)
    runner = JobRunner(
        db=db,
        store=ArtifactStore(settings.artifacts),
        data_dir=settings.datasets_dir,
        worker_name="test",
    )
    job_ids = {}
    for label, model in MODELS.items():
        with db.transaction() as session:
            job_ids[label] = add_job(
                session, model=model, hyperparameters={"epochs": 1, "batch_size": 64}
            ).id
        runner.run(job_ids[label])
    with TestClient(create_app(settings)) as client:
        model_ids = {
            label: client.get(f"/v1/jobs/{job_id}").json()["model_id"]
            for label, job_id in job_ids.items()
        }
        assert all(model_ids.values()), model_ids
        yield Served(client, model_ids, settings, db)
    db.engine.dispose()


@pytest.mark.parametrize("label", sorted(MODELS))
def test_a_sample_gets_the_same_answer_alone_and_in_any_batch(served: Served, label: str) -> None:
    url = f"/v1/models/{served.model_ids[label]}/predict"
    raw = load_digits_raw().inputs
    sample = raw[7].tolist()
    alone = [served.client.post(url, json={"inputs": sample}).json() for _ in range(3)]
    assert alone[0] == alone[1] == alone[2]  # no dropout noise between calls
    for others in (raw[:5], raw[100:131]):  # batch-norm statistics of the batch must not leak
        batch = [sample, *others.tolist()]
        first = served.client.post(url, json={"inputs": batch}).json()["predictions"][0]
        expected = alone[0]["predictions"][0]
        assert first["class_index"] == expected["class_index"]
        assert list(first["probabilities"].values()) == pytest.approx(
            list(expected["probabilities"].values()), abs=1e-5
        )


def test_the_cache_keeps_models_within_its_byte_budget(served: Served) -> None:
    """A budget that holds either model but not both keeps only the one used last."""
    app_serving: Serving = served.client.app.state.serving  # type: ignore[attr-defined]
    sizes = {label: app_serving.get(ref).nbytes for label, ref in served.model_ids.items()}
    budget = max(sizes.values())
    assert budget < sum(sizes.values())
    serving = Serving(
        db=served.db,
        store=ArtifactStore(served.settings.artifacts),
        device="cpu",
        capacity=8,
        max_bytes=budget,
    )
    batchnorm, dropout = served.model_ids["batchnorm"], served.model_ids["dropout"]
    serving.get(batchnorm)
    assert serving.cache.model_ids() == [batchnorm]
    serving.get(dropout)
    assert serving.cache.model_ids() == [dropout]
    assert serving.cache.total_bytes == sizes["dropout"] <= budget
    serving.get(batchnorm)
    assert serving.cache.model_ids() == [batchnorm]


def test_predicting_by_alias_follows_the_alias_when_it_moves(served: Served) -> None:
    client, ids = served.client, served.model_ids
    sample = {"inputs": load_digits_raw().inputs[0].tolist()}
    for label in ("batchnorm", "dropout"):  # each move is seen by the very next prediction
        moved = client.post(
            f"/v1/models/{ids[label]}/alias", json={"name": "eval", "production": True}
        )
        assert moved.status_code == 200, moved.text
        answer = client.post("/v1/models/eval:production/predict", json=sample).json()
        assert answer["model_id"] == ids[label]
    assert client.get("/v1/models/eval:latest").json()["id"] == ids["dropout"]
