"""JSON bodies as the JSON standard has them: every number finite, no NUL in any string.

Python's `json.loads` takes `NaN`, `Infinity` and `1e400` (read as infinity), none of which is
JSON: they would pass range checks that compare false, reach the database (PostgreSQL refuses
them in JSON columns, and a NUL in any text) or fail the 422 itself, whose body cannot carry
them. `StrictJsonRoute` parses a route's JSON body once and refuses such values with a 422
naming each field, before validation sees the body.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine, Iterator
from itertools import islice
from typing import Any

from fastapi import HTTPException, Request, Response

from api.deps import SessionRoute

MAX_REPORTED = 20  # a body full of NaNs gets a readable answer, not one line per value


class InvalidJsonBody(HTTPException):
    """422 with the shape of a validation error: one entry per offending field. (An
    HTTPException: FastAPI passes those through from body parsing, answering other errors 400.)"""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(status_code=422, detail=errors)


def not_json(value: Any, loc: tuple[str | int, ...]) -> Iterator[dict[str, Any]]:
    """An error for each non-finite number and each string or key holding a NUL, with its path."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            yield {
                "type": "finite_number",
                "loc": list(where),
                "msg": "Input should be a finite number (JSON has no NaN or Infinity, and "
                "1e400 is beyond a double)",
                "input": str(item),
            }
        elif isinstance(item, str) and "\x00" in item:
            yield {
                "type": "string_nul",
                "loc": list(where),
                "msg": "Strings must not contain NUL (\\u0000) characters",
            }
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                if "\x00" in key:
                    stack.append((key, (*where, key.replace("\x00", "\\u0000"))))
                stack.append((child, (*where, key)))
        elif isinstance(item, list):
            stack.extend(
                (child, (*where, index)) for index, child in reversed(list(enumerate(item)))
            )


def strict_json(body: bytes) -> Any:
    """`body` parsed, or InvalidJsonBody naming what JSON does not allow; malformed JSON raises
    json.JSONDecodeError (FastAPI's own 422)."""
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as error:  # e.g. an integer of over 4,300 digits
        raise InvalidJsonBody(
            [{"type": "json_invalid", "loc": ["body"], "msg": f"unreadable JSON: {error}"}]
        ) from None
    problems = list(islice(not_json(value, ("body",)), MAX_REPORTED))
    if problems:
        raise InvalidJsonBody(problems)
    return value


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


class StrictJsonRoute(SessionRoute):
    """A route whose JSON body goes through `strict_json` (and whose handler's session goes
    back as it returns, as on every SessionRoute)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return handle
