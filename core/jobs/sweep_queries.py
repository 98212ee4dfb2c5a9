"""Reads and writes of sweeps and their trials (a trial is a job whose `parent_id` is the sweep).

Both the API (cancel) and the worker (the sweep's controller, a trial's pruning check) use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.jobs import queries
from core.jobs.schemas import FINISHED_STATUSES
from core.jobs.sweep_schemas import SweepSettings, read_path
from core.tables import ACTIVE_STATUSES, Job, Metric

Series = dict[int, float]  # epoch -> value


def list_trials(session: Session, *, sweep_id: str) -> Sequence[Job]:
    """A sweep's trials in the order they were created."""
    query = select(Job).where(Job.parent_id == sweep_id).order_by(Job.created_at, Job.id)
    return session.scalars(query).unique().all()


def metric_series(
    session: Session, *, job_ids: Sequence[str], key: tuple[str, str]
) -> dict[str, Series]:
    """Each job's per-epoch values of one metric (split, name), e.g. ("val", "acc")."""
    series: dict[str, Series] = {job_id: {} for job_id in job_ids}
    if not job_ids:
        return series
    split, name = key
    rows = session.execute(
        select(Metric.job_id, Metric.epoch, Metric.value).where(
            Metric.job_id.in_(job_ids), Metric.split == split, Metric.name == name
        )
    )
    for job_id, epoch, value in rows:
        series[job_id][epoch] = value
    return series


def is_pruned(trial: Job) -> bool:
    return trial.status == "cancelled" and bool((trial.result or {}).get("pruned"))


def trial_values(trial: Job, settings: SweepSettings) -> dict[str, Any]:
    """The values this trial was given, read back from its own request."""
    return {path: read_path(trial.params, path) for path in settings.space}


def final_value(series: Series) -> float | None:
    """A trial's score: the metric at its last recorded epoch."""
    return series[max(series)] if series else None


def sweep_result(
    trials: Sequence[Job], series: dict[str, Series], settings: SweepSettings
) -> dict[str, Any]:
    """What a sweep's result says: every trial, and the best succeeded one by the metric."""
    rows: list[dict[str, Any]] = []
    for number, trial in enumerate(trials):
        value = final_value(series.get(trial.id, {}))
        rows.append(
            {
                "number": number,
                "job_id": trial.id,
                "status": "pruned" if is_pruned(trial) else trial.status,
                "params": trial_values(trial, settings),
                "value": value,
                "epochs": trial.epoch,
            }
        )
    scored = [row for row in rows if row["status"] == "succeeded" and row["value"] is not None]
    sign = 1.0 if settings.maximize else -1.0
    best = max(scored, key=lambda row: sign * row["value"], default=None)
    return {
        "metric": settings.metric,
        "direction": "maximize" if settings.maximize else "minimize",
        "best_trial": best["job_id"] if best else None,
        "best_value": best["value"] if best else None,
        "best_params": best["params"] if best else None,
        "trials": rows,
    }


def sweep_settings(sweep: Job) -> SweepSettings:
    return SweepSettings.model_validate(sweep.params["sweep"])


def cancel_sweep(session: Session, *, sweep: Job) -> None:
    """The sweep ends `cancelled` at once (asking for no more trials); each of its queued
    trials is cancelled and each running one asked to stop."""
    if sweep.status in FINISHED_STATUSES:
        queries.request_cancel(session, job=sweep)  # raises ConflictError: nothing to cancel
        return
    trials = list_trials(session, sweep_id=sweep.id)
    for trial in trials:
        if trial.status in ACTIVE_STATUSES:
            queries.request_cancel(session, job=trial)
    settings = sweep_settings(sweep)
    series = metric_series(session, job_ids=[t.id for t in trials], key=settings.metric_key)
    queries.finish_job(
        session,
        job=sweep,
        status="cancelled",
        result=sweep_result(trials, series, settings),
        error=f"cancelled after {len(trials)} trial(s); its queued and running trials too",
    )
