"""Learning curves as pictures: a job's (the course's train loss / train acc / val acc chart),
a k-fold job's folds with their mean, and an experiment's runs overlaid."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

import torch
from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import OwnerDep
from api.deps import CpuDep, DatabaseWorkDep, ServingDep, SettingsDep
from api.errors import rules
from api.openapi import binary_content
from api.params import ExperimentName, JobId, MetricItem, ModelRef
from api.serving import Serving
from core.errors import InvalidInputError, NotFoundError
from core.experiments.plots import Curve, curves_png, heatmap_png
from core.jobs import queries
from core.jobs.kinds import get_kind, load_stored
from core.jobs.metrics import MetricKey, MetricPoint, read_metrics
from core.jobs.views import request_summary
from core.tables import Job

router = APIRouter(tags=["curves"])
PNG = binary_content("image/png", "A PNG chart")
MAX_RUNS = 20


def job_chart(job: Job, points: list[MetricPoint]) -> bytes:
    """A job's chart, as its kind's card draws it (a k-fold job: its folds and their mean)."""
    chart = get_kind(job.kind).chart(load_stored(job.params), job.status, points)
    return curves_png(
        chart.curves,
        title=chart.title,
        ylabel=chart.ylabel,
        emphasis=chart.emphasis,
        faint=chart.faint,
    )


def job_and_metrics(session: Session, *, job_id: str) -> tuple[Job, list[MetricPoint]]:
    """The job and the rows its chart draws (not its per-layer diagnostics)."""
    job = queries.get_job(session, job_id=job_id)
    names = get_kind(job.kind).chart_metrics()
    return job, read_metrics(session, job_id=job_id, names=names)


@router.get(
    "/v1/jobs/{job_id}/curves.png",
    summary="A job's learning curves",
    response_class=Response,
    responses=PNG,
)
async def job_curves(job_id: JobId, database: DatabaseWorkDep, cpu: CpuDep) -> Response:
    job, points = await database(partial(job_and_metrics, job_id=job_id))
    png = await cpu.run(job_chart, job, points)
    return Response(content=png, media_type="image/png")


def experiment_runs(
    session: Session, *, name: str, metrics: list[str]
) -> list[tuple[str, list[MetricPoint]]]:
    """(run label, its rows of `metrics`) of the experiment's newest MAX_RUNS jobs: one query
    per run, however many metrics are asked for."""
    jobs, total = queries.list_jobs(session, experiment=name, status=None, limit=MAX_RUNS, offset=0)
    if not total:
        raise NotFoundError(f"experiment {name!r} has no jobs")
    return [
        (
            f"{job.id[:8]} {summary.recipe or summary.arch}",
            read_metrics(session, job_id=job.id, names=metrics),
        )
        for job in jobs
        for summary in [request_summary(job.params)]
    ]


def runs_chart(
    runs: list[tuple[str, list[MetricPoint]]], *, name: str, metrics: list[str], yscale: str
) -> bytes:
    curves: dict[str, Curve] = {}
    for run, points in runs:
        for metric in metrics:
            line = [(point.epoch, point.value) for point in points if point.key.flat == metric]
            if line:
                curves[run if len(metrics) == 1 else f"{run} {metric}"] = line
    if not curves:
        raise NotFoundError(f"no run of {name!r} recorded {', '.join(metrics)}")
    ylabel = ", ".join(metrics)
    return curves_png(curves, title=f"{name}: {ylabel}", ylabel=ylabel, yscale=yscale)


@router.get(
    "/v1/experiments/{name}/curves.png",
    summary="Metrics of every run of an experiment, overlaid",
    response_class=Response,
    description="Repeat `metric` to overlay several (e.g. `metric=train_loss&metric=test_loss`, "
    "the course's under/overfitting chart of the polynomial recipes, with `yscale=log`); at "
    "most D2L_QUERY_MAX_VALUES.",
    responses={**PNG, **rules("at most D2L_QUERY_MAX_VALUES distinct metrics")},
)
async def experiment_curves(
    name: ExperimentName,
    database: DatabaseWorkDep,
    cpu: CpuDep,
    settings: SettingsDep,
    metric: Annotated[list[MetricItem], Query()] = ["val_acc"],  # noqa: B006 (FastAPI copies it)
    yscale: Literal["linear", "log"] = "linear",
) -> Response:
    metrics = list(dict.fromkeys(metric))  # each once, in the order asked
    if len(metrics) > settings.query_max_values:
        raise InvalidInputError(
            f"metric: at most {settings.query_max_values} metrics per chart "
            f"(D2L_QUERY_MAX_VALUES); got {len(metrics)}"
        )
    for item in metrics:
        MetricKey.parse(item)  # refuses what is not split_name
    runs = await database(partial(experiment_runs, name=name, metrics=metrics))
    png = await cpu.run(runs_chart, runs, name=name, metrics=metrics, yscale=yscale)
    return Response(content=png, media_type="image/png")


ATTENTION_QUERIES = [i / 10 for i in range(50)]  # the course's test inputs 0, 0.1, ..., 4.9


def attention_matrix(serving: Serving, model_id: str, owner: str | None) -> list[list[float]]:
    """Attention weights of the course's test queries over the model's training keys."""
    loaded = serving.get(model_id, owner)
    if loaded.memory is None:
        raise InvalidInputError(f"model {model_id} is not an attention-pooling model")
    keys, values = loaded.memory
    with torch.inference_mode():
        loaded.net(torch.tensor(ATTENTION_QUERIES, device=keys.device), keys, values)
    weights: list[list[float]] = loaded.net.attention_weights.cpu().tolist()  # type: ignore[union-attr,operator]
    return weights


@router.get(
    "/v1/models/{model_id}/attention.png",
    summary="Nadaraya-Watson attention weights, test queries x training keys (ch. 11.2)",
    response_class=Response,
    responses=PNG,
)
async def attention_heatmap(
    model_id: ModelRef, serving: ServingDep, owner: OwnerDep, cpu: CpuDep
) -> Response:
    matrix = await run_in_threadpool(attention_matrix, serving, model_id, owner)
    png = await cpu.run(
        heatmap_png,
        matrix,
        title="attention weights",
        xlabel="sorted training inputs (keys)",
        ylabel="test inputs (queries)",
    )
    return Response(content=png, media_type="image/png")
