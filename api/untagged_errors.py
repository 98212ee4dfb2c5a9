"""422s without the union's tag: POST /v1/jobs takes a union of bodies (core/jobs/kinds/:
`JobSubmission`, one body per kind), and its validation errors keep the field paths they had
before the union, without the union member's tag."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError

from api.json_body import StrictJsonRoute
from core.jobs.kinds import SUBMISSION_TAGS


def untagged(error: dict[str, Any]) -> dict[str, Any]:
    """`("body", "JobCreate", "model", "arch")` -> `("body", "model", "arch")`."""
    loc = tuple(error.get("loc", ()))
    if len(loc) > 1 and loc[0] == "body" and loc[1] in SUBMISSION_TAGS:
        return {**error, "loc": (loc[0], *loc[2:])}
    return error


class UntaggedErrorsRoute(StrictJsonRoute):
    """A strict-JSON route whose request validation errors drop the union tag from their
    locations."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                errors = [untagged(item) for item in error.errors()]
                raise RequestValidationError(errors, body=error.body) from None

        return handle
