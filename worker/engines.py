"""The worker's engines, by the name a kind's card gives (`KindCard.engine`): what runs a claimed
job, between the runner's claim and its recording of the outcome.

- `train` trains (or fine-tunes) one net: the dataset's task picks the trainer (a classifier on
  cross-entropy, on every GPU of the worker for device `all`; a regression net or attention
  pooling on squared loss).
- `kfold` selects among candidate configurations by k-fold cross-validation, then retrains.
- `predict` runs a trained model over a dataset split and writes the predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from core.auth.ownership import scope_to_job_owner
from core.datasets import fetch_if_missing, get_dataset
from core.registry import queries as registry
from worker import devices, distributed
from worker.job_training import Workbench, fit_job
from worker.kfold import cross_validate
from worker.predictions import run_predictions
from worker.recording import recording_callbacks
from worker.regression import fit_regression
from worker.sweep_control import pruning
from worker.training_state import Callbacks, StepProgress


@dataclass(frozen=True)
class Run:
    """One claimed job: its body, the device it trains on, and the runner's two hooks (stop
    between steps; live progress within an epoch)."""

    job_id: str
    spec: Any
    device: torch.device
    should_stop: Callable[[], bool]
    progress: StepProgress | None = None


Engine = Callable[[Workbench, Run], dict[str, Any]]


def _recording(bench: Workbench, run: Run) -> Callbacks:
    """The run's epochs and checkpoints recorded; a sweep trial's epochs also go to its
    sweep's pruner, which may stop it."""
    callbacks = recording_callbacks(
        bench.db,
        bench.store,
        run.job_id,
        keep_checkpoints=run.spec.hyperparameters.keep_checkpoints,
    )
    callbacks.should_stop = run.should_stop
    if run.progress is not None:
        callbacks.progress = run.progress
    callbacks.on_epoch = pruning(bench.db, run.job_id, callbacks.on_epoch)
    return callbacks


def _fetch(bench: Workbench, dataset: str) -> None:
    if bench.download_datasets:
        fetch_if_missing(dataset, bench.data_dir)


def train_classifier(bench: Workbench, run: Run) -> dict[str, Any]:
    """Cross-entropy training, on every GPU of the worker when the job asks for `all`."""
    processes = devices.data_parallel_size(run.spec.device)
    if processes > 1:
        return distributed.launch(
            run.job_id,
            processes=processes,
            db=bench.db,
            store=bench.store,
            data_dir=bench.data_dir,
            should_stop=run.should_stop,
        )
    return fit_job(bench, run.job_id, run.spec, run.device, _recording(bench, run))


def train_regression(bench: Workbench, run: Run) -> dict[str, Any]:
    """Squared-loss training of a net, or of attention pooling (worker/regression.py)."""
    return fit_regression(
        run.spec, device=run.device, data_dir=bench.data_dir, callbacks=_recording(bench, run)
    )


#: The trainer for each dataset task.
TRAINERS: dict[str, Engine] = {
    "classification": train_classifier,
    "regression": train_regression,
}


def train(bench: Workbench, run: Run) -> dict[str, Any]:
    _fetch(bench, run.spec.dataset.name)
    task = get_dataset(run.spec.dataset.name, root=bench.data_dir).task
    return TRAINERS[task](bench, run)


def kfold(bench: Workbench, run: Run) -> dict[str, Any]:
    _fetch(bench, run.spec.dataset.name)
    return cross_validate(
        run.spec,
        device=run.device,
        data_dir=bench.data_dir,
        callbacks=_recording(bench, run),
        plan=bench.data_plan,
    )


def predict(bench: Workbench, run: Run) -> dict[str, Any]:
    """Predict a dataset split with the model resolved at submission, as the job's owner sees
    it."""
    spec = run.spec
    _fetch(bench, spec.dataset.name)
    with bench.db.sessions() as session:
        owners_view = scope_to_job_owner(session, job_id=run.job_id)
        checkpoint = registry.get_model_row(owners_view, model_id=str(spec.model_id)).checkpoint
        path, sha256 = checkpoint.path, checkpoint.sha256
    payload = bench.store.load_checkpoint(path, sha256=sha256)
    return run_predictions(
        run.job_id,
        spec,
        payload,
        device=run.device,
        store=bench.store,
        data_dir=bench.data_dir,
        should_stop=run.should_stop,
        progress=run.progress,
    )


ENGINES: dict[str, Engine] = {"train": train, "kfold": kfold, "predict": predict}
