"""Parameter counts agree with counts made independently of our code."""

from __future__ import annotations

import pytest
import torch
import torchvision

from models import count_parameters, get_model, layer_table
from models.resnet import RESNET18, RESNET34
from models.vgg import VGG11


def conv_params(in_channels: int, out_channels: int, kernel: int) -> int:
    return in_channels * out_channels * kernel * kernel + out_channels


def linear_params(in_features: int, out_features: int) -> int:
    return in_features * out_features + out_features


def meta_model(
    name: str, *, in_channels: int, num_classes: int, input_size: int
) -> torch.nn.Module:
    """Built on the meta device: counting needs shapes, not 47 million random numbers."""
    with torch.device("meta"):
        return get_model(
            name, in_channels=in_channels, num_classes=num_classes, input_size=input_size
        )


def test_lenet_matches_the_books_printout() -> None:
    assert (
        count_parameters(meta_model("lenet", in_channels=1, num_classes=10, input_size=28))
        == 61_706
    )


#: The book's AlexNet shape printout at 224x224, 1 channel, 10 classes (ch. 8.1).
ALEXNET_PRINTOUT = [
    ("Conv2d", (1, 96, 54, 54)),
    ("ReLU", (1, 96, 54, 54)),
    ("MaxPool2d", (1, 96, 26, 26)),
    ("Conv2d", (1, 256, 26, 26)),
    ("ReLU", (1, 256, 26, 26)),
    ("MaxPool2d", (1, 256, 12, 12)),
    ("Conv2d", (1, 384, 12, 12)),
    ("ReLU", (1, 384, 12, 12)),
    ("Conv2d", (1, 384, 12, 12)),
    ("ReLU", (1, 384, 12, 12)),
    ("Conv2d", (1, 256, 12, 12)),
    ("ReLU", (1, 256, 12, 12)),
    ("MaxPool2d", (1, 256, 5, 5)),
    ("Flatten", (1, 6400)),
    ("Linear", (1, 4096)),
    ("ReLU", (1, 4096)),
    ("Dropout", (1, 4096)),
    ("Linear", (1, 4096)),
    ("ReLU", (1, 4096)),
    ("Dropout", (1, 4096)),
    ("Linear", (1, 10)),
]


def test_alexnet_matches_the_books_shapes_and_their_parameters() -> None:
    net = meta_model("alexnet", in_channels=1, num_classes=10, input_size=224)
    rows = layer_table(net, (1, 1, 224, 224))
    assert [(row["type"], row["output_shape"]) for row in rows] == ALEXNET_PRINTOUT
    # Parameters from the printed shapes: (in, out, kernel) of each conv, then the dense layers.
    expected = (
        conv_params(1, 96, 11)
        + conv_params(96, 256, 5)
        + conv_params(256, 384, 3)
        + conv_params(384, 384, 3)
        + conv_params(384, 256, 3)
        + linear_params(256 * 5 * 5, 4096)
        + linear_params(4096, 4096)
        + linear_params(4096, 10)
    )
    assert count_parameters(net) == expected == 46_764_746


def test_vgg11_matches_its_conv_arch() -> None:
    expected, channels = 0, 1
    for num_convs, out_channels in VGG11:
        for _ in range(num_convs):
            expected += conv_params(channels, out_channels, 3)
            channels = out_channels
    expected += linear_params(512 * 7 * 7, 4096) + linear_params(4096, 4096)
    expected += linear_params(4096, 10)
    net = meta_model("vgg", in_channels=1, num_classes=10, input_size=224)
    assert count_parameters(net) == expected


@pytest.mark.parametrize(
    ("name", "stages", "torchvision_builder"),
    [
        ("resnet18", RESNET18, torchvision.models.resnet18),
        ("resnet34", RESNET34, torchvision.models.resnet34),
    ],
)
def test_resnet_differs_from_torchvision_exactly_by_its_course_choices(
    name: str, stages: tuple[tuple[int, int], ...], torchvision_builder: object
) -> None:
    """The course's ResNet = torchvision's + conv biases - BatchNorm on the 1x1 shortcuts.

    torchvision's convs have no bias (BatchNorm follows each), and its downsampling shortcut is
    a 1x1 conv followed by BatchNorm; the course keeps every conv's bias and has no BatchNorm on
    the shortcut. Everything else (stem, stages, head) is the same.
    """
    with torch.device("meta"):
        reference = torchvision_builder(weights=None)  # type: ignore[operator]
    ours = meta_model(name, in_channels=3, num_classes=1000, input_size=224)

    conv_biases = 64  # the stem
    shortcut_batchnorm = 0
    for index, (blocks, channels) in enumerate(stages):
        conv_biases += 2 * blocks * channels  # two 3x3 convs per residual block
        if index > 0:  # the first block of each later stage halves the side: a 1x1 shortcut
            conv_biases += channels
            shortcut_batchnorm += 2 * channels  # torchvision's gamma and beta
    assert count_parameters(ours) == count_parameters(reference) + conv_biases - shortcut_batchnorm
    if name == "resnet18":
        assert count_parameters(reference) == 11_689_512
        assert conv_biases - shortcut_batchnorm == 4_800 - 1_792
