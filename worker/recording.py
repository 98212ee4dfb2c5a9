"""Where a training run's epochs and checkpoints go: the job's metric rows, its log, and the
artifact store (the engine reports them through `Callbacks`; this is the other end)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from core.artifacts import BaseArtifactStore
from core.db import Database
from core.jobs import metrics, queries
from core.jobs.metrics import LAYER_SPLIT, MetricKey
from worker.training_state import Callbacks, EpochReport

log = logging.getLogger(__name__)


def recording_callbacks(
    db: Database, store: BaseArtifactStore, job_id: str, *, keep_checkpoints: int
) -> Callbacks:
    """Record each epoch and checkpoint of job `job_id` as the engine reports them, keeping its
    newest `keep_checkpoints` checkpoints."""
    with db.sessions() as session:
        planned = queries.get_job(session, job_id=job_id).epochs  # as stored at submission

    def on_epoch(report: EpochReport) -> None:
        db.write(  # an upsert: safe to repeat after a lost connection
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
            f"{MetricKey(split, name).flat}={value:.4g}"
            for (split, name), value in report.metrics.items()
            if split != LAYER_SPLIT
        )
        log.info(
            "job %s epoch %d/%d: %s", job_id, report.progress or report.epoch, planned, summary
        )

    def on_checkpoint(epoch: int, payload: dict[str, Any]) -> None:
        stored = store.save_checkpoint(job_id, epoch, payload)

        def record(session: Session) -> list[str]:
            queries.add_checkpoint(session, job_id=job_id, epoch=epoch, stored=stored)
            return queries.prune_checkpoints(session, job_id=job_id, keep=keep_checkpoints)

        stale = db.write(record)
        for path in stale:  # only after the rows are gone: no row points at a missing file
            store.delete(path)

    return Callbacks(on_epoch=on_epoch, on_checkpoint=on_checkpoint)
