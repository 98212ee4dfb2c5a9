"""Training a stored job (not a bare spec): its fine-tune source weights and the checkpoint an
earlier attempt left are found through the database and artifact store, then `fit` runs. Used
in the worker's process and by each rank of a data-parallel job (worker/distributed.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.artifacts import BaseArtifactStore
from core.auth.ownership import scope_to_job_owner
from core.db import Database
from core.jobs import queries
from core.jobs.finetune import lineage, resolve_source
from core.jobs.kind_registry import load_stored
from core.jobs.schemas import JobCreate
from worker.batches import DataPlan
from worker.checkpoints import resumable
from worker.engine import fit
from worker.finetune import Warmstart
from worker.training_state import SINGLE, Callbacks, Shard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workbench:
    """What a worker trains with: the database, the artifact store, the datasets and how much
    of a dataset may stay on the device."""

    db: Database
    store: BaseArtifactStore
    data_dir: Path
    download_datasets: bool = False
    data_plan: DataPlan = field(default_factory=DataPlan)

    def load_spec(self, job_id: str) -> Any:
        """The job's body, as the API accepted it."""
        with self.db.sessions() as session:
            return load_stored(queries.get_job(session, job_id=job_id).params)


def fit_job(
    bench: Workbench,
    job_id: str,
    spec: JobCreate,
    device: torch.device,
    callbacks: Callbacks,
    shard: Shard = SINGLE,
) -> dict[str, Any]:
    """Train or fine-tune `spec` (as one rank of several, in a data-parallel job), going on from
    the job's latest checkpoint when an earlier attempt was interrupted."""
    warmstart, origin = _warmstart(bench, job_id, spec)
    resume = _resume_point(bench, job_id)
    result = fit(
        spec,
        device=device,
        data_dir=bench.data_dir,
        callbacks=callbacks,
        warmstart=warmstart,
        shard=shard,
        resume=resume,
        plan=bench.data_plan,
    )
    if resume is not None:
        result["resumed_after_epoch"] = resume["epoch"]
    if origin is not None:
        result["finetune"] = {**result["finetune"], **origin}
    return result


def _resume_point(bench: Workbench, job_id: str) -> dict[str, Any] | None:
    """The newest checkpoint of an earlier attempt that loads and verifies, if any."""
    with bench.db.sessions() as session:
        checkpoints = list(queries.list_checkpoints(session, job_id=job_id))
    for checkpoint in reversed(checkpoints):
        try:
            payload = bench.store.load_checkpoint(checkpoint.path, sha256=checkpoint.sha256)
        except Exception as error:  # noqa: BLE001  (try the one before)
            log.warning("job %s: checkpoint %s unusable: %s", job_id, checkpoint.path, error)
            continue
        if resumable(payload):
            log.info("job %s resumes after epoch %d", job_id, checkpoint.epoch)
            return payload
    return None


def _warmstart(
    bench: Workbench, job_id: str, spec: JobCreate
) -> tuple[Warmstart | None, dict[str, Any] | None]:
    """The source weights of a fine-tuning job (verified against their sha256), as the job's
    owner sees them: another owner's job or upload is not there."""
    if spec.finetune is None:
        return None, None
    with bench.db.sessions() as session:
        source = resolve_source(scope_to_job_owner(session, job_id=job_id), spec)
    payload = bench.store.load_checkpoint(source.path, sha256=source.sha256)
    return Warmstart(state_dict=payload["state_dict"], settings=spec.finetune), lineage(source)
