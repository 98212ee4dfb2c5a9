"""An experiment at a glance: its jobs by status, the best run, and its runs side by side.

Which runs are best is decided by one metric: a top-level number of the job's result
(`test_acc`, `val_acc`, `test_loss`) or, failing that, its last epoch's `split_name` metric.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, get_args

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import NotFoundError
from core.experiments.schemas import BestRun, Comparison, ExperimentSummary, Goal, RunRow
from core.jobs.metrics import LAYER_SPLIT, MetricKey
from core.jobs.schemas import JobStatus
from core.jobs.views import request_summary
from core.registry.queries import model_ids_for_jobs
from core.tables import Experiment, Job, Metric, utcnow

LOWER_IS_BETTER = ("loss", "error", "mse")
SETTINGS = ("kind", "model", "dataset", "hyperparameters", "kfold", "finetune")


def list_experiments(session: Session) -> Sequence[tuple[Experiment, int]]:
    """Every experiment with its number of jobs."""
    query = (
        select(Experiment, func.count(Job.id))
        .outerjoin(Job, Job.experiment_id == Experiment.id)
        .group_by(Experiment.id)
        .order_by(Experiment.name)
    )
    return [(experiment, count) for experiment, count in session.execute(query).all()]


def goal_for(metric: str, goal: Goal | None) -> Goal:
    """Losses and errors are minimised, everything else (accuracies) maximised, unless told."""
    if goal is not None:
        return goal
    return "min" if metric.endswith(LOWER_IS_BETTER) else "max"


def get_experiment(session: Session, *, name: str) -> Experiment:
    """The experiment called `name`, or NotFoundError."""
    experiment = session.scalar(select(Experiment).where(Experiment.name == name))
    if experiment is None:
        raise NotFoundError(f"no experiment called {name!r}")
    return experiment


def status_counts(session: Session, *, experiment_id: int) -> dict[str, int]:
    """How many of the experiment's jobs are in each status (every status listed)."""
    counts = dict.fromkeys(get_args(JobStatus), 0)
    rows = session.execute(
        select(Job.status, func.count())
        .where(Job.experiment_id == experiment_id)
        .group_by(Job.status)
    )
    counts.update({status: count for status, count in rows})
    return counts


def experiment_jobs(session: Session, *, experiment_id: int, limit: int) -> Sequence[Job]:
    """The experiment's newest `limit` jobs."""
    query = (
        select(Job)
        .where(Job.experiment_id == experiment_id)
        .order_by(Job.created_at.desc(), Job.id)
        .limit(limit)
    )
    return session.scalars(query).unique().all()


