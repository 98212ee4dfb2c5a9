"""The one registry of networks: every part of the service builds a net through `get_model`.

Builders are keyword-only functions registered under a unique name. They all take the dataset's
`in_channels`, `num_classes` and `input_size` (side of the square input, or the feature count for
non-image nets) plus their own options, so a job's JSON config rebuilds the same net exactly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

Builder = Callable[..., nn.Module]

#: Arguments every builder takes from the dataset rather than from the user's options.
DATASET_ARGS = ("in_channels", "num_classes", "input_size")


class UnknownModelError(ValueError):
    """An architecture name that is not registered."""


class InvalidModelConfigError(ValueError):
    """Options that a builder does not take, or an input size it cannot work with."""


@dataclass(frozen=True)
class Architecture:
    """What the service knows of a registered network, besides how to build it."""

    name: str
    builder: Builder
    chapter: str
    default_input_size: int
    min_input_size: int
    max_input_size: int | None = None
    task: str = "classification"
    options: dict[str, Any] = field(default_factory=dict)
    # Every task a job may use it for: its own `task`, and e.g. regression for the MLP, whose
    # one-output linear form (`num_classes=1`) is the course's linear regression (ch. 3).
    tasks: tuple[str, ...] = ()

    def serves(self, task: str) -> bool:
        """Whether a dataset of this task (classification, regression) can train this net."""
        return task == self.task or task in self.tasks

    @property
    def description(self) -> str:
        """The builder's first docstring line, which names the course chapter."""
        return (inspect.getdoc(self.builder) or self.name).splitlines()[0]


_REGISTRY: dict[str, Architecture] = {}


def register_model(
    name: str,
    *,
    chapter: str,
    default_input_size: int,
    min_input_size: int | None = None,
    max_input_size: int | None = None,
    task: str = "classification",
    also_for: tuple[str, ...] = (),
) -> Callable[[Builder], Builder]:
    """Register a keyword-only builder under `name`; a second use of a name is a bug.

    `task` is what the net is for; `also_for` lists other tasks it serves as well."""

    def decorator(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise RuntimeError(f"architecture {name!r} is registered twice")
        signature = inspect.signature(builder)
        missing = [arg for arg in DATASET_ARGS if arg not in signature.parameters]
        if missing:
            raise RuntimeError(f"builder {name!r} must take {missing}")
        options = {
            param.name: param.default
            for param in signature.parameters.values()
            if param.name not in DATASET_ARGS
        }
        _REGISTRY[name] = Architecture(
            name=name,
            builder=builder,
            chapter=chapter,
            default_input_size=default_input_size,
            min_input_size=min_input_size if min_input_size is not None else default_input_size,
            max_input_size=max_input_size,
            task=task,
            options=options,
            tasks=(task, *also_for),
        )
        return builder

    return decorator


def list_models() -> list[str]:
    """Every registered architecture name, sorted."""
    return sorted(_REGISTRY)


def get_architecture(name: str) -> Architecture:
    """The registry entry for `name`, or an error that lists the names there are."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown architecture {name!r}; choose one of: {', '.join(list_models())}"
        ) from None


def check_config(name: str, *, input_size: int, options: dict[str, Any]) -> Architecture:
    """Refuse options the builder does not take and input sizes the net cannot work with."""
    arch = get_architecture(name)
    unknown = sorted(set(options) - set(arch.options))
    if unknown:
        allowed = ", ".join(sorted(arch.options)) or "none"
        raise InvalidModelConfigError(
            f"{name} takes no option(s) {', '.join(unknown)}; its options are: {allowed}"
        )
    if input_size < arch.min_input_size:
        raise InvalidModelConfigError(
            f"{name} needs an input size of at least {arch.min_input_size}, got {input_size}"
        )
    if arch.max_input_size is not None and input_size > arch.max_input_size:
        raise InvalidModelConfigError(
            f"{name} takes an input size of at most {arch.max_input_size}, got {input_size}"
        )
    return arch


@dataclass(frozen=True)
class NetShape:
    """The data a net is sized for: input channels (1 for rows of features), classes (1 for a
    regression target), and the side of its square input or its feature count (None: the
    architecture's default)."""

    in_channels: int
    num_classes: int
    input_size: int | None = None


def build_net(arch: str, config: dict[str, Any], shape: NetShape) -> nn.Module:
    """The one way the service makes a net: architecture, the user's options, the data's shape.
    (On the meta device it costs no memory: how sizes and options are checked.)"""
    return get_model(
        arch,
        in_channels=shape.in_channels,
        num_classes=shape.num_classes,
        input_size=shape.input_size,
        **config,
    )


def get_model(
    name: str, *, in_channels: int, num_classes: int, input_size: int | None = None, **options: Any
) -> nn.Module:
    """Build a registered network for a dataset's shape, with the user's options."""
    arch = get_architecture(name)
    size = arch.default_input_size if input_size is None else input_size
    check_config(name, input_size=size, options=options)
    try:
        return arch.builder(
            in_channels=in_channels, num_classes=num_classes, input_size=size, **options
        )
    except (TypeError, ValueError) as error:
        raise InvalidModelConfigError(f"{name}: {error}") from error
