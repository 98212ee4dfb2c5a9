"""The client's tests run against one live service for the package (tests/client/live_service),
and share one trained LeNet."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from d2l_client import Client, Event, Job
from tests.client.live_service import Service, ThreadWorker, running_service

# tests/api and tests/worker take the thread worker from here.
__all__ = ["Service", "ThreadWorker", "TrainedJob", "running_job"]


@pytest.fixture(scope="package")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("service")) as live:
        yield live


@dataclass(frozen=True)
class TrainedJob:
    job_id: str
    model_id: str
    events: list[Event]


@pytest.fixture(scope="package")
def trained_job(service: Service) -> TrainedJob:
    """LeNet on digits for 3 epochs, submitted and followed through the client."""
    with Client(service.url) as client:
        job = client.train(
            arch="lenet",
            dataset="digits",
            experiment="client",
            config={"activation": "relu"},
            hyperparameters={"epochs": 3, "batch_size": 32, "lr": 0.1},
        )
        events = list(job.follow())
        info = job.wait()
    assert info["model_id"] is not None
    return TrainedJob(job.id, info["model_id"], events)


def running_job(client: Client, *, experiment: str) -> Job:
    """A long MLP job, returned once its worker has claimed it (cancelling it then asks a
    running job to stop, rather than racing the claim of a queued one)."""
    job = client.train(
        arch="mlp", dataset="digits", experiment=experiment, hyperparameters={"epochs": 500}
    )
    for event in client.events(job.id):
        if event.kind == "status" and event.data["status"] == "running":
            break
    job.refresh()
    return job
