"""A GPU job that no worker's GPU could hold is refused at submission, with the numbers."""

from fastapi.testclient import TestClient

from core import workers
from core.datasets import get_dataset
from core.db import Database
from core.jobs.memory_estimate import GIB, estimate
from tests.factories import job_spec

BIG = {
    "model": {"arch": "resnet18", "input_size": 224},
    "dataset": {"name": "digits"},
    "hyperparameters": {"batch_size": 4096},
    "device": "cuda",
}


def register_gpu_worker(db: Database, *, gib: int, gpus: int = 1) -> None:
    devices = [
        {"name": f"cuda:{i}", "type": "cuda", "model": "Test GPU", "memory_bytes": gib * GIB}
        for i in range(gpus)
    ]
    with db.transaction() as session:
        workers.register_worker(
            session, hostname="gpu1@test", queues=["cpu", "gpu"], devices=devices
        )


def test_a_job_too_big_for_every_gpu_is_refused_with_the_numbers(
    client: TestClient, sqlite_db: Database
) -> None:
    register_gpu_worker(sqlite_db, gib=16)
    answer = client.post("/v1/jobs", json=BIG)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert "GiB" in detail and "batch_size 4096" in detail and "gpu1@test" in detail
    assert "16.0 GiB" in detail and "about" in detail
    small = {**BIG, "hyperparameters": {"batch_size": 32}}
    assert client.post("/v1/jobs", json=small).status_code == 202


def test_device_all_splits_the_batch_across_the_workers_gpus(
    client: TestClient, sqlite_db: Database
) -> None:
    register_gpu_worker(sqlite_db, gib=16, gpus=8)
    assert client.post("/v1/jobs", json=BIG).status_code == 422  # one GPU cannot hold it
    assert client.post("/v1/jobs", json={**BIG, "device": "all"}).status_code == 202


def test_with_no_gpu_worker_known_the_job_waits_for_one(client: TestClient) -> None:
    assert client.post("/v1/jobs", json=BIG).status_code == 202


def test_the_estimate_grows_with_the_batch_and_counts_adams_moments() -> None:
    info = get_dataset("digits")
    sgd = job_spec(model={"arch": "lenet"})
    adam = job_spec(model={"arch": "lenet"}, hyperparameters={"optimizer": "adam"})
    one, many = estimate(sgd, info, batch_size=1), estimate(sgd, info, batch_size=100)
    assert many.activations == 100 * one.activations and many.weights == one.weights
    assert one.weights == 61_706 * 4  # LeNet's parameters, float32
    assert estimate(adam, info, batch_size=1).optimizer == 2 * one.weights
