"""AlexNet as the course builds it (ch. 8.1 of d2l.ai, "Deep Convolutional Neural Networks")."""

from __future__ import annotations

from torch import nn

from models.layers import check_probability, check_side, output_side
from models.registry import register_model

#: Smallest side whose feature map survives the stride-4 stem and three 3x3/2 max-pools (1x1).
ALEXNET_MIN_INPUT_SIZE = 65


def alexnet_feature_side(input_size: int) -> int:
    """Side of the last pooled feature map: 224 -> 54 -> 26 -> 12 -> 5 (the book's printout)."""
    side = output_side(input_size, kernel_size=11, stride=4, padding=1)
    for _ in range(3):  # the three max-pools; the 5x5 and 3x3 convs are padded to keep the side
        side = output_side(side, kernel_size=3, stride=2)
    return side


@register_model(
    "alexnet", chapter="8.1", default_input_size=224, min_input_size=ALEXNET_MIN_INPUT_SIZE
)
def alexnet(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 224,
    dropout: float = 0.5,
) -> nn.Module:
    """AlexNet (ch. 8.1 Deep CNNs (AlexNet); Krizhevsky, Sutskever & Hinton 2012).

    The course's single-GPU AlexNet, layer for layer: 11x11/4 stem, five ReLU convs, three
    max-pools, two 4096-wide dense layers with dropout. The dense input is computed from
    `input_size`, so any side from 65 (a 1x1 final map) works. We do not shrink the stem or add
    adaptive pooling for smaller inputs: that would no longer be the course's net. Small images
    (28x28 Fashion-MNIST, 8x8 digits) are resized up, as the course resizes to 224.
    """
    side = alexnet_feature_side(input_size)
    check_side("alexnet", side=side, input_size=input_size, min_input_size=ALEXNET_MIN_INPUT_SIZE)
    p = check_probability("dropout", dropout)
    return nn.Sequential(
        nn.Conv2d(in_channels, 96, kernel_size=11, stride=4, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(96, 256, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(256, 384, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 384, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Flatten(),
        nn.Linear(256 * side * side, 4096),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(4096, num_classes),
    )
