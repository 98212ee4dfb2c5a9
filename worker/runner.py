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

from core import queries
from core.artifacts import ArtifactStore
from core.datasets import fetch_if_missing, get_dataset
from core.db import Database
from core.finetune import lineage, resolve_source
from core.queries import LAYER_SPLIT
from core.schemas import FINISHED_STATUSES, JobCreate
from core.tables import utcnow
from worker import devices, distributed
from worker.checkpoints import resumable
from worker.engine import fit
from worker.finetune import Warmstart
from worker.kfold import cross_validate
from worker.pulse import Pulse, beat_period
from worker.regression import fit_regression
from worker.training_state import SINGLE, Callbacks, EpochReport, JobCancelled, Shard

log = logging.getLogger(__name__)


class JobRunner:
    """Runs jobs against one database and artifact store, on behalf of one worker."""

    def __init__(
        self,
        *,
        db: Database,
        store: ArtifactStore,
        data_dir: Path,
        worker_name: str,
        download_datasets: bool = False,
        heartbeat_timeout_s: float = 60.0,
        max_attempts: int = 3,
        job_time_limit_s: float = 86_400.0,
    ) -> None:
        self.db = db
        self.data_dir = data_dir
        self.download_datasets = download_datasets
        self.store = store
        self.worker_name = worker_name
        self.heartbeat_timeout = timedelta(seconds=heartbeat_timeout_s)
        self.max_attempts = max_attempts
        self.job_time_limit_s = job_time_limit_s

    def run(self, job_id: str) -> None:
        """Train the job, recording progress, checkpoints and the outcome."""
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
                result = self._train(job_id, spec, device, should_stop=should_stop)
            except JobCancelled as stop:
                if pulse.cancelled.is_set():
                    log.info("job %s cancelled: %s", job_id, stop)
                    self._finish(job_id, "cancelled", f"cancelled: {stop}; checkpoints are kept")
                else:
                    log.warning("job %s hit its time limit of %g s", job_id, limit)
                    self._finish(
                        job_id,
                        "failed",
                        f"time limit of {limit:g} s reached: {stop}; checkpoints are kept. Ask "
                        "for a longer time_limit_s or fewer epochs",
                    )
                return
            except torch.cuda.OutOfMemoryError:
                log.warning("job %s ran out of GPU memory on %s", job_id, device)
                self._finish(job_id, "failed", out_of_memory_advice(spec, device))
                return
            except Exception as error:  # the job fails; the worker lives on
                log.exception("job %s failed", job_id)
                self._finish(job_id, "failed", f"{type(error).__name__}: {error}")
                return
            self._succeed(job_id, spec, result)

    def _train(
        self,
        job_id: str,
        spec: JobCreate,
        device: torch.device,
        *,
        should_stop: Callable[[], bool],
    ) -> dict[str, Any]:
        """Run the engine the job needs: k-fold selection, regression, or (fine-)training, the
        last on every GPU when the job asks for `all` and the worker has several."""
        if self.download_datasets:
            fetch_if_missing(spec.dataset.name, self.data_dir)
        callbacks = self.callbacks(job_id, spec)
        callbacks.should_stop = should_stop
        if spec.kind == "kfold":
            return cross_validate(spec, device=device, data_dir=self.data_dir, callbacks=callbacks)
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
        warmstart, origin = self._warmstart(spec)
        resume = self._resume_point(job_id)
        result = fit(
            spec,
            device=device,
            data_dir=self.data_dir,
            callbacks=callbacks,
            warmstart=warmstart,
            shard=shard,
            resume=resume,
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

    def _start(self, job_id: str) -> tuple[JobCreate, Any] | None:
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
            spec = JobCreate.model_validate(job.params)
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
        log.info("job %s started: %s on %s", job_id, spec.model.arch, device)
        return spec, device

    def _warmstart(self, spec: JobCreate) -> tuple[Warmstart | None, dict[str, Any] | None]:
        """The source weights of a fine-tuning job (verified against their sha256)."""
        if spec.finetune is None:
            return None, None
        with self.db.sessions() as session:
            source = resolve_source(session, spec)
        payload = self.store.load_checkpoint(source.path, sha256=source.sha256)
        return Warmstart(state_dict=payload["state_dict"], settings=spec.finetune), lineage(source)

    def callbacks(self, job_id: str, spec: JobCreate) -> Callbacks:
        """Record each epoch and checkpoint of job `job_id` as the engine reports them."""
        keep = spec.hyperparameters.keep_checkpoints

        def on_epoch(report: EpochReport) -> None:
            with self.db.transaction() as session:
                queries.record_epoch(
                    session,
                    job_id=job_id,
                    epoch=report.epoch,
                    step=report.step,
                    values=report.metrics,
                    progress=report.progress,
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
            with self.db.transaction() as session:
                queries.add_checkpoint(session, job_id=job_id, epoch=epoch, stored=stored)
                stale = queries.prune_checkpoints(session, job_id=job_id, keep=keep)
            for path in stale:  # only after the rows are gone: no row points at a missing file
                self.store.delete(path)

        return Callbacks(on_epoch=on_epoch, on_checkpoint=on_checkpoint)

    def _succeed(self, job_id: str, spec: JobCreate, result: dict[str, Any]) -> None:
        with self.db.transaction() as session:
            job = queries.get_job(session, job_id=job_id)
            checkpoint = queries.list_checkpoints(session, job_id=job_id)[-1]
            model = queries.create_model(
                session, job=job, checkpoint=checkpoint, arch=spec.model.arch
            )
            queries.finish_job(session, job=job, status="succeeded", result=result)
        log.info(
            "job %s succeeded: test_acc=%s, test_loss=%s, model %s",
            job_id,
            result.get("test_acc"),
            result.get("test_loss"),
            model.id,
        )

    def _finish(self, job_id: str, status: str, message: str) -> None:
        with self.db.transaction() as session:
            job = queries.get_job(session, job_id=job_id)
            queries.finish_job(session, job=job, status=status, error=message)


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
