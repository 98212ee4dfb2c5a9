"""`GET /v1/jobs/{id}/logs`: what the worker logged about a job (see core.jobs.logs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from api.deps import SessionDep, SessionRoute, SettingsDep
from api.params import JobId
from core.jobs import queries
from core.jobs.logs import read_job_log

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=SessionRoute)


@router.get(
    "/{job_id}/logs",
    summary="What the worker logged while running the job (plain text)",
    response_class=PlainTextResponse,
)
def job_logs(
    request: Request,
    job_id: JobId,
    session: SessionDep,
    settings: SettingsDep,
    tail: Annotated[
        int | None, Query(ge=1, le=100_000, description="Only the last N lines")
    ] = None,
) -> PlainTextResponse:
    """Empty until a worker starts the job; grows while it runs."""
    queries.get_job(session, job_id=job_id)
    store = request.app.state.serving.store  # workers elsewhere copy their logs there
    text = read_job_log(settings.artifacts, job_id, tail=tail, store=store)
    return PlainTextResponse(text)
