"""ResNet as the course builds it (ch. 8.6 of d2l.ai, "Residual Networks (ResNet) and ResNeXt")."""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn
from torch.nn import functional as F

from models.registry import register_model

#: (residual blocks, channels) per stage, as the course's `arch` argument.
ResNetStages = tuple[tuple[int, int], ...]
RESNET18: ResNetStages = ((2, 64), (2, 128), (2, 256), (2, 512))
RESNET34: ResNetStages = ((3, 64), (4, 128), (6, 256), (3, 512))


class Residual(nn.Module):
    """Two 3x3 conv+BN layers added to the input; a 1x1 conv reshapes the input when needed.

    As in the course (and unlike torchvision), every conv keeps its bias and the 1x1 shortcut
    conv has no BatchNorm after it.
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        # The shortcut must match the main path's shape: a 1x1 conv where channels or side change.
        self.conv3: nn.Conv2d | None = None
        if stride != 1 or in_channels != out_channels:
            self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, inputs: Tensor) -> Tensor:
        """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
        outputs = F.relu(self.bn1(self.conv1(inputs)))
        outputs = self.bn2(self.conv2(outputs))
        shortcut = inputs if self.conv3 is None else self.conv3(inputs)
        return F.relu(outputs + shortcut)


def _stage(in_channels: int, num_residuals: int, channels: int, *, first: bool) -> nn.Sequential:
    """A stage of residual blocks; all but the first stage halve the side in their first block."""
    blocks: list[nn.Module] = []
    for index in range(num_residuals):
        stride = 2 if index == 0 and not first else 1
        blocks.append(Residual(in_channels, channels, stride=stride))
        in_channels = channels
    return nn.Sequential(*blocks)


def resnet(stages: ResNetStages, *, in_channels: int, num_classes: int) -> nn.Sequential:
    """The course's `ResNet(arch)`: stem b1, one named module per stage (b2...), then `last`."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["b1"] = nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    channels = 64
    for index, (num_residuals, stage_channels) in enumerate(stages):
        layers[f"b{index + 2}"] = _stage(channels, num_residuals, stage_channels, first=index == 0)
        channels = stage_channels
    layers["last"] = nn.Sequential(
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(channels, num_classes)
    )
    return nn.Sequential(layers)


@register_model("resnet18", chapter="8.6", default_input_size=96, min_input_size=1)
def resnet18(*, in_channels: int = 1, num_classes: int = 10, input_size: int = 96) -> nn.Module:
    """ResNet-18 (ch. 8.6 Residual Networks (ResNet); He et al. 2016): 4 stages x 2 blocks.

    7x7/2 stem with BatchNorm and a 3x3/2 max-pool, stages of 64-128-256-512 channels, global
    average pool and one dense layer; 96x96 input as in the course's run. All convs and pools
    are padded and round up, so any side works (min 1). `input_size` is not needed.
    """
    return resnet(RESNET18, in_channels=in_channels, num_classes=num_classes)


@register_model("resnet34", chapter="8.6", default_input_size=96, min_input_size=1)
def resnet34(*, in_channels: int = 1, num_classes: int = 10, input_size: int = 96) -> nn.Module:
    """ResNet-34 (ch. 8.6 Residual Networks (ResNet); He et al. 2016): 3-4-6-3 blocks per stage.

    The course's ResNet class with the deeper stage tuple; otherwise as `resnet18`.
    """
    return resnet(RESNET34, in_channels=in_channels, num_classes=num_classes)
