"""A whole service in the test process: the real app behind uvicorn, and a worker thread
that runs each submitted job with the real runner (as `d2l-service up` would, minus Celery).
Shared by the client's tests and the README's (tests/test_readme.py)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from api.app import create_app
from core.artifacts import ArtifactStore
from core.db import Database
from core.jobs.logs import capture
from core.settings import Settings
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
        store = self.runner.store
        assert isinstance(store, ArtifactStore)  # a directory: the job's log file lives there
        with capture(store.root, job_id):
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


@contextmanager
def running_service(data_dir: Path) -> Iterator[Service]:
    """The app on a free port with a thread worker, its data under `data_dir`; on leaving, the
    jobs it started are joined.

    Torch gets one thread, as the e2e services do (`torch_threads=1`): the API, the server and
    the job share the test machine's cores, and on a busy 2-core machine torch's default pool
    made a 30-epoch LeNet ten times slower (300 s against 32 s). The setting is process-wide,
    so the previous count comes back on leaving."""
    settings = Settings(data_dir=data_dir, torch_threads=1)
    previous_threads = torch.get_num_threads()
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
    worker_log = logging.getLogger("worker")
    previous_level = worker_log.level
    worker_log.setLevel(logging.INFO)  # the job logs the worker keeps are INFO lines
    try:
        with serve(app) as url:
            yield Service(url, db, settings)
            for thread in worker.threads:
                thread.join(timeout=120)
    finally:
        worker_log.setLevel(previous_level)
        torch.set_num_threads(previous_threads)
        db.engine.dispose()
