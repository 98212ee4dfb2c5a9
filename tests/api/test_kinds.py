"""The kinds registry, tested as the model registry is: each registered kind has a body here, and
every one is submitted over HTTP, run by the real runner (or a sweep's controller), and answers
its views. A new kind's card fails `test_every_kind_has_a_body_here` until it is added below."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.artifacts import open_artifact_store
from core.jobs.kind_registry import UnknownKindError, load_stored, register_kind
from core.jobs.kinds import get_kind, list_kinds
from core.jobs.kinds.training import TrainingKind
from core.jobs.schemas import JobCreate
from core.settings import Settings
from tests.client.conftest import ThreadWorker
from tests.factories import migrated
from worker.engines import ENGINES
from worker.runner import JobRunner

TINY = {
    "experiment": "kinds",
    "model": {"arch": "mlp", "config": {"hidden_sizes": [16]}},
    "dataset": {"name": "digits"},
    "hyperparameters": {"epochs": 2, "batch_size": 64, "lr": 0.1},
}


def bodies(source_job: str, source_model: str) -> dict[str, dict[str, Any]]:
    """One body per kind; fine-tunes and predictions use the job trained first."""
    return {
        "train": {**TINY, "kind": "train"},
        "finetune": {
            **TINY,
            "kind": "finetune",
            "finetune": {"source": {"job_id": source_job}, "freeze": "all_but_head"},
        },
        "kfold": {
            **TINY,
            "kind": "kfold",
            "kfold": {"k": 2, "candidates": [{"label": "a"}, {"label": "b", "config": {}}]},
        },
        "sweep": {**TINY, "kind": "sweep", "sweep": {"space": {"lr": [0.05, 0.1]}, "trials": 2}},
        "predict": {"kind": "predict", "model": source_model, "dataset": {"name": "digits"}},
    }


class Service:
    def __init__(self, client: TestClient, worker: ThreadWorker) -> None:
        self.client, self.worker = client, worker

    def run(self, body: dict[str, Any]) -> dict[str, Any]:
        """Submit `body`, let the threads run it (and any trials it makes), return its job."""
        answer = self.client.post("/v1/jobs", json=body)
        assert answer.status_code == 202, answer.text
        deadline = time.monotonic() + 300
        while alive := [thread for thread in self.worker.threads if thread.is_alive()]:
            assert time.monotonic() < deadline, "the job did not finish in time"
            alive[0].join(timeout=1)
        job: dict[str, Any] = self.client.get(f"/v1/jobs/{answer.json()['id']}").json()
        assert job["status"] == "succeeded", job["error"]
        return job


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("kinds"))
    db = migrated(settings)
    runner = JobRunner(
        db=db, store=open_artifact_store(settings), data_dir=settings.datasets_dir, worker_name="w"
    )
    worker = ThreadWorker(runner)
    runner.on_job_end = worker.notify_sweep
    app = create_app(settings)
    with TestClient(app) as client:
        app.state.job_queue = worker
        yield Service(client, worker)
    db.engine.dispose()


@pytest.fixture(scope="module")
def source(service: Service) -> dict[str, Any]:
    return service.run({**TINY, "kind": "train"})


def test_every_kind_has_a_body_here() -> None:
    assert sorted(bodies("j", "m")) == sorted(list_kinds())


@pytest.mark.parametrize("kind", list_kinds())
def test_every_kind_submits_runs_and_answers_its_views(
    service: Service, source: dict[str, Any], kind: str
) -> None:
    card = get_kind(kind)
    job = service.run(bodies(source["id"], source["model_id"])[kind])
    assert job["kind"] == kind
    assert job["progress"]["epoch"] == job["progress"]["epochs"] > 0
    client = service.client
    assert client.get(f"/v1/jobs/{job['id']}/metrics").status_code == 200
    assert client.get(f"/v1/jobs/{job['id']}/curves.png").status_code == 200
    assert (job["model_id"] is not None) == (card.makes_model and card.runs_on_a_worker)
    predictions = client.get(f"/v1/jobs/{job['id']}/predictions")
    assert predictions.status_code == (200 if card.artifact == "predictions" else 404)
    if card.makes_model and card.runs_on_a_worker:
        assert client.get(f"/v1/models/{job['model_id']}").status_code == 200


def test_a_card_names_an_engine_the_worker_has() -> None:
    for kind in list_kinds():
        engine = get_kind(kind).engine
        assert engine is None or engine in ENGINES, kind


def test_a_kind_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_kind
        class Train(TrainingKind):
            name = "train"


def test_an_unknown_kind_names_the_kinds_there_are() -> None:
    with pytest.raises(UnknownKindError, match=r"allowed: .*train"):
        get_kind("distill")


def test_a_stored_job_loads_after_its_architecture_left_the_registry() -> None:
    stored = JobCreate.model_validate(TINY).model_dump(mode="json")
    stored["model"]["arch"] = "mlp_renamed_since"  # a row written before a rename
    with pytest.raises(ValueError, match="unknown arch"):
        JobCreate.model_validate(stored)
    spec = load_stored(stored)
    assert spec.model.arch == "mlp_renamed_since" and spec.hyperparameters.epochs == 2