def final_metrics(session: Session, *, job_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    """job id -> its last epoch's summary metrics (`train_loss`, `val_acc`...), in one query.

    k-fold fold curves (`c0/f1/val`) and per-layer norms are left out: what is final for a run
    is the net it kept, trained on untagged splits."""
    summary = (Metric.split != LAYER_SPLIT) & ~Metric.split.contains("/")
    last = (
        select(Metric.job_id, func.max(Metric.epoch).label("epoch"))
        .where(Metric.job_id.in_(job_ids), summary)
        .group_by(Metric.job_id)
        .subquery()
    )
    rows = session.execute(
        select(Metric.job_id, Metric.split, Metric.name, Metric.value)
        .join(last, (Metric.job_id == last.c.job_id) & (Metric.epoch == last.c.epoch))
        .where(summary)
    )
    finals: dict[str, dict[str, float]] = defaultdict(dict)
    for job_id, split, name, value in rows:
        finals[job_id][MetricKey(split, name).flat] = value
    return finals


def metric_value(job: Job, final: dict[str, float], metric: str) -> float | None:
    """The run's `metric`: the result's own number where it has one, else the last epoch's."""
    recorded = (job.result or {}).get(metric)
    if isinstance(recorded, int | float) and not isinstance(recorded, bool):
        return float(recorded)
    return final.get(metric)


def wall_time_s(job: Job) -> float | None:
    """Training time: start to finish, or start to now while it runs."""
    if job.started_at is None:
        return None
    end = job.finished_at or utcnow()
    return round((end - job.started_at).total_seconds(), 3)


def ranked(values: dict[str, float | None], goal: Goal) -> dict[str, int]:
    """job id -> rank (1 = best) among the runs that have a value."""
    present = [(job_id, value) for job_id, value in values.items() if value is not None]
    present.sort(key=lambda item: item[1] if goal == "min" else -item[1])  # type: ignore[operator]
    return {job_id: rank for rank, (job_id, _) in enumerate(present, start=1)}


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay whole values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def settings_of(params: dict[str, Any]) -> dict[str, Any]:
    """A job's request as dotted paths (`hyperparameters.lr`, `model.config.activation`)."""
    return flatten({key: params.get(key) for key in SETTINGS})


def varying_settings(params: Sequence[dict[str, Any]]) -> list[str]:
    """Dotted paths of the settings whose values are not the same in every run."""
    flats = [settings_of(p) for p in params]
    paths = sorted({path for flat in flats for path in flat})
    return [path for path in paths if len({repr(flat.get(path)) for flat in flats}) > 1]


def experiment_summary(
    session: Session, *, name: str, metric: str, goal: Goal | None, limit: int
) -> ExperimentSummary:
    """Status counts and the best succeeded run (of the newest `limit`) by `metric`."""
    experiment = get_experiment(session, name=name)
    MetricKey.parse(metric)  # refuses what is not split_name
    goal = goal_for(metric, goal)
    counts = status_counts(session, experiment_id=experiment.id)
    jobs = [
        job
        for job in experiment_jobs(session, experiment_id=experiment.id, limit=limit)
        if job.status == "succeeded"
    ]
    finals = final_metrics(session, job_ids=[job.id for job in jobs])
    values = {job.id: metric_value(job, finals.get(job.id, {}), metric) for job in jobs}
    ranks = ranked(values, goal)
    best = next((job for job in jobs if ranks.get(job.id) == 1), None)
    return ExperimentSummary(
        name=experiment.name,
        created_at=experiment.created_at,
        jobs=sum(counts.values()),
        status_counts=counts,
        metric=metric,
        goal=goal,
        best=None
        if best is None
        else BestRun(
            job_id=best.id,
            value=values[best.id],  # type: ignore[arg-type]
            arch=request_summary(best.params).arch,
            model_id=model_ids_for_jobs(session, job_ids=[best.id]).get(best.id),
            finished_at=best.finished_at,
        ),
    )


def gap(final: dict[str, float]) -> dict[str, float]:
    """How much better the net does on what it trained on than on held-out data."""
    gaps = {}
    if "train_acc" in final and "val_acc" in final:
        gaps["acc"] = final["train_acc"] - final["val_acc"]
    if "train_loss" in final and "val_loss" in final:
        gaps["loss"] = final["val_loss"] - final["train_loss"]
    return gaps


def compare(
    session: Session, *, name: str, metric: str, goal: Goal | None, limit: int
) -> Comparison:
    """The newest `limit` runs side by side, best `metric` first, runs without it last."""
    experiment = get_experiment(session, name=name)
    MetricKey.parse(metric)  # refuses what is not split_name
    goal = goal_for(metric, goal)
    jobs = experiment_jobs(session, experiment_id=experiment.id, limit=limit)
    job_ids = [job.id for job in jobs]
    finals = final_metrics(session, job_ids=job_ids)
    models = model_ids_for_jobs(session, job_ids=job_ids)
    values = {job.id: metric_value(job, finals.get(job.id, {}), metric) for job in jobs}
    ranks = ranked(values, goal)
    varying = varying_settings([job.params for job in jobs])
    rows = [
        run_row(job, finals.get(job.id, {}), values[job.id], ranks.get(job.id), varying, models)
        for job in jobs
    ]
    rows.sort(key=lambda row: row.rank or len(rows) + 1)  # stable: unranked stay newest first
    return Comparison(
        experiment=experiment.name, metric=metric, goal=goal, varying=varying, runs=rows
    )


def run_row(
    job: Job,
    final: dict[str, float],
    value: float | None,
    rank: int | None,
    varying: list[str],
    models: dict[str, str],
) -> RunRow:
    result = job.result or {}
    flat = flatten(
        {key: job.params.get(key) for key in ("kind", "model", "dataset", "hyperparameters")}
    )
    parameters = result.get("parameters")
    summary = request_summary(job.params)
    return RunRow(
        job_id=job.id,
        status=job.status,
        kind=job.kind,
        arch=summary.arch,
        dataset=summary.dataset,
        value=value,
        rank=rank,
        settings={path: flat.get(path) for path in varying},
        hyperparameters=summary.hyperparameters,
        config=summary.config,
        final=final,
        test={
            key: float(value)
            for key, value in result.items()
            if key.startswith("test_") and isinstance(value, int | float)
        },
        gap=gap(final),
        parameters=parameters if isinstance(parameters, int) else None,
        epochs=job.epoch,
        wall_time_s=wall_time_s(job),
        model_id=models.get(job.id),
    )
