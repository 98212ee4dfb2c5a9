"""GoogLeNet as the course builds it (ch. 8.4 of d2l.ai, "Multi-Branch Networks (GoogLeNet)")."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from models.registry import register_model

#: Inception arguments (c1, (c2a, c2b), (c3a, c3b), c4).
InceptionSpec = tuple[int, tuple[int, int], tuple[int, int], int]

#: The Inception blocks of stages b3, b4 and b5, as in the book.
STAGES: tuple[tuple[InceptionSpec, ...], ...] = (
    ((64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)),
    (
        (192, (96, 208), (16, 48), 64),
        (160, (112, 224), (24, 64), 64),
        (128, (128, 256), (24, 64), 64),
        (112, (144, 288), (32, 64), 64),
        (256, (160, 320), (32, 128), 128),
    ),
    ((256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)),
)


class Inception(nn.Module):
    """Four parallel paths (1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max-pool then 1x1), concatenated.

    Every path keeps the side, so the block only changes the number of channels, to
    `out_channels = c1 + c2[1] + c3[1] + c4`.
    """

    def __init__(
        self, in_channels: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int
    ) -> None:
        super().__init__()
        self.b1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.b2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.b2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.b3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, inputs: Tensor) -> Tensor:
        """Run the four paths on the same input and stack their channels."""
        b1 = F.relu(self.b1_1(inputs))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(inputs))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(inputs))))
        b4 = F.relu(self.b4_2(self.b4_1(inputs)))
        return torch.cat((b1, b2, b3, b4), dim=1)


def _pool() -> nn.MaxPool2d:
    # 3x3/2 with padding 1 halves the side rounding up, so no input side is too small.
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


def _inception_stage(
    in_channels: int, specs: tuple[InceptionSpec, ...], *, last: bool
) -> tuple[nn.Sequential, int]:
    """Inception blocks, then a halving pool, or the global average pool after the last stage."""
    blocks: list[nn.Module] = []
    for c1, c2, c3, c4 in specs:
        block = Inception(in_channels, c1, c2, c3, c4)
        blocks.append(block)
        in_channels = block.out_channels
    if last:
        blocks += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()]
    else:
        blocks.append(_pool())
    return nn.Sequential(*blocks), in_channels


@register_model("googlenet", chapter="8.4", default_input_size=96, min_input_size=1)
def googlenet(*, in_channels: int = 1, num_classes: int = 10, input_size: int = 96) -> nn.Module:
    """GoogLeNet (ch. 8.4 Multi-Branch Networks (GoogLeNet); Szegedy et al. 2015).

    The course's version: stem b1 (7x7/2 conv, pool), b2 (1x1 and 3x3 convs, pool), nine
    Inception blocks in b3-b5, global average pool, one dense layer; 96x96 input as in the
    course's run. Every conv and pool is padded and rounds up, and the head pools globally, so
    any side works (min 1); below 32 the last stages see 1x1 maps. `input_size` is not needed.
    """
    b1 = nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3), nn.ReLU(), _pool()
    )
    b2 = nn.Sequential(
        nn.Conv2d(64, 64, kernel_size=1),
        nn.ReLU(),
        nn.Conv2d(64, 192, kernel_size=3, padding=1),
        nn.ReLU(),
        _pool(),
    )
    stages: list[nn.Module] = [b1, b2]
    channels = 192
    for index, specs in enumerate(STAGES):
        stage, channels = _inception_stage(channels, specs, last=index == len(STAGES) - 1)
        stages.append(stage)
    return nn.Sequential(*stages, nn.Linear(channels, num_classes))
