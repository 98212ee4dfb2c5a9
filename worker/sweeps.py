"""Hyperparameter sweeps' new trials: `ask_values` draws a trial's values from the study that
core/jobs/sweep_study.py rebuilds from the trial rows (the database is its only storage, so any
worker can take any step), and `TrialPruned` is how a trial the pruner stopped ends. The
controller step that uses them, and the per-epoch pruning check, are in worker/sweep_control.py.
"""

from __future__ import annotations

from typing import Any, Protocol

import optuna

from core.jobs.sweep_schemas import Range, SweepSettings
from worker.training_state import JobCancelled


class SweepQueue(Protocol):
    """What the controller needs of core.queue.JobQueue (tests pass stand-ins)."""

    def enqueue(
        self,
        job_id: str,
        *,
        queue: str,
        time_limit_s: float | None = None,
        priority: str = "normal",
    ) -> None: ...

    def enqueue_sweep_step(self, sweep_id: str, *, queue: str) -> None: ...


class TrialPruned(JobCancelled):
    """The sweep's pruner stopped this trial after an epoch (it ends `cancelled`, result
    `{"pruned": true, "at_epoch": n}`)."""

    def __init__(self, *, epoch: int, value: float, rule: str) -> None:
        super().__init__(f"pruned by the sweep's {rule} pruner after epoch {epoch} ({value:.4g})")
        self.epoch = epoch
        self.value = value
        self.rule = rule


def ask_values(study: optuna.Study, settings: SweepSettings) -> dict[str, Any]:
    """A new trial's values, decoded from Optuna's (choice indices to the choices)."""
    trial = study.ask()
    values: dict[str, Any] = {}
    for path, spec in settings.space.items():
        encoded = (
            trial.suggest_categorical(path, list(range(len(spec))))
            if isinstance(spec, list)
            else _suggest_range(trial, path, spec)
        )
        values[path] = spec[int(encoded)] if isinstance(spec, list) else encoded
    return values


def _suggest_range(trial: optuna.Trial, path: str, spec: Range) -> float | int:
    if spec.is_int:
        return trial.suggest_int(path, int(spec.low), int(spec.high), log=spec.log)
    return trial.suggest_float(path, float(spec.low), float(spec.high), log=spec.log)
