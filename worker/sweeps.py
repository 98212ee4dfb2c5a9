"""Hyperparameter sweeps' study: Optuna's view of a sweep, rebuilt from the trial rows each time.

The database is the study's only storage, so any worker can take any step: `rebuild_study` makes
an in-memory study from the trial rows (their params, final metric and per-epoch values, as
Optuna's frozen trials with their pruning rungs), `ask_values` draws a new trial's values from it,
and `make_sampler` / `make_pruner` turn a sweep's settings into Optuna's. The controller step that
uses them, and the per-epoch pruning check, are in worker/sweep_control.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState, create_trial

from core.jobs import sweep_queries
from core.jobs.sweep_queries import Series
from core.jobs.sweep_schemas import Range, SweepSettings
from core.tables import ACTIVE_STATUSES, Job
from worker.training_state import JobCancelled

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per asked trial


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


# Building the study from rows


def distribution(spec: list[Any] | Range) -> BaseDistribution:
    """Choices are sampled by index (Optuna's categoricals take only scalars; ours may be
    lists, such as hidden sizes)."""
    if isinstance(spec, list):
        return CategoricalDistribution(list(range(len(spec))))
    if spec.is_int:
        return IntDistribution(int(spec.low), int(spec.high), log=spec.log)
    return FloatDistribution(float(spec.low), float(spec.high), log=spec.log)


def encoded_params(trial: Job, settings: SweepSettings) -> dict[str, Any] | None:
    """The trial's values as Optuna holds them (choice indices), None if they do not fit."""
    params: dict[str, Any] = {}
    for path, value in sweep_queries.trial_values(trial, settings).items():
        spec = settings.space[path]
        if isinstance(spec, list):
            matches = [index for index, choice in enumerate(spec) if choice == value]
            if not matches:
                return None
            params[path] = matches[0]
        elif isinstance(value, int | float) and spec.low <= value <= spec.high:
            params[path] = int(value) if spec.is_int else float(value)
        else:
            return None
    return params


def rung_attrs(series: Series, settings: SweepSettings, *, before: int | None = None) -> dict:
    """ASHA's record of the rungs a trial completed (Optuna keeps it in system attrs): the
    value at each rung's epoch, while the trial reached it (before epoch `before`)."""
    attrs: dict[str, float] = {}
    rung, step = 0, settings.prune_min_epochs
    while step in series and (before is None or step < before):
        attrs[f"completed_rung_{rung}"] = series[step]
        rung, step = rung + 1, step * settings.reduction_factor
    return attrs


def frozen_trial(
    trial: Job, series: Series, settings: SweepSettings, *, with_params: bool
) -> optuna.trial.FrozenTrial:
    """One trial row as Optuna's record: state, params, final value, per-epoch values."""
    params = encoded_params(trial, settings) if with_params else {}
    value = sweep_queries.final_value(series)
    if sweep_queries.is_pruned(trial):
        state = TrialState.PRUNED
    elif trial.status in ACTIVE_STATUSES:
        state = TrialState.RUNNING
    elif trial.status == "succeeded" and value is not None:
        state = TrialState.COMPLETE
    else:
        state = TrialState.FAIL
    if params is None:  # values outside today's space: still counted, as a failed trial
        params, state = {}, TrialState.FAIL
    distributions = {path: distribution(settings.space[path]) for path in params}
    return create_trial(
        state=state,
        value=value if state == TrialState.COMPLETE else None,
        params=params,
        distributions=distributions,
        intermediate_values=series,
        system_attrs=rung_attrs(series, settings) if settings.prune == "asha" else {},
    )


def make_sampler(settings: SweepSettings, *, done: int) -> optuna.samplers.BaseSampler:
    """Grid: Optuna gives the n-th new trial the n-th point of the seeded, shuffled grid.
    Random: the seed moves on with each trial already made, so a rebuilt study does not draw
    the same values again."""
    if settings.search == "grid":
        grid = {
            path: list(range(len(spec)))
            for path, spec in settings.space.items()
            if isinstance(spec, list)  # a grid's space holds only choices
        }
        return optuna.samplers.GridSampler(grid, seed=settings.seed)
    return optuna.samplers.RandomSampler(seed=settings.seed + done)


def make_pruner(settings: SweepSettings) -> optuna.pruners.BasePruner:
    if settings.prune == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=settings.prune_startup_trials,
            n_warmup_steps=settings.prune_min_epochs,
        )
    if settings.prune == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=settings.prune_min_epochs,
            reduction_factor=settings.reduction_factor,
        )
    return optuna.pruners.NopPruner()


def rebuild_study(
    settings: SweepSettings,
    trials: Sequence[Job],
    series: dict[str, Series],
    *,
    with_params: bool = True,
) -> optuna.Study:
    """An in-memory study holding every trial row, oldest first."""
    study = optuna.create_study(
        direction="maximize" if settings.maximize else "minimize",
        sampler=make_sampler(settings, done=len(trials)),
        pruner=make_pruner(settings),
    )
    for trial in trials:
        study.add_trial(
            frozen_trial(trial, series.get(trial.id, {}), settings, with_params=with_params)
        )
    return study


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
