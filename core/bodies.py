"""What a request body is: frozen, strict, and its integers as JSON Schema counts them.

Request bodies are strict (`false` is no integer, `"5"` no number), but JSON has one kind of
number: `30.0` is an integer to JSON Schema (and so to every client generated from the OpenAPI
document), so an integer field takes a number with no fraction too.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo


def whole(value: Any) -> Any:
    """`30.0` as 30; anything else as it is (for the strict check after)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# A field bounds it with `Field(ge=..., le=...)`. Where the field may also be null, the bounds go
# inside, before the validator (`Annotated[int, Field(ge=1), BeforeValidator(whole)] | None`):
# after it, the JSON Schema would lose them.
Int = Annotated[int, BeforeValidator(whole)]


class Frozen(BaseModel):
    """A request body: immutable, no unknown fields, and strict types (`false` is not 0, nor
    `"5"` 5), as its JSON Schema says."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


#: Validation context of a body loaded from its job row: it was checked against the registries
#: when it was accepted, and is taken as it was stored (an architecture or recipe renamed since,
#: or a meta net that costs seconds to build, must not make an old job unreadable or slow).
STORED: dict[str, Any] = {"stored": True}


def is_stored(info: ValidationInfo) -> bool:
    """Whether this validation loads a stored body (skip the checks against the registries)."""
    return bool(info.context and info.context.get("stored"))
