"""Each init scheme gives the weight statistics it promises (ch. 5.4)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from models import INIT_SCHEMES, get_model, init_weights

FAN_IN, FAN_OUT = 1000, 600
CONV_IN, CONV_OUT, KERNEL = 64, 128, 3


def layers() -> nn.Sequential:
    """A large dense layer and a large conv, nested one level to check `apply` reaches down."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(FAN_IN, FAN_OUT),
        nn.Sequential(nn.Conv2d(CONV_IN, CONV_OUT, KERNEL), nn.BatchNorm2d(CONV_OUT)),
    )


def fans(layer: nn.Linear | nn.Conv2d) -> tuple[int, int]:
    if isinstance(layer, nn.Linear):
        return FAN_IN, FAN_OUT
    return CONV_IN * KERNEL * KERNEL, CONV_OUT * KERNEL * KERNEL


def weight_layers(net: nn.Module) -> list[nn.Linear | nn.Conv2d]:
    return [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def biases(net: nn.Module) -> list[torch.Tensor]:
    found = [layer.bias for layer in weight_layers(net) if layer.bias is not None]
    assert len(found) == len(weight_layers(net))
    return found


def test_the_scheme_names() -> None:
    assert INIT_SCHEMES == (
        "default",
        "xavier_uniform",
        "xavier_normal",
        "kaiming_uniform",
        "kaiming_normal",
        "normal",
        "constant",
    )


def test_xavier_uniform_stays_within_its_bound() -> None:
    net = init_weights(layers(), "xavier_uniform")
    for layer in weight_layers(net):
        fan_in, fan_out = fans(layer)
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.95 * bound  # and fills it


def test_kaiming_uniform_stays_within_its_bound() -> None:
    net = init_weights(layers(), "kaiming_uniform")
    for layer in weight_layers(net):
        bound = math.sqrt(6 / fans(layer)[0])
        assert 0.95 * bound < layer.weight.abs().max() <= bound


@pytest.mark.parametrize(
    ("scheme", "expected_std"),
    [
        ("xavier_normal", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out))),
        ("kaiming_normal", lambda fan_in, fan_out: math.sqrt(2 / fan_in)),
        ("normal", lambda fan_in, fan_out: 0.05),
    ],
)
def test_normal_schemes_have_their_std(
    scheme: str, expected_std: Callable[[int, int], float]
) -> None:
    net = init_weights(layers(), scheme, std=0.05)
    for layer in weight_layers(net):
        std = expected_std(*fans(layer))
        assert layer.weight.std().item() == pytest.approx(std, rel=0.03)
        assert abs(layer.weight.mean().item()) < 0.05 * std


def test_constant_makes_every_weight_equal() -> None:
    net = init_weights(layers(), "constant", value=0.25)
    for layer in weight_layers(net):
        assert torch.all(layer.weight == 0.25)


@pytest.mark.parametrize("scheme", [s for s in INIT_SCHEMES if s != "default"])
def test_schemes_zero_the_biases_and_leave_batchnorm(scheme: str) -> None:
    net = init_weights(layers(), scheme)
    assert all(torch.all(bias == 0) for bias in biases(net))
    batchnorm = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert torch.all(batchnorm.weight == 1) and torch.all(batchnorm.bias == 0)


def test_zero_bias_false_keeps_pytorchs_biases() -> None:
    net = layers()
    before = [bias.clone() for bias in biases(net)]
    init_weights(net, "xavier_uniform", zero_bias=False)
    for bias, old in zip(biases(net), before, strict=True):
        assert torch.equal(bias, old)


def test_default_changes_nothing() -> None:
    net = layers()
    before = {key: value.clone() for key, value in net.state_dict().items()}
    assert init_weights(net, "default") is net
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])


def test_schemes_reach_into_nested_blocks() -> None:
    net = init_weights(get_model("resnet18", in_channels=1, num_classes=10), "constant", value=0.5)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20  # stem, 16 in residual blocks, three 1x1 shortcuts
    assert all(torch.all(conv.weight == 0.5) for conv in convs)


def test_unknown_scheme_lists_the_schemes() -> None:
    with pytest.raises(ValueError, match="xavier_uniform"):
        init_weights(layers(), "glorot")
