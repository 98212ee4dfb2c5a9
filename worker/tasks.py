"""Celery tasks: thin wrappers that hand a job id to the runner."""

from __future__ import annotations

from celery import Task

from core.artifacts import ArtifactStore
from core.queue import RUN_JOB_TASK
from worker.app import app, database, settings
from worker.runner import JobRunner


@app.task(name=RUN_JOB_TASK, bind=True)
def run_job(self: Task, job_id: str) -> None:
    """Train job `job_id`; acks late, so a worker that dies mid-job leaves it to be redelivered."""
    runner = JobRunner(
        db=database,
        store=ArtifactStore(settings.artifacts),
        data_dir=settings.datasets_dir,
        worker_name=self.request.hostname,
        download_datasets=settings.download_datasets,
    )
    runner.run(job_id)
