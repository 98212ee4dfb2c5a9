"""Integers as JSON Schema counts them, in request bodies validated strictly.

Request bodies are strict (`false` is no integer, `"5"` no number), but JSON has one kind of
number: `30.0` is an integer to JSON Schema (and so to every client generated from the OpenAPI
document), so an integer field takes a number with no fraction too.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field


def whole(value: Any) -> Any:
    """`30.0` as 30; anything else as it is (for the strict check after)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Constraints go inside (`Annotated[int, Field(ge=1), ...]`), before this validator, so the
# JSON Schema keeps them as `minimum`/`maximum`.
Int = Annotated[int, BeforeValidator(whole)]


def int_between(low: int, high: int) -> Any:
    """`Int` within [low, high], for a field that may also be null (`int_between(1, 9) | None`:
    a bound given to the field itself would not reach the JSON Schema there)."""
    return Annotated[int, Field(ge=low, le=high), BeforeValidator(whole)]
