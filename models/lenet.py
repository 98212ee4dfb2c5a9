"""LeNet as the course builds it: ch. 7.6 (LeNet-5) and ch. 8.5 (LeNet with batch normalization)."""

from __future__ import annotations

from typing import Literal

from torch import nn

from models import scratch
from models.layers import check_choice, check_side, make_activation, output_side
from models.registry import register_model

Activation = Literal["sigmoid", "relu"]
BatchNormImpl = Literal["torch", "scratch"]


def _activation(name: Activation) -> nn.Module:
    return make_activation(name, allowed=("sigmoid", "relu"))


def _pool(activation: Activation) -> nn.Module:
    # The course's LeNet averages; the "modern" variant pairs ReLU with max-pooling.
    return nn.AvgPool2d(kernel_size=2, stride=2) if activation == "sigmoid" else nn.MaxPool2d(2, 2)


@register_model("lenet", chapter="7.6", default_input_size=28, min_input_size=12)
def lenet(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 28,
    activation: Activation = "sigmoid",
) -> nn.Module:
    """LeNet-5 (ch. 7.6 LeNet; LeCun et al. 1998): two conv+pool stages and three dense layers."""
    # conv(5, pad 2) keeps the size, pool halves it, conv(5) takes 4, pool halves again.
    side = ((input_size // 2) - 4) // 2
    check_side("lenet", side=side, input_size=input_size, min_input_size=12)
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
        _activation(activation),
        _pool(activation),
        nn.Conv2d(6, 16, kernel_size=5),
        _activation(activation),
        _pool(activation),
        nn.Flatten(),
        nn.Linear(16 * side * side, 120),
        _activation(activation),
        nn.Linear(120, 84),
        _activation(activation),
        nn.Linear(84, num_classes),
    )


def _batch_norm(num_features: int, num_dims: int, impl: BatchNormImpl) -> nn.Module:
    """PyTorch's BatchNorm{1,2}d or the course's from-scratch one (ch. 8.5.3)."""
    if impl == "scratch":
        return scratch.BatchNorm(num_features, num_dims)
    return nn.BatchNorm2d(num_features) if num_dims == 4 else nn.BatchNorm1d(num_features)


@register_model("lenet_bn", chapter="8.5", default_input_size=28, min_input_size=16)
def lenet_bn(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 28,
    activation: Activation = "sigmoid",
    batchnorm: BatchNormImpl = "torch",
) -> nn.Module:
    """LeNet with batch norm (ch. 8.5 Batch Normalization; Ioffe & Szegedy 2015).

    As the course's LeNet-BN: the first conv has no padding (28 -> 24), and every conv and dense
    layer but the last is followed by BatchNorm before its activation. `batchnorm="scratch"`
    uses the book's hand-written layer (`models.scratch.BatchNorm`) to rerun its comparison.
    """
    # conv(5) takes 4, pool halves, conv(5) takes 4, pool halves: 28 -> 24 -> 12 -> 8 -> 4.
    check_choice("batchnorm", batchnorm, ("torch", "scratch"))
    side = output_side(output_side(input_size, 5) // 2, 5) // 2
    check_side("lenet_bn", side=side, input_size=input_size, min_input_size=16)
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5),
        _batch_norm(6, 4, batchnorm),
        _activation(activation),
        _pool(activation),
        nn.Conv2d(6, 16, kernel_size=5),
        _batch_norm(16, 4, batchnorm),
        _activation(activation),
        _pool(activation),
        nn.Flatten(),
        nn.Linear(16 * side * side, 120),
        _batch_norm(120, 2, batchnorm),
        _activation(activation),
        nn.Linear(120, 84),
        _batch_norm(84, 2, batchnorm),
        _activation(activation),
        nn.Linear(84, num_classes),
    )
