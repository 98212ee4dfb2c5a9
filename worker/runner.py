"""Runs one job by id: the glue between the database, artifact storage and the engine.

Idempotent: a job that already finished is left alone, so a redelivered message does no harm.
"""

from __future__ import annotations

import logging
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
from worker import devices
from worker.engine import Callbacks, EpochReport, fit
from worker.finetune import Warmstart
from worker.kfold import cross_validate
from worker.regression import fit_regression

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
    ) -> None:
        self.db = db
        self.data_dir = data_dir
        self.download_datasets = download_datasets
        self.store = store
        self.worker_name = worker_name

    def run(self, job_id: str) -> None:
        """Train the job, recording progress, checkpoints and the outcome."""
        started = self._start(job_id)
        if started is None:
            return
        spec, device = started
        try:
            result = self._train(spec, device, self._callbacks(job_id, spec))
        except Exception as error:  # the job fails; the worker lives on
            log.exception("job %s failed", job_id)
            self._fail(job_id, f"{type(error).__name__}: {error}")
            return
        self._succeed(job_id, spec, result)

    def _train(self, spec: JobCreate, device: torch.device, callbacks: Callbacks) -> dict[str, Any]:
        """Run the engine the job needs: k-fold selection, regression, or (fine-)training."""
        if self.download_datasets:
            fetch_if_missing(spec.dataset.name, self.data_dir)
        if spec.kind == "kfold":
            return cross_validate(spec, device=device, data_dir=self.data_dir, callbacks=callbacks)
        if get_dataset(spec.dataset.name, root=self.data_dir).task == "regression":
            return fit_regression(spec, device=device, data_dir=self.data_dir, callbacks=callbacks)
        warmstart, origin = self._warmstart(spec)
        result = fit(
            spec, device=device, data_dir=self.data_dir, callbacks=callbacks, warmstart=warmstart
        )
        if origin is not None:
            result["finetune"] = {**result["finetune"], **origin}
        return result

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

    def _warmstart(self, spec: JobCreate) -> tuple[Warmstart | None, dict[str, Any] | None]:
        """The source weights of a fine-tuning job (verified against their sha256)."""
        if spec.finetune is None:
            return None, None
        with self.db.sessions() as session:
            source = resolve_source(session, spec)
        payload = self.store.load_checkpoint(source.path, sha256=source.sha256)
        return Warmstart(state_dict=payload["state_dict"], settings=spec.finetune), lineage(source)

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

    def _fail(self, job_id: str, message: str) -> None:
        with self.db.transaction() as session:
            job = queries.get_job(session, job_id=job_id)
            queries.finish_job(session, job=job, status="failed", error=message)
