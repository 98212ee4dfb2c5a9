"""The options a job may give an architecture, typed and bounded.

Each builder's keyword options (and their type hints) are the source; this module adds the
bounds a network needs before anything is allocated (a hidden layer of 10^9 units is refused
here, not by a worker's out-of-memory error). The same models validate `model.config` and give
the JSON Schema that POST /v1/jobs and GET /v1/architectures publish, so the OpenAPI document
says exactly which options each architecture takes and within which ranges.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    create_model,
)

import models
from core.bodies import whole
from models.layers import ACTIVATIONS

MAX_LAYERS = 16  # hidden layers of an MLP, blocks of a VGG
MAX_WIDTH = 16_384  # units of a hidden layer, output channels of a conv block
MAX_CONVS = 8  # 3x3 convolutions in one VGG block
MAX_INPUT_SIZE = 1024  # side of an image input, or features of a row

Width = Annotated[int, Strict(), Field(ge=1, le=MAX_WIDTH), BeforeValidator(whole)]
Convs = Annotated[int, Strict(), Field(ge=1, le=MAX_CONVS), BeforeValidator(whole)]
Probability = Annotated[float, Strict(), Field(ge=0.0, lt=1.0)]
Activation = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]
# Options whose builder hint is too loose to bound an allocation, by option name.
BOUNDED: dict[str, Any] = {
    "hidden_sizes": Annotated[list[Width], Field(max_length=MAX_LAYERS)],
    "conv_arch": Annotated[list[tuple[Convs, Width]], Field(min_length=1, max_length=MAX_LAYERS)],
}


def bounded(option: str, hint: Any) -> Any:
    """The type an option's value must have: the builder's hint, with bounds."""
    if option in BOUNDED:
        return BOUNDED[option]
    if option == "dropout":  # a probability, or (MLP) one per hidden layer
        if any(typing.get_origin(arg) is Sequence for arg in typing.get_args(hint)):
            return Probability | Annotated[list[Probability], Field(max_length=MAX_LAYERS)]
        return Probability
    if hint is str and option == "activation":
        return Activation
    if hint in (bool, int, float):
        return Annotated[hint, Strict()]
    return hint


@cache
def config_model(arch: str) -> type[BaseModel]:
    """A pydantic model of `arch`'s options (every one optional: the builder has defaults)."""
    architecture = models.get_architecture(arch)
    hints = typing.get_type_hints(architecture.builder)
    fields: dict[str, Any] = {
        option: (bounded(option, hints.get(option, Any)), default)
        for option, default in architecture.options.items()
    }
    return create_model(  # type: ignore[call-overload,no-any-return]
        f"{arch}_config", __config__=ConfigDict(extra="forbid", frozen=True), **fields
    )


def check_options(arch: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options as JSON (`64.0` units read as 64), or ValueError naming each option that is
    unknown, of the wrong type or out of bounds."""
    unknown = sorted(set(options) - set(models.get_architecture(arch).options))
    if unknown:
        allowed = ", ".join(sorted(models.get_architecture(arch).options)) or "none"
        raise ValueError(
            f"{arch} takes no option(s) {', '.join(unknown)}; its options are: {allowed}"
        )
    try:
        checked = config_model(arch).model_validate(options)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise ValueError(f"{arch} config: {problems}") from None
    return checked.model_dump(mode="json", exclude_unset=True)


def option_schema(arch: str) -> dict[str, Any]:
    """JSON Schema of an architecture's options."""
    schema: dict[str, Any] = config_model(arch).model_json_schema()
    return schema


def model_spec_variants() -> list[dict[str, Any]]:
    """One JSON Schema per architecture for `{arch, config, input_size}`: the config that arch
    takes, and the input sizes it works with."""
    variants = []
    for name in models.list_models():
        arch = models.get_architecture(name)
        config = option_schema(name)
        config.pop("title", None)
        variants.append(
            {
                "title": name,
                "type": "object",
                "additionalProperties": False,
                "required": ["arch"],
                "properties": {
                    "arch": {"const": name, "type": "string"},
                    "config": {**config, "description": "The builder's options."},
                    "input_size": {
                        "anyOf": [
                            {
                                "type": "integer",
                                "minimum": arch.min_input_size,
                                "maximum": arch.max_input_size or MAX_INPUT_SIZE,
                            },
                            {"type": "null"},
                        ],
                        "description": "Side the inputs are resized to (features of a row for "
                        f"a tabular dataset); default {arch.default_input_size}.",
                    },
                },
            }
        )
    return variants
