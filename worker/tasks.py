"""Celery tasks: thin wrappers that hand a job id to the runner."""

from __future__ import annotations

from datetime import timedelta

from billiard.einfo import ExceptionInfo, ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery import Task
from celery.worker.request import Request

from core.artifacts import open_artifact_store
from core.jobs.logs import capture, publish_log
from core.jobs.quota import Quota
from core.queue import RUN_JOB_TASK, SWEEP_STEP_TASK, JobQueue
from core.tables import utcnow
from worker.app import app, database, settings
from worker.batches import DataPlan
from worker.oom import fail_if_killed_for_memory, oom_kills
from worker.runner import JobRunner
from worker.sweep_control import notify_sweep, sweep_step

job_queue = JobQueue(app, settings)


class JobRequest(Request):  # type: ignore[misc]
    """A job as Celery's parent process sees it: when the child training it dies, it tells an
    out-of-memory kill (the job fails, saying so) from any other death (the job goes back to
    the queue and resumes from its checkpoint)."""

    oom_kills_before: int | None = None

    def on_accepted(self, pid: int, time_accepted: float) -> None:
        self.oom_kills_before = oom_kills()
        super().on_accepted(pid, time_accepted)

    def on_failure(
        self, exc_info: ExceptionInfo, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        error = exc_info.exception
        if isinstance(error, ExceptionWithTraceback):
            error = error.exc
        if isinstance(error, WorkerLostError):  # reported `worker_lost_wait` after the death
            died_before = utcnow() - timedelta(seconds=float(app.conf.worker_lost_wait))
            fail_if_killed_for_memory(
                database,
                job_id=str(self.args[0]),
                worker=self.hostname,
                lost=str(error),
                oom_kills_before=self.oom_kills_before,
                died_before=died_before,
            )  # then redelivered as always: the next delivery finds it failed and leaves it
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


class JobTask(Task):  # type: ignore[misc]
    Request = JobRequest


@app.task(name=RUN_JOB_TASK, bind=True, base=JobTask)
def run_job(self: Task, job_id: str) -> None:
    """Train job `job_id`; acks late, so a worker that dies mid-job leaves it to be redelivered."""
    store = open_artifact_store(settings)
    runner = JobRunner(
        db=database,
        store=store,
        data_dir=settings.datasets_dir,
        worker_name=self.request.hostname,
        download_datasets=settings.download_datasets,
        heartbeat_timeout_s=settings.heartbeat_timeout_s,
        max_attempts=settings.max_attempts,
        job_time_limit_s=settings.job_time_limit_s,
        on_job_end=lambda ended: notify_sweep(database, job_queue, ended),
        send_again=job_queue.send_again,
        data_plan=DataPlan.from_settings(settings),
    )
    try:
        with capture(settings.artifacts, job_id):  # GET /v1/jobs/{id}/logs reads this file
            runner.run(job_id)
    finally:  # with an object store, the API may be on another machine: copy the file there
        publish_log(store, settings.artifacts, job_id, worker=self.request.hostname or "worker")


@app.task(name=SWEEP_STEP_TASK)
def run_sweep_step(sweep_id: str) -> None:
    """Advance sweep `sweep_id` (start trials up to its concurrency, or conclude it): a short
    step, so a sweep never holds a worker while its trials train."""
    sweep_step(database, job_queue, sweep_id, quota=Quota.of(settings))
