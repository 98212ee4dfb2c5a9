"""The course's from-scratch layers behave like the PyTorch layers they stand in for."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import get_model
from models.scratch import BatchNorm, Dropout


@pytest.mark.parametrize(
    ("shape", "num_dims", "reference"),
    [
        ((8, 5), 2, nn.BatchNorm1d(5, momentum=0.1)),
        ((8, 3, 4, 4), 4, nn.BatchNorm2d(3, momentum=0.1)),
    ],
)
def test_batchnorm_matches_pytorch_while_training(
    shape: tuple[int, ...], num_dims: int, reference: nn.BatchNorm1d | nn.BatchNorm2d
) -> None:
    torch.manual_seed(0)
    inputs = torch.randn(shape) * 3 + 1
    ours = BatchNorm(shape[1], num_dims)
    assert torch.allclose(ours(inputs), reference(inputs), atol=1e-5)
    # momentum 0.9 on the old average is PyTorch's momentum 0.1 on the new batch.
    assert reference.running_mean is not None
    assert torch.allclose(ours.moving_mean.flatten(), reference.running_mean, atol=1e-6)


def test_batchnorm_uses_moving_averages_in_eval_mode() -> None:
    layer = BatchNorm(3, 4)
    inputs = torch.randn(6, 3, 2, 2) + 4
    layer(inputs)
    layer.eval()
    expected = (inputs - layer.moving_mean) / torch.sqrt(layer.moving_var + 1e-5)
    assert torch.allclose(layer(inputs), expected)
    assert set(layer.state_dict()) == {"gamma", "beta", "moving_mean", "moving_var"}


def test_dropout_drops_a_fraction_p_and_keeps_the_mean() -> None:
    torch.manual_seed(0)
    layer = Dropout(0.3)
    outputs = layer(torch.ones(200_000))
    assert (outputs == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert outputs.mean().item() == pytest.approx(1.0, abs=0.01)
    layer.eval()
    inputs = torch.randn(10)
    assert torch.equal(layer(inputs), inputs)


def test_lenet_bn_scratch_has_the_same_shape_as_torch() -> None:
    scratch = get_model("lenet_bn", in_channels=1, num_classes=10, batchnorm="scratch")
    torch_bn = get_model("lenet_bn", in_channels=1, num_classes=10)
    count = sum(p.numel() for p in scratch.parameters())
    assert count == sum(p.numel() for p in torch_bn.parameters())
    assert sum(isinstance(m, BatchNorm) for m in scratch.modules()) == 4
