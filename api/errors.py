"""One place that turns the service's errors into HTTP answers that say what to fix."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from core.errors import ServiceError


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
        409: "Conflicts with the resource's state (e.g. deleting what is in use)",
        413: "Over a size limit: the body, or the owner's storage quota "
        "(D2L_STORAGE_QUOTA_BYTES; delete uploads to free it)",
        422: "Invalid input; `detail` says what to fix",
        429: "Too many jobs submitted or queued by this owner; retry after `Retry-After` s",
        503: "A service it needs (the broker) is unreachable, or every database connection is "
        "busy; retry after `Retry-After` s",
    }
    return {code: {"model": ErrorOut, "description": text} for code, text in reasons.items()}


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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, service_error_handler)
    app.add_exception_handler(PoolTimeoutError, database_busy_handler)


def json_error_schemas(app: FastAPI) -> None:
    """Document every error answer as the JSON it is, also on routes whose success is a PNG,
    plain text or an event stream (FastAPI would give their errors that media type)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        error = {"schema": {"$ref": "#/components/schemas/ErrorOut"}}
        for operations in schema["paths"].values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    if code[0] in "45":
                        response["content"] = {"application/json": error}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
