"""Integers as JSON Schema counts them, in request bodies validated strictly.

Request bodies are strict (`false` is no integer, `"5"` no number), but JSON has one kind of
number: `30.0` is an integer to JSON Schema (and so to every client generated from the OpenAPI
document), so an integer field takes a number with no fraction too.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator


def whole(value: Any) -> Any:
    """`30.0` as 30; anything else as it is (for the strict check after)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A field bounds it with `Field(ge=..., le=...)`. Where the field may also be null, the bounds go
# inside, before the validator (`Annotated[int, Field(ge=1), BeforeValidator(whole)] | None`):
# after it, the JSON Schema would lose them.
Int = Annotated[int, BeforeValidator(whole)]
