"""Runs one job by id: claims it, keeps its heartbeat, hands it to the engine its kind's card
names (worker/engines.py), and records how it ended.

Idempotent: a job that already finished is left alone, so a redelivered message does no harm.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from sqlalchemy.orm import Session

from core import workers
from core.artifacts import BaseArtifactStore
from core.auth.ownership import scope_to_owner
from core.db import Database
from core.errors import InvalidInputError
from core.jobs import metrics, queries
from core.jobs.kinds import KindCard, get_kind, load_stored
from core.jobs.queries import CANCELLED_AWAY
from core.jobs.schemas import FINISHED_STATUSES
from core.registry import queries as registry
from core.tables import Job, Model, utcnow
from worker import devices
from worker.batches import DataPlan
from worker.engines import ENGINES, Engine, Run
from worker.job_training import Workbench
from worker.oom import memory_failure
from worker.pulse import Pulse, beat_period
from worker.sweep_control import record_pruned
from worker.sweeps import TrialPruned
from worker.training_state import JobCancelled

log = logging.getLogger(__name__)


class JobRunner:
    """Runs jobs against one database and artifact store, on behalf of one worker."""

    def __init__(
        self,
        *,
        db: Database,
        store: BaseArtifactStore,
        data_dir: Path,
        worker_name: str,
        download_datasets: bool = False,
        heartbeat_timeout_s: float = 60.0,
        max_attempts: int = 3,
        job_time_limit_s: float = 86_400.0,
        on_job_end: Callable[[str], None] | None = None,
        send_again: Callable[[str, str, dict[str, Any]], None] | None = None,
        data_plan: DataPlan | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.bench = Workbench(
            db=db,
            store=store,
            data_dir=data_dir,
            download_datasets=download_datasets,
            data_plan=data_plan or DataPlan(),
        )
        self.worker_name = worker_name
        self.heartbeat_timeout = timedelta(seconds=heartbeat_timeout_s)
        self.max_attempts = max_attempts
        self.job_time_limit_s = job_time_limit_s
        # Called with the job's id after every delivery (a sweep's trial asks for its next step).
        self.on_job_end = on_job_end
        # Publishes (job id, queue, params) again: a job stopped for a warm shutdown goes back.
        self.send_again = send_again

    def run(self, job_id: str) -> None:
        """Train the job, recording progress, checkpoints and the outcome; then `on_job_end`."""
        try:
            self._run(job_id)
        finally:
            if self.on_job_end is not None:
                self.on_job_end(job_id)

    def _run(self, job_id: str) -> None:
        started = self._start(job_id)
        if started is None:
            return
        spec, device = started
        kind = get_kind(spec.kind)
        period = beat_period(self.heartbeat_timeout.total_seconds())
        limit = spec.time_limit_s or self.job_time_limit_s
        deadline = time.monotonic() + limit
        with Pulse(self.db, job_id, period=period) as pulse:

            def should_stop() -> bool:  # asked before every step: a flag and a clock, no I/O
                return pulse.cancelled.is_set() or time.monotonic() > deadline

            try:
                result = self._engine(kind)(
                    self.bench,
                    Run(job_id, spec, device, should_stop=should_stop, progress=pulse.progress),
                )
            except TrialPruned as pruned:  # a sweep's pruner stopped it: cancelled, saying so
                log.info("job %s %s", job_id, pruned)
                record_pruned(self.db, job_id, pruned)
                return
            except JobCancelled as stop:
                kept = "; checkpoints are kept" if kind.makes_model else ""
                if pulse.requeue.is_set():
                    log.info("job %s stopped (%s) for its worker's shutdown", job_id, stop)
                    self._send_back(job_id)
                elif pulse.cancelled.is_set():
                    log.info("job %s cancelled: %s", job_id, stop)
                    self._finish(job_id, "cancelled", f"cancelled: {stop}{kept}")
                else:
                    log.warning("job %s hit its time limit of %g s", job_id, limit)
                    self._finish(
                        job_id,
                        "failed",
                        f"time limit of {limit:g} s reached: {stop}{kept}. Ask for a longer "
                        + ("time_limit_s or fewer epochs" if kind.makes_model else "time_limit_s"),
                    )
                return
            except torch.cuda.OutOfMemoryError:
                log.warning("job %s ran out of GPU memory on %s", job_id, device)
                self._finish(job_id, "failed", kind.out_of_memory_advice(spec, device))
                return
            except Exception as error:  # the job fails; the worker lives on
                log.exception("job %s failed", job_id)
                message = memory_failure(error) or f"{type(error).__name__}: {error}"
                self._finish(job_id, "failed", message)
                return
            self._succeed(job_id, kind, spec, result)

    @staticmethod
    def _engine(kind: KindCard) -> Engine:
        """The worker engine the kind's card names (a kind no worker runs is never claimed)."""
        assert kind.engine is not None, f"kind {kind.name!r} is not run by a worker"
        return ENGINES[kind.engine]

    def _send_back(self, job_id: str) -> None:
        """Queue a job whose worker is shutting down again, not counting this attempt; the next
        one resumes from its latest checkpoint (the interrupted epoch is trained again, exactly
        as it would have been)."""
        with self.db.transaction() as session:
            job = queries.lock_job(session, job_id=job_id)
            if not queries.requeue_job(session, job=job, shutdown=True):
                log.info("job %s cancelled as its worker stopped", job_id)
                return
            queue, params = job.queue, dict(job.params)
        if self.send_again is not None:
            self.send_again(job_id, queue, params)
        log.info("job %s is back in the %s queue", job_id, queue)

    def _start(self, job_id: str) -> tuple[Any, torch.device] | None:
        """Claim the job for this worker, unless it is finished, alive elsewhere, or out of
        attempts (a job whose worker keeps dying is failed rather than retried forever)."""
        with self.db.transaction() as session:
            job = queries.lock_job(session, job_id=job_id)
            if job.status in FINISHED_STATUSES:
                log.info("job %s is already %s; nothing to do", job_id, job.status)
                return None
            beat = job.heartbeat_at
            if job.status == "running" and beat and utcnow() - beat < self.heartbeat_timeout:
                log.info("job %s runs on %s: this delivery is a duplicate", job_id, job.worker)
                return None
            if job.cancel_requested:  # asked while its last worker was away: never again
                queries.finish_job(session, job=job, status="cancelled", error=CANCELLED_AWAY)
                log.info("job %s was cancelled while its worker was away", job_id)
                return None
            if workers.worker_stopping(session, hostname=self.worker_name):
                # Received in the moment between a SIGTERM and the consumer's stop: not ours.
                if self.send_again is not None:
                    self.send_again(job_id, job.queue, dict(job.params))
                log.info(
                    "job %s is back in the %s queue: this worker is stopping", job_id, job.queue
                )
                return None
            if job.attempts >= self.max_attempts:
                queries.finish_job(
                    session,
                    job=job,
                    status="failed",
                    error=f"gave up after {job.attempts} attempts: its worker stopped each time "
                    f"(last {job.worker}); look for out-of-memory kills in the worker's log",
                )
                log.warning("job %s failed: out of attempts", job_id)
                return None
            spec = load_stored(job.params)
            if not names_only_its_owners(session, job, spec):
                return None
            try:
                device = devices.resolve_device(spec.device)
            except devices.DeviceUnavailableError as error:
                queries.finish_job(session, job=job, status="failed", error=str(error))
                log.warning("job %s refused: %s", job_id, error)
                return None
            processes = devices.data_parallel_size(spec.device)
            queries.mark_running(
                session,
                job=job,
                worker=self.worker_name,
                device=devices.describe(device, processes),
            )
        log.info("job %s started: %s, on %s", job_id, get_kind(spec.kind).describe(spec), device)
        return spec, device

    def _succeed(self, job_id: str, kind: KindCard, spec: Any, result: dict[str, Any]) -> None:
        if not kind.makes_model:  # its result (a file of predictions) is all it leaves
            with self.db.transaction() as session:
                # Progress 1 of 1; no metric rows, so no experiment ranks it among trained runs.
                metrics.record_epoch(session, job_id=job_id, epoch=1, step=0, values={})
                job = queries.get_job(session, job_id=job_id)
                queries.finish_job(session, job=job, status="succeeded", result=result)
            log.info("job %s succeeded: %s", job_id, kind.describe(spec))
            return

        def succeed(session: Session) -> Model:
            job = queries.get_job(session, job_id=job_id)
            checkpoint = queries.list_checkpoints(session, job_id=job_id)[-1]
            model = registry.create_model(
                session, job=job, checkpoint=checkpoint, arch=spec.model.arch
            )
            queries.finish_job(session, job=job, status="succeeded", result=result)
            return model

        model = self.db.write(succeed)
        log.info(
            "job %s succeeded: test_acc=%s, test_loss=%s, model %s",
            job_id,
            result.get("test_acc"),
            result.get("test_loss"),
            model.id,
        )

    def _finish(self, job_id: str, status: str, message: str) -> None:
        def finish(session: Session) -> None:
            job = queries.get_job(session, job_id=job_id)
            queries.finish_job(session, job=job, status=status, error=message)

        self.db.write(finish)


def names_only_its_owners(session: Session, job: Job, spec: Any) -> bool:
    """Whether every stored thing the job names is its owner's, as the API checked at
    submission; a job naming another owner's (or a vanished) thing fails, saying which."""
    try:
        get_kind(spec.kind).resolve_references(scope_to_owner(session, job.owner), spec)
    except InvalidInputError as error:
        queries.finish_job(session, job=job, status="failed", error=str(error))
        log.warning("job %s refused: %s", job.id, error)
        return False
    return True
