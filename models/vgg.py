"""VGG as the course builds it (ch. 8.2 of d2l.ai, "Networks Using Blocks (VGG)")."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from models.layers import check_probability, check_side
from models.registry import register_model

ConvArch = Sequence[Sequence[int]]

#: VGG-11: (number of 3x3 convs, output channels) per block; each block ends in a 2x2/2 max-pool.
VGG11: tuple[tuple[int, int], ...] = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
#: The course's Fashion-MNIST run: VGG-11 with a quarter of the channels (ratio 4).
VGG11_SMALL: tuple[tuple[int, int], ...] = ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))
#: Five halvings need 32 pixels for a 1x1 final map.
VGG_MIN_INPUT_SIZE = 2 ** len(VGG11)


def _conv_arch(conv_arch: ConvArch) -> list[tuple[int, int]]:
    """Accept tuples or JSON lists of (num_convs, out_channels) pairs, all positive ints."""
    pairs: list[tuple[int, int]] = []
    for pair in conv_arch:
        values = list(pair) if isinstance(pair, Sequence) else []
        if len(values) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
        ):
            raise ValueError(f"conv_arch holds (num_convs, out_channels) pairs, got {pair!r}")
        pairs.append((values[0], values[1]))
    if not pairs:
        raise ValueError("conv_arch needs at least one block")
    return pairs


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """`num_convs` padded 3x3 conv+ReLU layers, then a 2x2/2 max-pool that halves the side."""
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def _vgg(
    conv_arch: ConvArch, *, in_channels: int, num_classes: int, input_size: int, dropout: float
) -> nn.Sequential:
    pairs = _conv_arch(conv_arch)
    p = check_probability("dropout", dropout)
    side = input_size // 2 ** len(pairs)
    check_side("vgg", side=side, input_size=input_size, min_input_size=2 ** len(pairs))
    blocks: list[nn.Module] = []
    for num_convs, out_channels in pairs:
        blocks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels
    return nn.Sequential(
        *blocks,
        nn.Flatten(),
        nn.Linear(in_channels * side * side, 4096),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Dropout(p),
        nn.Linear(4096, num_classes),
    )


@register_model("vgg", chapter="8.2", default_input_size=224, min_input_size=VGG_MIN_INPUT_SIZE)
def vgg(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 224,
    conv_arch: ConvArch = VGG11,
    dropout: float = 0.5,
) -> nn.Module:
    """VGG (ch. 8.2 Networks Using Blocks (VGG); Simonyan & Zisserman 2014).

    `conv_arch` is the course's list of (num_convs, out_channels) blocks, VGG-11 by default;
    the dense head (4096, 4096, classes, dropout after each hidden layer) is sized from
    `input_size`. Every block halves the side, so n blocks need an input of at least 2**n: the
    registry's minimum (32) is for five blocks, and a deeper `conv_arch` is refused below its own.
    """
    return _vgg(
        conv_arch,
        in_channels=in_channels,
        num_classes=num_classes,
        input_size=input_size,
        dropout=dropout,
    )


@register_model(
    "vgg11_small", chapter="8.2", default_input_size=224, min_input_size=VGG_MIN_INPUT_SIZE
)
def vgg11_small(
    *,
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 224,
    dropout: float = 0.5,
) -> nn.Module:
    """Small VGG-11 (ch. 8.2 VGG, the course's run; Simonyan & Zisserman 2014): 1/4 channels.

    The course trains this variant on Fashion-MNIST because full VGG-11 is too costly:
    conv_arch ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128)); the dense head stays 4096 wide.
    """
    return _vgg(
        VGG11_SMALL,
        in_channels=in_channels,
        num_classes=num_classes,
        input_size=input_size,
        dropout=dropout,
    )
