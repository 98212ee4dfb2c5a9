"""Network in Network as the course builds it (ch. 8.3 of d2l.ai, "Network in Network (NiN)")."""

from __future__ import annotations

from torch import nn

from models.layers import check_probability, check_side, output_side
from models.registry import register_model

#: Smallest side that survives the 11x11/4 stem and three 3x3/2 max-pools (a 1x1 final map).
NIN_MIN_INPUT_SIZE = 67


def nin_block(
    in_channels: int, out_channels: int, *, kernel_size: int, stride: int, padding: int
) -> nn.Sequential:
    """One spatial conv then two 1x1 convs, each with ReLU: a per-pixel MLP over channels."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1),
        nn.ReLU(),
    )


def nin_feature_side(input_size: int) -> int:
    """Side before the last NiN block: 224 -> 54 -> 26 -> 12 -> 5."""
    side = output_side(input_size, kernel_size=11, stride=4)
    for _ in range(3):
        side = output_side(side, kernel_size=3, stride=2)
    return side


@register_model("nin", chapter="8.3", default_input_size=224, min_input_size=NIN_MIN_INPUT_SIZE)
def nin(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 224,
    dropout: float = 0.5,
) -> nn.Module:
    """NiN (ch. 8.3 Network in Network; Lin, Chen & Yan 2013): no dense layers at all.

    AlexNet's conv shapes as NiN blocks; the last block has one channel per class and a global
    average pool turns each channel into a logit. As in the course, that last block ends in a
    ReLU (so logits are >= 0: one reason the course reports its training as unstable). Any
    side from 67 works; the net itself does not depend on `input_size`.
    """
    check_side(
        "nin",
        side=nin_feature_side(input_size),
        input_size=input_size,
        min_input_size=NIN_MIN_INPUT_SIZE,
    )
    p = check_probability("dropout", dropout)
    return nn.Sequential(
        nin_block(in_channels, 96, kernel_size=11, stride=4, padding=0),
        nn.MaxPool2d(3, stride=2),
        nin_block(96, 256, kernel_size=5, stride=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        nin_block(256, 384, kernel_size=3, stride=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(p),
        nin_block(384, num_classes, kernel_size=3, stride=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
    )
