"""Multilayer perceptrons: ch. 5.1-5.2 (MLP) and ch. 5.6 (dropout) of the course."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

from torch import nn

from models import scratch
from models.layers import ACTIVATIONS, check_choice, check_probability, make_activation
from models.registry import register_model

DropoutImpl = Literal["torch", "scratch"]


def _hidden_sizes(hidden_sizes: Sequence[int]) -> list[int]:
    """Accept a tuple or a JSON list of positive widths; `()` leaves a linear (softmax) model."""
    if isinstance(hidden_sizes, (str, bytes)) or not isinstance(hidden_sizes, Sequence):
        raise ValueError(f"hidden_sizes must be a list of ints, got {hidden_sizes!r}")
    sizes = list(hidden_sizes)
    if not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in sizes):
        raise ValueError(f"hidden_sizes must be positive ints, got {hidden_sizes!r}")
    return sizes


def _dropouts(dropout: float | Sequence[float], num_hidden: int) -> list[float]:
    """One probability per hidden layer: a single float applies to all of them."""
    if isinstance(dropout, (int, float)) and not isinstance(dropout, bool):
        return [check_probability("dropout", dropout)] * num_hidden
    if isinstance(dropout, Sequence) and not isinstance(dropout, (str, bytes)):
        if len(dropout) != num_hidden:
            raise ValueError(
                f"dropout lists one probability per hidden layer: expected {num_hidden}, "
                f"got {len(dropout)}"
            )
        return [check_probability("dropout", p) for p in dropout]
    raise ValueError(f"dropout must be a float or a list of floats, got {dropout!r}")


def _dropout_layer(p: float, impl: DropoutImpl) -> nn.Module:
    return scratch.Dropout(p) if impl == "scratch" else nn.Dropout(p)


@register_model(
    "mlp", chapter="5.1", default_input_size=28, min_input_size=1, also_for=("regression",)
)
def mlp(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 28,
    hidden_sizes: Sequence[int] = (256,),
    activation: str = "relu",
    dropout: float | Sequence[float] = 0.0,
    dropout_impl: DropoutImpl = "torch",
    flat_features: bool = False,
    bias: bool = True,
) -> nn.Module:
    """MLP (ch. 5.1 Multilayer Perceptrons, 5.6 Dropout; Rumelhart 1986, Srivastava et al. 2014).

    Input: images (N, C, H, W) are flattened to `in_channels * input_size**2` features. For
    tabular data (N, F) pass `flat_features=True` and `input_size=F`; `in_channels` is then
    ignored. Each hidden layer is Linear -> activation -> Dropout (the Dropout only when its
    probability is above 0). Layers are named (`hidden1`, `activation1`, `dropout1`, ...,
    `output`) so that the `state_dict` keys do not depend on which dropouts are present.
    `hidden_sizes=()` gives the linear (softmax-regression) model of ch. 4; with `bias=False`
    (every Linear layer without its bias) it is the ch. 3.6 polynomial model, whose constant
    term is the weight of the feature x^0 = 1.
    """
    sizes = _hidden_sizes(hidden_sizes)
    probabilities = _dropouts(dropout, len(sizes))
    check_choice("activation", activation, tuple(ACTIVATIONS))
    check_choice("dropout_impl", dropout_impl, ("torch", "scratch"))
    features = input_size if flat_features else in_channels * input_size * input_size
    layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    for index, (width, p) in enumerate(zip(sizes, probabilities, strict=True), start=1):
        layers[f"hidden{index}"] = nn.Linear(features, width, bias=bias)
        layers[f"activation{index}"] = make_activation(activation)
        if p > 0.0:
            layers[f"dropout{index}"] = _dropout_layer(p, dropout_impl)
        features = width
    layers["output"] = nn.Linear(features, num_classes, bias=bias)
    return nn.Sequential(layers)
