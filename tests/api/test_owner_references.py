"""D2L_AUTH=on: whatever a job names (fine-tune weights, a model, an uploaded dataset) must be
its owner's, wherever it is named: in the body, in a sweep's space, and again in the worker."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from core.artifacts import open_artifact_store
from core.jobs import queries
from core.jobs.predict_jobs import PredictJobCreate
from core.jobs.schemas import JobCreate
from core.registry import queries as registry
from core.tables import Job
from tests.api.test_auth import SMALL_JOB, Service, make_service
from tests.conftest import RecordingQueue
from worker.runner import JobRunner
from worker.sweep_control import sweep_step

FINETUNE = SMALL_JOB | {"kind": "finetune", "experiment": "bob-exp"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from make_service(
        tmp_path_factory.mktemp("owners"), submit_rate_per_minute=0, max_queued_per_owner=0
    )


@pytest.fixture(scope="module")
def alice(service: Service) -> dict[str, str]:
    return service.token("alice")


@pytest.fixture(scope="module")
def bob(service: Service) -> dict[str, str]:
    return service.token("bob")


def upload_weights(service: Service, headers: dict[str, str], model_id: str) -> str:
    """The model's state_dict uploaded as a fine-tuning source; the upload's id."""
    weights = service.client.get(f"/v1/models/{model_id}/state_dict", headers=headers)
    assert weights.status_code == 200, weights.text
    form = {"arch": "mlp", "config": '{"hidden_sizes": [16]}', "num_classes": "10"}
    files = {"file": ("w.pt", weights.content, "application/octet-stream")}
    uploaded = service.client.post("/v1/checkpoints", data=form, files=files, headers=headers)
    assert uploaded.status_code == 201, uploaded.text
    return str(uploaded.json()["id"])


def upload_dataset(service: Service, headers: dict[str, str]) -> str:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    np.savez(buffer, x=rng.integers(0, 17, (60, 8, 8), dtype=np.uint8), y=np.arange(60) % 10)
    files = {"file": ("d.npz", buffer.getvalue(), "application/octet-stream")}
    uploaded = service.client.post("/v1/datasets", files=files, headers=headers)
    assert uploaded.status_code == 201, uploaded.text
    return str(uploaded.json()["id"])


@pytest.fixture(scope="module")
def things(service: Service, alice: dict[str, str], bob: dict[str, str]) -> dict[str, str]:
    """What each owner made: a trained job (and its model), an uploaded checkpoint, a dataset."""
    alices, bobs = service.train(alice), service.train(bob, experiment="bob-exp")
    return {
        "alice_job": alices["id"],
        "alice_model": alices["model_id"],
        "alice_weights": upload_weights(service, alice, alices["model_id"]),
        "alice_dataset": upload_dataset(service, alice),
        "bob_job": bobs["id"],
        "bob_weights": upload_weights(service, bob, bobs["model_id"]),
    }


def sweep_body(source: dict[str, str], space: dict[str, Any]) -> dict[str, Any]:
    return FINETUNE | {
        "kind": "sweep",
        "finetune": {"source": source},
        "sweep": {"space": space, "search": "grid"},
    }


@pytest.mark.parametrize(
    ("base", "space"),
    [
        ({"job_id": "bob_job"}, {"finetune.source.job_id": ["bob_job", "alice_job"]}),
        (
            {"checkpoint_id": "bob_weights"},
            {"finetune.source.checkpoint_id": ["bob_weights", "alice_weights"]},
        ),
        ({"job_id": "bob_job"}, {"finetune.source": [{"checkpoint_id": "alice_weights"}]}),
    ],
    ids=["job_id", "checkpoint_id", "source"],
)
def test_a_sweep_cannot_vary_the_source_to_another_owners_weights(
    service: Service,
    bob: dict[str, str],
    things: dict[str, str],
    base: dict[str, str],
    space: dict[str, Any],
) -> None:
    def named(value: Any) -> Any:  # fixture names -> ids, at any depth
        if isinstance(value, dict):
            return {key: named(item) for key, item in value.items()}
        if isinstance(value, list):
            return [named(item) for item in value]
        return things.get(value, value)

    answer = service.client.post(
        "/v1/jobs", json=sweep_body(named(base), named(space)), headers=bob
    )
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    alices = things["alice_job"] if "job_id" in str(space) else things["alice_weights"]
    assert "sweep.space" in detail and alices in detail
    own = sweep_body(named(base), named({"hyperparameters.lr": [0.05, 0.1]}))
    assert service.client.post("/v1/jobs", json=own, headers=bob).status_code == 202


def store_job(service: Service, spec: JobCreate | PredictJobCreate, *, owner: str) -> str:
    """A queued row as the worker finds it, written past the API's checks (a sweep's trial, or
    a row from before them)."""
    with service.db.transaction() as session:
        return queries.create_job(session, spec=spec, queue="cpu", owner=owner).id


def run(service: Service, job_id: str) -> Job:
    JobRunner(
        db=service.db,
        store=open_artifact_store(service.settings),
        data_dir=service.settings.datasets_dir,
        worker_name="w",
    ).run(job_id)
    with service.db.sessions() as session:
        job = queries.get_job(session, job_id=job_id)
        assert not queries.list_checkpoints(session, job_id=job_id)  # nothing of alice's copied
        return job


@pytest.mark.parametrize(
    ("field", "thing"),
    [
        ("finetune.source.job_id", "alice_job"),
        ("finetune.source.checkpoint_id", "alice_weights"),
        ("dataset.name", "alice_dataset"),
        ("model", "alice_model"),
    ],
)
def test_the_worker_resolves_what_a_job_names_as_the_jobs_owner(
    service: Service, things: dict[str, str], field: str, thing: str
) -> None:
    if field == "model":  # a predict job's model, resolved to its id at submission
        spec: JobCreate | PredictJobCreate = PredictJobCreate(
            kind="predict",
            model=things[thing],
            model_id=things[thing],
            dataset={"name": "digits"},  # type: ignore[arg-type]
        )
    elif field == "dataset.name":
        spec = JobCreate.model_validate(SMALL_JOB | {"dataset": {"name": things[thing]}})
    else:
        source = {field.rsplit(".", 1)[1]: things[thing]}
        spec = JobCreate.model_validate(FINETUNE | {"finetune": {"source": source}})
    job = run(service, store_job(service, spec, owner="bob"))
    assert job.status == "failed"
    assert things[thing] in (job.error or "") and "no " in (job.error or "")


def test_a_sweeps_trial_never_fine_tunes_from_another_owners_job(
    service: Service, things: dict[str, str]
) -> None:
    """The sweep stored past the API's check (as before it existed): its trial, made by the
    controller, still fails in the worker instead of training from alice's model."""
    body = sweep_body(
        {"job_id": things["bob_job"]}, {"finetune.source.job_id": [things["alice_job"]]}
    )
    sweep_id = store_job(service, JobCreate.model_validate(body), owner="bob")
    queue = RecordingQueue()
    [trial_id] = sweep_step(service.db, queue, sweep_id)  # type: ignore[arg-type]
    trial = run(service, trial_id)
    assert trial.status == "failed" and things["alice_job"] in (trial.error or "")
    with service.db.sessions() as session:
        assert trial.id not in registry.model_ids_for_jobs(session, job_ids=[trial.id])
