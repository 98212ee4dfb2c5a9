"""Liveness and readiness probes for process managers and load balancers."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


class Readiness(BaseModel):
    """What GET /readyz found: "ok", or what is wrong, for each thing the service needs."""

    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(description="database, broker, artifacts: ok or why not")


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    # async: it answers from the event loop even while every thread is busy.
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database and the broker answer, and the artifact store is there",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Something it needs is not there"}},
)
def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with request.app.state.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001  (any failure means not ready)
        log.warning("readiness: database unreachable: %s", error)
        checks["database"] = f"unreachable: {type(error).__name__}"
    try:
        request.app.state.job_queue.check()
        checks["broker"] = "ok"
    except Exception as error:  # noqa: BLE001
        log.warning("readiness: broker unreachable: %s", error)
        checks["broker"] = f"unreachable: {type(error).__name__}"
    try:
        request.app.state.serving.store.check()
        checks["artifacts"] = "ok"
    except Exception as error:  # noqa: BLE001
        log.warning("readiness: artifact store unusable: %s", error)
        checks["artifacts"] = f"unusable: {error}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        status_code=200 if ready else 503,
        content={"status": "ready" if ready else "not ready", "checks": checks},
    )
