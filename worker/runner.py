"""Runs one job by id: the glue between the database, artifact storage and the engine.

Idempotent: a job that already finished is left alone, so a redelivered message does no harm.
"""

from __future__ import annotations

import logging
from typing import Any

from core import queries
from core.artifacts import ArtifactStore
from core.db import Database
from core.schemas import FINISHED_STATUSES, JobCreate
from worker import devices
from worker.engine import Callbacks, EpochReport, fit

log = logging.getLogger(__name__)


class JobRunner:
    """Runs jobs against one database and artifact store, on behalf of one worker."""

    def __init__(self, *, db: Database, store: ArtifactStore, worker_name: str) -> None:
        self.db = db
        self.store = store
        self.worker_name = worker_name

    def run(self, job_id: str) -> None:
        """Train the job, recording progress, checkpoints and the outcome."""
        started = self._start(job_id)
        if started is None:
            return
        spec, device = started
        try:
            result = fit(spec, device=device, callbacks=self._callbacks(job_id, spec))
        except Exception as error:  # the job fails; the worker lives on
            log.exception("job %s failed", job_id)
            self._fail(job_id, f"{type(error).__name__}: {error}")
            return
        self._succeed(job_id, spec, result)

    def _start(self, job_id: str) -> tuple[JobCreate, Any] | None:
        with self.db.transaction() as session:
            job = queries.get_job(session, job_id=job_id)
            if job.status in FINISHED_STATUSES:
                log.info("job %s is already %s; nothing to do", job_id, job.status)
                return None
            spec = JobCreate.model_validate(job.params)
            try:
                device = devices.resolve_device(spec.device)
            except devices.DeviceUnavailableError as error:
                queries.finish_job(session, job=job, status="failed", error=str(error))
                log.warning("job %s refused: %s", job_id, error)
                return None
            queries.mark_running(
                session, job=job, worker=self.worker_name, device=devices.describe(device)
            )
        log.info("job %s started: %s on %s", job_id, spec.model.arch, device)
        return spec, device

    def _callbacks(self, job_id: str, spec: JobCreate) -> Callbacks:
        keep = spec.hyperparameters.keep_checkpoints

        def on_epoch(report: EpochReport) -> None:
            with self.db.transaction() as session:
                queries.record_epoch(
                    session,
                    job_id=job_id,
                    epoch=report.epoch,
                    step=report.step,
                    values=report.metrics,
                )
            summary = ", ".join(
                f"{split}_{name}={value:.4g}" for (split, name), value in report.metrics.items()
            )
            log.info(
                "job %s epoch %d/%d: %s", job_id, report.epoch, spec.hyperparameters.epochs, summary
            )

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
        log.info("job %s succeeded: test_acc=%.4f, model %s", job_id, result["test_acc"], model.id)

    def _fail(self, job_id: str, message: str) -> None:
        with self.db.transaction() as session:
            job = queries.get_job(session, job_id=job_id)
            queries.finish_job(session, job=job, status="failed", error=message)
