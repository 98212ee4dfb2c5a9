"""Learning curves as pictures: a job's (the course's train loss / train acc / val acc chart),
a k-fold job's folds with their mean, and an experiment's runs overlaid."""

from __future__ import annotations

from collections import defaultdict
from statistics import fmean
from typing import Annotated, Any, Literal

import torch
from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from api.auth import OwnerDep
from api.deps import ServingDep, SessionDep
from api.params import ExperimentName, JobId, MetricItem, ModelRef
from api.serving import Serving
from core import queries
from core.errors import InvalidInputError, NotFoundError
from core.plots import Curve, curves_png, heatmap_png
from core.schemas import job_arch

router = APIRouter(tags=["curves"])
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}}}
COURSE_CURVES = (("train", "loss"), ("train", "acc"), ("val", "acc"))
MAX_RUNS = 20


def split_metric(metric: str) -> tuple[str, str]:
    split, _, name = metric.partition("_")
    if not name:
        raise InvalidInputError(f"metric must look like split_name, e.g. val_acc; got {metric!r}")
    return split, name


def fold_curves(rows: list, name: str) -> tuple[dict[str, Curve], str]:  # type: ignore[type-arg]
    """Held-out curves of each fold of the first candidate that has them, plus their mean."""
    by_fold: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        parts = row.split.split("/")
        if len(parts) == 3 and parts[0] == "c0" and parts[2] == "val" and row.name == name:
            by_fold[f"fold {parts[1][1:]}"].append((row.epoch, row.value))
    epochs = sorted({epoch for points in by_fold.values() for epoch, _ in points})
    mean = [
        (e, fmean(v for points in by_fold.values() for ep, v in points if ep == e)) for e in epochs
    ]
    return {**dict(sorted(by_fold.items())), "mean": mean}, f"val {name}"


@router.get("/v1/jobs/{job_id}/curves.png", summary="A job's learning curves", responses=PNG)
async def job_curves(job_id: JobId, session: SessionDep) -> Response:
    job = queries.get_job(session, job_id=job_id)
    rows = list(queries.list_metrics(session, job_id=job_id))
    if job.kind == "kfold":
        name = "acc" if any(r.name == "acc" for r in rows) else "loss"
        curves, ylabel = fold_curves(rows, name)
        title = f"{job.params['model']['arch']} k-fold: first candidate's folds"
        png = await run_in_threadpool(
            curves_png,
            curves,
            title=title,
            ylabel=ylabel,
            emphasis=["mean"],
            faint=[label for label in curves if label != "mean"],
        )
    else:
        curves = {
            f"{split} {name}": [
                (r.epoch, r.value) for r in rows if (r.split, r.name) == (split, name)
            ]
            for split, name in COURSE_CURVES
        }
        curves = {label: points for label, points in curves.items() if points}
        title = f"{job_arch(job.params)} on {job.params['dataset']['name']} ({job.status})"
        png = await run_in_threadpool(curves_png, curves, title=title)
    return Response(content=png, media_type="image/png")


@router.get(
    "/v1/experiments/{name}/curves.png",
    summary="Metrics of every run of an experiment, overlaid",
    description="Repeat `metric` to overlay several (e.g. `metric=train_loss&metric=test_loss`, "
    "the course's under/overfitting chart of the polynomial recipes, with `yscale=log`).",
    responses=PNG,
)
async def experiment_curves(
    name: ExperimentName,
    session: SessionDep,
    metric: Annotated[list[MetricItem], Query(max_length=MAX_RUNS)] = ["val_acc"],  # noqa: B006
    yscale: Literal["linear", "log"] = "linear",
) -> Response:
    wanted = [split_metric(item) for item in metric]
    jobs, total = queries.list_jobs(session, experiment=name, status=None, limit=MAX_RUNS, offset=0)
    if not total:
        raise NotFoundError(f"experiment {name!r} has no jobs")
    curves: dict[str, Curve] = {}
    for job in jobs:
        run = f"{job.id[:8]} {job.params.get('recipe') or job_arch(job.params)}"
        for split, metric_name in wanted:
            rows = queries.list_metrics(session, job_id=job.id, name=metric_name)
            points = [(row.epoch, row.value) for row in rows if row.split == split]
            if points:
                curves[run if len(wanted) == 1 else f"{run} {split}_{metric_name}"] = points
    if not curves:
        raise NotFoundError(f"no run of {name!r} recorded {', '.join(metric)}")
    ylabel = ", ".join(metric)
    png = await run_in_threadpool(
        curves_png, curves, title=f"{name}: {ylabel}", ylabel=ylabel, yscale=yscale
    )
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
    responses=PNG,
)
async def attention_heatmap(model_id: ModelRef, serving: ServingDep, owner: OwnerDep) -> Response:
    matrix = await run_in_threadpool(attention_matrix, serving, model_id, owner)
    png = await run_in_threadpool(
        heatmap_png,
        matrix,
        title="attention weights",
        xlabel="sorted training inputs (keys)",
        ylabel="test inputs (queries)",
    )
    return Response(content=png, media_type="image/png")
