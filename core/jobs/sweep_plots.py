"""A sweep drawn by Optuna's own plots (optimisation history, parallel coordinates, each trial's
per-epoch values), as Plotly figures in JSON for the web page to draw: GET
/v1/jobs/{id}/sweep-plots.

The study is the one the worker asks trials of (core/jobs/sweep_study.py), rebuilt from the trial
rows with its choices named (`[256, 128]`, not `1`) so the axes read as the sweep's space.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import optuna
from optuna import visualization
from optuna.trial import TrialState
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from core.errors import InvalidInputError
from core.jobs import queries, sweep_queries
from core.jobs.sweep_study import rebuild_study


class SweepPlots(BaseModel):
    job_id: str
    metric: str
    direction: str
    trials: int = Field(description="Trials the sweep has made so far.")
    complete: int = Field(description="Trials that finished with a value of the metric.")
    plots: dict[str, dict[str, Any]] = Field(
        description="Plotly figures by name (optimization_history, parallel_coordinate, "
        "intermediate_values), each {data, layout}: `Plotly.newPlot(div, data, layout)`."
    )


def read_study(session: Session, *, job_id: str) -> tuple[str, str, optuna.Study]:
    """(the metric, its direction, the sweep's study with named choices); 422 for a job that
    is not a sweep."""
    job = queries.get_job(session, job_id=job_id)
    if not job.params.get("sweep"):
        raise InvalidInputError(
            f"job {job_id} is a {job.kind} job, not a sweep: only a sweep has sweep plots"
        )
    settings = sweep_queries.sweep_settings(job)
    trials = sweep_queries.list_trials(session, sweep_id=job.id)
    series = sweep_queries.metric_series(
        session, job_ids=[trial.id for trial in trials], key=settings.metric_key
    )
    direction = "maximize" if settings.maximize else "minimize"
    return settings.metric, direction, rebuild_study(settings, trials, series, labels=True)


def figure_json(figure: Any) -> dict[str, Any]:
    """A Plotly figure as plain JSON (Plotly's own encoder: numpy arrays, dates)."""
    return json.loads(figure.to_json())  # type: ignore[no-any-return]


def sweep_plots(job_id: str, metric: str, direction: str, study: optuna.Study) -> SweepPlots:
    """Optuna's plots of the study: CPU work (seconds for a thousand trials), run off the loop."""
    states = [trial.state for trial in study.trials]
    with warnings.catch_warnings():  # "no completed trials" and experimental-API notices
        warnings.simplefilter("ignore")
        plots = {
            "optimization_history": visualization.plot_optimization_history(
                study, target_name=metric
            ),
            "parallel_coordinate": visualization.plot_parallel_coordinate(
                study, target_name=metric
            ),
            "intermediate_values": visualization.plot_intermediate_values(study),
        }
    return SweepPlots(
        job_id=job_id,
        metric=metric,
        direction=direction,
        trials=len(states),
        complete=states.count(TrialState.COMPLETE),
        plots={name: figure_json(figure) for name, figure in plots.items()},
    )
