"""Celery tasks: thin wrappers that hand a job id to the runner."""

from __future__ import annotations

from celery import Task

from core.artifacts import ArtifactStore
from core.job_logs import capture
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
        heartbeat_timeout_s=settings.heartbeat_timeout_s,
        max_attempts=settings.max_attempts,
        job_time_limit_s=settings.job_time_limit_s,
    )
    with capture(settings.artifacts, job_id):  # GET /v1/jobs/{id}/logs reads this file
        runner.run(job_id)
