"""`GET /v1/jobs/{job_id}/sweep-plots`: a sweep seen through Optuna's own plots, as Plotly JSON
(the web page draws them with the plotly.js the API serves)."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from api.deps import CpuDep, DatabaseWorkDep
from api.errors import rules
from api.params import JobId
from core.jobs.sweep_plots import SweepPlots, read_study, sweep_plots

router = APIRouter(tags=["jobs"])


@router.get(
    "/v1/jobs/{job_id}/sweep-plots",
    summary="A sweep's optimisation history, parallel coordinates and per-epoch values "
    "(Optuna's plots, as Plotly figures)",
    responses=rules("the job is a sweep (kind sweep)"),
)
async def get_sweep_plots(job_id: JobId, database: DatabaseWorkDep, cpu: CpuDep) -> SweepPlots:
    metric, direction, study = await database(partial(read_study, job_id=job_id))
    return await cpu.run(sweep_plots, job_id, metric, direction, study)
