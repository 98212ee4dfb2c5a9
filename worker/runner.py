"""Runs one job by id: the glue between the database, artifact storage and the engine.

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
from core.auth.ownership import scope_to_job_owner, scope_to_owner
from core.datasets import fetch_if_missing, get_dataset
from core.db import Database
from core.errors import InvalidInputError
from core.jobs import metrics, queries
from core.jobs.finetune import lineage, resolve_source
from core.jobs.metrics import LAYER_SPLIT
from core.jobs.predict_jobs import PredictJobCreate, parse_job_params
from core.jobs.queries import CANCELLED_AWAY
from core.jobs.references import resolve_references
from core.jobs.schemas import FINISHED_STATUSES, JobCreate
from core.registry import queries as registry
from core.tables import Job, Model, utcnow
from worker import devices, distributed
from worker.batches import DataPlan
from worker.checkpoints import resumable
from worker.engine import fit
from worker.finetune import Warmstart
from worker.kfold import cross_validate
from worker.oom import memory_failure
from worker.predictions import run_predictions
from worker.pulse import Pulse, beat_period
from worker.regression import fit_regression
from worker.sweep_control import pruning, record_pruned
from worker.sweeps import TrialPruned
from worker.training_state import (
    SINGLE,
    Callbacks,
    EpochReport,
    JobCancelled,
    Shard,
    StepProgress,
)

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
        self.data_dir = data_dir
        self.download_datasets = download_datasets
        self.store = store
        self.worker_name = worker_name
        self.heartbeat_timeout = timedelta(seconds=heartbeat_timeout_s)
        self.max_attempts = max_attempts
        self.job_time_limit_s = job_time_limit_s
        # Called with the job's id after every delivery (a sweep's trial asks for its next step).
        self.on_job_end = on_job_end
        # Publishes (job id, queue, params) again: a job stopped for a warm shutdown goes back.
        self.send_again = send_again
        # How much of a dataset may stay on the training device (the rest streams from disk).
        self.data_plan = data_plan or DataPlan()

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
        period = beat_period(self.heartbeat_timeout.total_seconds())
        limit = spec.time_limit_s or self.job_time_limit_s
        deadline = time.monotonic() + limit
        with Pulse(self.db, job_id, period=period) as pulse:

            def should_stop() -> bool:  # asked before every step: a flag and a clock, no I/O
                return pulse.cancelled.is_set() or time.monotonic() > deadline

            try:
                result = self._train(
                    job_id, spec, device, should_stop=should_stop, progress=pulse.progress
                )
            except TrialPruned as pruned:  # a sweep's pruner stopped it: cancelled, saying so
                log.info("job %s %s", job_id, pruned)
                record_pruned(self.db, job_id, pruned)
                return
            except JobCancelled as stop:
                predicting = isinstance(spec, PredictJobCreate)
                kept = "" if predicting else "; checkpoints are kept"
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
                        + ("time_limit_s" if predicting else "time_limit_s or fewer epochs"),
                    )
                return
            except torch.cuda.OutOfMemoryError:
                log.warning("job %s ran out of GPU memory on %s", job_id, device)
                if isinstance(spec, PredictJobCreate):
                    advice = f"GPU out of memory on {device}: try a smaller batch_size"
                else:
                    advice = out_of_memory_advice(spec, device)
                self._finish(job_id, "failed", advice)
                return
            except Exception as error:  # the job fails; the worker lives on
                log.exception("job %s failed", job_id)
                message = memory_failure(error) or f"{type(error).__name__}: {error}"
                self._finish(job_id, "failed", message)
                return
            self._succeed(job_id, spec, result)

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

    def _train(
        self,
        job_id: str,
        spec: JobCreate | PredictJobCreate,
        device: torch.device,
        *,
        should_stop: Callable[[], bool],
        progress: StepProgress | None = None,
    ) -> dict[str, Any]:
        """Run the engine the job needs: predictions, k-fold selection, regression, or
        (fine-)training, the last on every GPU when the job asks for `all` and the worker has
        several."""
        if isinstance(spec, PredictJobCreate):
            return self._predict(job_id, spec, device, should_stop=should_stop, progress=progress)
        if self.download_datasets:
            fetch_if_missing(spec.dataset.name, self.data_dir)
        callbacks = self.callbacks(job_id, spec)
        callbacks.should_stop = should_stop
        if progress is not None:
            callbacks.progress = progress
        callbacks.on_epoch = pruning(self.db, job_id, callbacks.on_epoch)  # a sweep's trial
        if spec.kind == "kfold":
            plan = self.data_plan
            return cross_validate(
                spec, device=device, data_dir=self.data_dir, callbacks=callbacks, plan=plan
            )
        if get_dataset(spec.dataset.name, root=self.data_dir).task == "regression":
            return fit_regression(spec, device=device, data_dir=self.data_dir, callbacks=callbacks)
        processes = devices.data_parallel_size(spec.device)
        if processes > 1:
            return distributed.launch(
                job_id,
                processes=processes,
                db=self.db,
                store=self.store,
                data_dir=self.data_dir,
                should_stop=should_stop,
            )
        return self.fit(job_id, spec, device, callbacks)

    def fit(
        self,
        job_id: str,
        spec: JobCreate,
        device: torch.device,
        callbacks: Callbacks,
        shard: Shard = SINGLE,
    ) -> dict[str, Any]:
        """Train or fine-tune `spec` (as one rank of several, in a data-parallel job), going on
        from the job's latest checkpoint when an earlier attempt was interrupted."""
        warmstart, origin = self._warmstart(job_id, spec)
        resume = self._resume_point(job_id)
        result = fit(
            spec,
            device=device,
            data_dir=self.data_dir,
            callbacks=callbacks,
            warmstart=warmstart,
            shard=shard,
            resume=resume,
            plan=self.data_plan,
        )
        if resume is not None:
            result["resumed_after_epoch"] = resume["epoch"]
        if origin is not None:
            result["finetune"] = {**result["finetune"], **origin}
        return result

    def load_spec(self, job_id: str) -> JobCreate:
        """The job's request, rebuilt from its row."""
        with self.db.sessions() as session:
            return JobCreate.model_validate(queries.get_job(session, job_id=job_id).params)

    def _resume_point(self, job_id: str) -> dict[str, Any] | None:
        """The newest checkpoint of an earlier attempt that loads and verifies, if any."""
        with self.db.sessions() as session:
            checkpoints = list(queries.list_checkpoints(session, job_id=job_id))
        for checkpoint in reversed(checkpoints):
            try:
                payload = self.store.load_checkpoint(checkpoint.path, sha256=checkpoint.sha256)
            except Exception as error:  # noqa: BLE001  (try the one before)
                log.warning("job %s: checkpoint %s unusable: %s", job_id, checkpoint.path, error)
                continue
            if resumable(payload):
                log.info("job %s resumes after epoch %d", job_id, checkpoint.epoch)
                return payload
        return None

    def _start(self, job_id: str) -> tuple[JobCreate | PredictJobCreate, Any] | None:
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
            spec = parse_job_params(job.params)
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
        what = spec.model if isinstance(spec, PredictJobCreate) else spec.model.arch
        log.info("job %s started: %s on %s", job_id, what, device)
        return spec, device

    def _warmstart(
        self, job_id: str, spec: JobCreate
    ) -> tuple[Warmstart | None, dict[str, Any] | None]:
        """The source weights of a fine-tuning job (verified against their sha256), as the
        job's owner sees them: another owner's job or upload is not there."""
        if spec.finetune is None:
            return None, None
        with self.db.sessions() as session:
            source = resolve_source(scope_to_job_owner(session, job_id=job_id), spec)
        payload = self.store.load_checkpoint(source.path, sha256=source.sha256)
        return Warmstart(state_dict=payload["state_dict"], settings=spec.finetune), lineage(source)

    def callbacks(self, job_id: str, spec: JobCreate) -> Callbacks:
        """Record each epoch and checkpoint of job `job_id` as the engine reports them."""
        keep = spec.hyperparameters.keep_checkpoints

        def on_epoch(report: EpochReport) -> None:
            self.db.write(  # an upsert: safe to repeat after a lost connection
                lambda session: metrics.record_epoch(
                    session,
                    job_id=job_id,
                    epoch=report.epoch,
                    step=report.step,
                    values=report.metrics,
                    progress=report.progress,
                )
            )
            summary = ", ".join(
                f"{split}_{name}={value:.4g}"
                for (split, name), value in report.metrics.items()
                if split != LAYER_SPLIT
            )
            done = report.progress or report.epoch
            log.info("job %s epoch %d/%d: %s", job_id, done, spec.planned_epochs, summary)

        def on_checkpoint(epoch: int, payload: dict[str, Any]) -> None:
            stored = self.store.save_checkpoint(job_id, epoch, payload)

            def record(session: Session) -> list[str]:
                queries.add_checkpoint(session, job_id=job_id, epoch=epoch, stored=stored)
                return queries.prune_checkpoints(session, job_id=job_id, keep=keep)

            stale = self.db.write(record)
            for path in stale:  # only after the rows are gone: no row points at a missing file
                self.store.delete(path)

        return Callbacks(on_epoch=on_epoch, on_checkpoint=on_checkpoint)

    def _predict(
        self,
        job_id: str,
        spec: PredictJobCreate,
        device: torch.device,
        *,
        should_stop: Callable[[], bool],
        progress: StepProgress | None = None,
    ) -> dict[str, Any]:
        """Predict a dataset split with the model resolved at submission (worker/predictions)."""
        if self.download_datasets:
            fetch_if_missing(spec.dataset.name, self.data_dir)
        with self.db.sessions() as session:
            owners_view = scope_to_job_owner(session, job_id=job_id)
            checkpoint = registry.get_model_row(owners_view, model_id=str(spec.model_id)).checkpoint
            path, sha256 = checkpoint.path, checkpoint.sha256
        payload = self.store.load_checkpoint(path, sha256=sha256)
        return run_predictions(
            job_id,
            spec,
            payload,
            device=device,
            store=self.store,
            data_dir=self.data_dir,
            should_stop=should_stop,
            progress=progress,
        )

    def _succeed(
        self, job_id: str, spec: JobCreate | PredictJobCreate, result: dict[str, Any]
    ) -> None:
        if isinstance(spec, PredictJobCreate):  # no new model: the predictions are the result
            with self.db.transaction() as session:
                # Progress 1 of 1; no metric rows, so no experiment ranks it among trained runs.
                metrics.record_epoch(session, job_id=job_id, epoch=1, step=0, values={})
                job = queries.get_job(session, job_id=job_id)
                queries.finish_job(session, job=job, status="succeeded", result=result)
            log.info("job %s succeeded: %d predictions", job_id, result["count"])
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


def names_only_its_owners(session: Session, job: Job, spec: JobCreate | PredictJobCreate) -> bool:
    """Whether every stored thing the job names is its owner's, as the API checked at
    submission; a job naming another owner's (or a vanished) thing fails, saying which."""
    try:
        resolve_references(scope_to_owner(session, job.owner), spec)
    except InvalidInputError as error:
        queries.finish_job(session, job=job, status="failed", error=str(error))
        log.warning("job %s refused: %s", job.id, error)
        return False
    return True


def out_of_memory_advice(spec: JobCreate, device: torch.device) -> str:
    """What to change when a batch did not fit on the GPU."""
    hp = spec.hyperparameters
    smaller = max(1, hp.batch_size // 2)
    hints = [f"hyperparameters.batch_size {smaller}"]
    if hp.precision == "fp32":
        hints.append('precision "bf16"')
    hints.append("a smaller model.input_size")
    return (
        f"GPU out of memory on {device} with batch_size {hp.batch_size}: try {', or '.join(hints)}"
    )
