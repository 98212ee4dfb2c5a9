"""Experiments: named groups of jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import SessionDep, SessionRoute
from api.params import ExperimentName, MetricName
from core.experiments import queries as experiments
from core.experiments.schemas import Comparison, ExperimentOut, ExperimentSummary, Goal

router = APIRouter(prefix="/v1/experiments", tags=["experiments"], route_class=SessionRoute)


@router.get("", summary="Every experiment with its number of jobs")
def list_experiments(session: SessionDep) -> list[ExperimentOut]:
    return [
        ExperimentOut(name=experiment.name, created_at=experiment.created_at, jobs=count)
        for experiment, count in experiments.list_experiments(session)
    ]


GoalQuery = Annotated[
    Goal | None, Query(description="max or min; default: min for losses/errors, else max")
]
RunsQuery = Annotated[int, Query(ge=1, le=500, description="How many of the newest runs")]


@router.get("/{name}", summary="An experiment's jobs by status and its best run by a metric")
def get_experiment(
    name: ExperimentName,
    session: SessionDep,
    metric: MetricName = "val_acc",
    goal: GoalQuery = None,
    limit: RunsQuery = 500,
) -> ExperimentSummary:
    return experiments.experiment_summary(session, name=name, metric=metric, goal=goal, limit=limit)


@router.get(
    "/{name}/compare",
    summary="Runs side by side: settings that differ, final metrics, train-val gap, "
    "parameters, wall time; best first",
)
def compare_runs(
    name: ExperimentName,
    session: SessionDep,
    metric: MetricName = "val_acc",
    goal: GoalQuery = None,
    limit: RunsQuery = 100,
) -> Comparison:
    return experiments.compare(session, name=name, metric=metric, goal=goal, limit=limit)
