"""A sweep's Optuna study, rebuilt from its trial rows each time it is needed.

The database is the study's only storage, so any worker can take any step and the API can draw
it: `rebuild_study` makes an in-memory study from the trial rows (their params, final metric and
per-epoch values, as Optuna's frozen trials with their pruning rungs), and `make_sampler` /
`make_pruner` turn a sweep's settings into Optuna's. The worker asks new trials of it
(worker/sweeps.py); the API draws it with Optuna's own plots (core/jobs/sweep_plots.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

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

optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per asked trial


def choice_label(choice: Any) -> str:
    """A choice as a plot names it: its JSON (`0.1`, `[256, 128]`, `"relu"`)."""
    return json.dumps(choice)


def distribution(spec: list[Any] | Range, *, labels: bool = False) -> BaseDistribution:
    """Choices are sampled by index (Optuna's categoricals take only scalars; ours may be
    lists, such as hidden sizes); with `labels`, a study for the eye names them instead."""
    if isinstance(spec, list):
        if labels:
            return CategoricalDistribution([choice_label(choice) for choice in spec])
        return CategoricalDistribution(list(range(len(spec))))
    if spec.is_int:
        return IntDistribution(int(spec.low), int(spec.high), log=spec.log)
    return FloatDistribution(float(spec.low), float(spec.high), log=spec.log)


def encoded_params(
    trial: Job, settings: SweepSettings, *, labels: bool = False
) -> dict[str, Any] | None:
    """The trial's values as Optuna holds them (choice indices, or their labels), None if they
    do not fit."""
    params: dict[str, Any] = {}
    for path, value in sweep_queries.trial_values(trial, settings).items():
        spec = settings.space[path]
        if isinstance(spec, list):
            matches = [index for index, choice in enumerate(spec) if choice == value]
            if not matches:
                return None
            params[path] = choice_label(spec[matches[0]]) if labels else matches[0]
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
    trial: Job,
    series: Series,
    settings: SweepSettings,
    *,
    with_params: bool,
    labels: bool = False,
) -> optuna.trial.FrozenTrial:
    """One trial row as Optuna's record: state, params, final value, per-epoch values."""
    params = encoded_params(trial, settings, labels=labels) if with_params else {}
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
    distributions = {path: distribution(settings.space[path], labels=labels) for path in params}
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
    labels: bool = False,
) -> optuna.Study:
    """An in-memory study holding every trial row, oldest first. With `labels`, its choices
    are named rather than numbered: a study to draw, never to ask."""
    study = optuna.create_study(
        direction="maximize" if settings.maximize else "minimize",
        sampler=make_sampler(settings, done=len(trials)),
        pruner=make_pruner(settings),
    )
    for trial in trials:
        record = frozen_trial(
            trial, series.get(trial.id, {}), settings, with_params=with_params, labels=labels
        )
        study.add_trial(record)
    return study
