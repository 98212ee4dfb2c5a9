"""Small pieces the families share, so that each family file holds only its own architecture.

The course builds its nets with Lazy layers; the service needs explicit sizes (a checkpoint must
load into a freshly built net before any forward pass), so the families compute their dense-layer
sizes from the input side with `output_side`, and refuse sides that would collapse to nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

#: The activations a user may name; the value is the layer class.
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def check_choice(option: str, value: str, choices: Sequence[str]) -> str:
    """Refuse a string option outside its choices, naming them (the API shows this message)."""
    if value not in choices:
        raise ValueError(f"{option} must be one of {', '.join(choices)}; got {value!r}")
    return value


def make_activation(name: str, allowed: Sequence[str] = tuple(ACTIVATIONS)) -> nn.Module:
    """A fresh activation layer; `allowed` narrows the choice for families the course fixes."""
    return ACTIVATIONS[check_choice("activation", name, allowed)]()


def output_side(side: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Side of a conv or pooling output (PyTorch's floor rule), as in the course's ch. 7.3."""
    return (side + 2 * padding - kernel_size) // stride + 1


def check_side(name: str, *, side: int, input_size: int, min_input_size: int) -> None:
    """Refuse an input whose feature map vanished, naming the smallest size that works.

    Builders call this themselves so that a net built without the registry's check (a test, a
    notebook) fails with the same clear message instead of a shape error deep in a forward pass.
    """
    if side < 1:
        raise ValueError(
            f"{name} needs an input size of at least {min_input_size}, got {input_size}"
        )


def check_probability(name: str, value: float) -> float:
    """A dropout probability must lie in [0, 1); 1 would zero every activation."""
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return float(value)
