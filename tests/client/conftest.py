"""A whole service in the test process: the real app behind uvicorn, and a worker thread
that runs each submitted job with the real runner (as `d2l-service up` would, minus Celery)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from api.app import create_app
from core.artifacts import ArtifactStore
from core.db import Database
from core.jobs.logs import capture
from core.settings import Settings
from d2l_client import Client, Event
from tests.factories import migrated
from tests.live_server import serve
from worker.runner import JobRunner
from worker.sweep_control import notify_sweep, sweep_step


@dataclass
class ThreadWorker:
    """Stands in for the broker and a worker: each enqueued job trains in its own thread."""

    runner: JobRunner
    threads: list[threading.Thread] = field(default_factory=list)

    def enqueue(
        self,
        job_id: str,
        *,
        queue: str,
        time_limit_s: float | None = None,
        priority: str = "normal",
    ) -> None:
        thread = threading.Thread(target=self._run, args=(job_id,), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _run(self, job_id: str) -> None:
        with capture(self.runner.store.root, job_id):
            self.runner.run(job_id)

    def enqueue_sweep_step(self, sweep_id: str, *, queue: str) -> None:
        thread = threading.Thread(
            target=sweep_step, args=(self.runner.db, self, sweep_id), daemon=True
        )
        thread.start()
        self.threads.append(thread)

    def notify_sweep(self, job_id: str) -> None:
        """The runner's `on_job_end`: a finished trial asks for its sweep's next step."""
        notify_sweep(self.runner.db, self, job_id)

    def check(self) -> None:
        return None


@dataclass(frozen=True)
class Service:
    url: str
    db: Database
    settings: Settings


@pytest.fixture(scope="package")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("service"))
    db = migrated(settings)
    runner = JobRunner(
        db=db,
        store=ArtifactStore(settings.artifacts),
        data_dir=settings.datasets_dir,
        worker_name="thread-worker",
    )
    app = create_app(settings)
    worker = ThreadWorker(runner)
    runner.on_job_end = worker.notify_sweep
    app.state.job_queue = worker
    runner_log = logging.getLogger("worker")  # the runner's, the recording's, the engines'
    previous_level = runner_log.level
    runner_log.setLevel(logging.INFO)  # the job logs the worker keeps are INFO lines
    with serve(app) as url:
        yield Service(url, db, settings)
        for thread in worker.threads:
            thread.join(timeout=120)
    runner_log.setLevel(previous_level)
    db.engine.dispose()


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
