"""What the API shows of the model zoo: option schemas, layer tables, sizes and FLOPs.

Nets are built on the meta device here, so inspecting VGG-11 at 224x224 allocates no weights.
"""

from __future__ import annotations

import json
from typing import Any

import torch

import models
from core.datasets import UnknownDatasetError, get_dataset
from core.errors import InvalidInputError
from core.registry.model_options import check_options, option_schema
from models.complexity import count_parameters, forward_flops, layer_table, weight_bytes


def summary(name: str) -> dict[str, Any]:
    """One architecture as GET /v1/architectures lists it."""
    arch = models.get_architecture(name)
    return {
        "name": arch.name,
        "description": arch.description,
        "chapter": arch.chapter,
        "task": arch.task,
        "default_input_size": arch.default_input_size,
        "min_input_size": arch.min_input_size,
        "max_input_size": arch.max_input_size,
        "options": option_schema(name),
    }


def parse_options(raw: dict[str, str]) -> dict[str, Any]:
    """Query-string options: JSON where it parses (numbers, lists, booleans), else strings."""
    options: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def input_shape(
    name: str, *, in_channels: int, input_size: int, options: dict[str, Any]
) -> tuple[int, ...]:
    """The shape of one network input (batch of 1) for this architecture and options."""
    if options.get("flat_features"):
        return (1, input_size)
    return (1, in_channels, input_size, input_size)


def inspect_architecture(
    name: str, *, dataset: str, input_size: int | None, options: dict[str, Any]
) -> dict[str, Any]:
    """The concrete net for a dataset: layer table, parameters, weight bytes, forward FLOPs."""
    arch = models.get_architecture(name)
    try:
        info = get_dataset(dataset)
    except UnknownDatasetError as error:
        raise InvalidInputError(str(error)) from None
    size = input_size or arch.default_input_size
    with torch.device("meta"):
        try:
            check_options(name, options)
            net_shape = models.NetShape(info.in_channels, info.num_classes, size)
            net = models.build_net(name, options, net_shape)
        except (models.InvalidModelConfigError, TypeError, ValueError) as error:
            raise InvalidInputError(str(error)) from error
    result: dict[str, Any] = {
        **summary(name),
        "dataset": dataset,
        "input_size": size,
        "config": options,
        "parameters": count_parameters(net),
        "weight_bytes": weight_bytes(net),
    }
    if arch.task == "classification":
        shape = input_shape(name, in_channels=info.in_channels, input_size=size, options=options)
        result["input_shape"] = list(shape)
        result["flops"] = forward_flops(net, shape)
        result["layers"] = layer_table(net, shape)
    else:  # attention pooling takes (queries, keys, values), not an image
        result["input_shape"], result["flops"], result["layers"] = None, None, []
    return result
