"""FLOPs, bytes and the layer table: counted by PyTorch, checked against hand counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import (
    count_parameters,
    forward_flops,
    get_architecture,
    get_model,
    layer_table,
    weight_bytes,
)
from tests.models.zoo import classification_names


def meta_model(name: str, input_size: int) -> nn.Module:
    with torch.device("meta"):
        return get_model(name, in_channels=1, num_classes=10, input_size=input_size)


@pytest.mark.parametrize("name", classification_names())
def test_flops_are_positive_and_grow_with_the_batch(name: str) -> None:
    side = get_architecture(name).min_input_size
    net = meta_model(name, side)
    one = forward_flops(net, (1, 1, side, side))
    assert one > 0
    assert forward_flops(net, (3, 1, side, side)) == 3 * one


def test_lenet_flops_equal_twice_the_multiply_adds() -> None:
    # (output elements, multiply-adds per element) of each conv and dense layer at 28x28.
    layers = [
        (6 * 28 * 28, 1 * 5 * 5),  # conv 5x5, padding 2
        (16 * 10 * 10, 6 * 5 * 5),  # conv 5x5 on the pooled 14x14
        (120, 16 * 5 * 5),
        (84, 120),
        (10, 84),
    ]
    expected = sum(2 * outputs * macs for outputs, macs in layers)
    assert forward_flops(meta_model("lenet", 28), (1, 1, 28, 28)) == expected == 833_040


@pytest.mark.parametrize("name", ["nin", "googlenet", "resnet18"])
def test_fully_convolutional_flops_scale_with_the_area(name: str) -> None:
    side = get_architecture(name).default_input_size
    net = meta_model(name, side)
    ratio = forward_flops(net, (1, 1, 2 * side, 2 * side)) / forward_flops(net, (1, 1, side, side))
    assert 3.6 < ratio < 4.4


def test_measuring_leaves_the_net_alone() -> None:
    net = get_model("lenet_bn", in_channels=1, num_classes=10)
    layers = list(net.children())
    net.train()
    layers[2].eval()  # a mixed state must come back as it was
    before = {key: value.clone() for key, value in net.state_dict().items()}
    forward_flops(net, (1, 1, 28, 28))
    layer_table(net, (1, 1, 28, 28))
    assert net.training and not layers[2].training and layers[1].training
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("name", classification_names())
def test_layer_table_accounts_for_every_parameter(name: str) -> None:
    side = get_architecture(name).min_input_size
    net = meta_model(name, side)
    rows = layer_table(net, (1, 1, side, side))
    assert sum(row["parameters"] for row in rows) == count_parameters(net)
    assert rows[-1]["output_shape"] == (1, 10)
    assert set(rows[0]) == {"name", "type", "output_shape", "parameters"}


def test_weight_bytes_count_parameters_and_buffers() -> None:
    net = get_model("lenet_bn", in_channels=1, num_classes=10)

    def buffer_bytes() -> int:
        return sum(b.numel() * b.element_size() for b in net.buffers())

    assert buffer_bytes() > 0  # running statistics are saved with the weights
    assert weight_bytes(net) == 4 * count_parameters(net) + buffer_bytes()
    net.half()
    assert weight_bytes(net) == 2 * count_parameters(net) + buffer_bytes()
