"""One place that turns the service's errors into HTTP answers that say what to fix."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from core.errors import ServiceError
from core.names import PATTERN_HELP

GENERIC_422 = "Invalid input; `detail` says what to fix"
HTTP_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


class ErrorOut(BaseModel):
    """Every error answer: what went wrong and what to do instead. Request validation errors
    (422) list each field that is wrong instead of one sentence."""

    detail: str | list[dict[str, Any]] = Field(description="What to fix.")


def documented_errors() -> dict[int | str, dict[str, Any]]:
    """The error answers any operation may give (OpenAPI `responses` for the whole app)."""
    reasons = {
        400: "Malformed request",
        401: "Authentication needed (D2L_AUTH=on): send `Authorization: Bearer <token>`",
        404: "No such job, model, dataset or other resource",
        405: "The path exists, but not with this method; `Allow` lists those it has",
        409: "Conflicts with the resource's state (e.g. deleting what is in use)",
        413: "Over a size limit: the body, or the owner's storage quota "
        "(D2L_STORAGE_QUOTA_BYTES; delete uploads to free it)",
        422: GENERIC_422,
        429: "Too many jobs submitted or queued by this owner; retry after `Retry-After` s",
        503: "A service it needs (the broker) is unreachable, or every database connection is "
        "busy; retry after `Retry-After` s",
    }
    return {code: {"model": ErrorOut, "description": text} for code, text in reasons.items()}


def rules(*rules: str) -> dict[int | str, dict[str, Any]]:
    """An operation's 422: the rules beyond its schema (across fields, or about stored things)
    that can refuse a request the schema accepts."""
    text = "Refused by a rule the schema cannot express: " + "; ".join(rules)
    return {422: {"model": ErrorOut, "description": text}}


def json_safe(value: Any) -> Any:
    """`value` as JSON can carry it: a non-finite float as its name, bytes as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


async def service_error_handler(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    return JSONResponse(
        status_code=error.status_code, content={"detail": str(error)}, headers=error.headers()
    )


async def database_busy_handler(request: Request, error: Exception) -> JSONResponse:
    """No pooled connection came free within D2L_DB_POOL_TIMEOUT_S: a moment's overload."""
    return JSONResponse(
        status_code=503,
        content={"detail": "every database connection of this API process is busy; retry soon"},
        headers={"Retry-After": "1"},
    )


def explained(error: dict[str, Any]) -> dict[str, Any]:
    """A pattern mismatch also says, in words, what the pattern is for."""
    pattern = (error.get("ctx") or {}).get("pattern")
    if error.get("type") != "string_pattern_mismatch" or pattern not in PATTERN_HELP:
        return error
    return {**error, "msg": f"{error['msg']}: {PATTERN_HELP[pattern]}"}


async def validation_error_handler(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422, but never a 500 when the offending input is not JSON (NaN, or a body of
    bytes that are not UTF-8, sent as text/plain)."""
    assert isinstance(error, RequestValidationError)
    detail = jsonable_encoder(json_safe([explained(item) for item in error.errors()]))
    return JSONResponse(status_code=422, content={"detail": detail})


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path (Starlette names only the first
    matching route's, and FastAPI makes one route per method): each method is matched as if
    the request had used it."""
    routes = request.app.router.routes
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


async def http_error_handler(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 405:
        allow = ", ".join(allowed_methods(request))
        return JSONResponse(
            status_code=405, content={"detail": error.detail}, headers={"Allow": allow}
        )
    return await http_exception_handler(request, error)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, service_error_handler)
    app.add_exception_handler(PoolTimeoutError, database_busy_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(HTTPException, http_error_handler)
