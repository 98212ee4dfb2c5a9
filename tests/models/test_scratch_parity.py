"""The from-scratch BatchNorm the recipes offer (lenet-bn-scratch) gives nn.BatchNorm2d's outputs,
in train mode and in eval mode, alone and inside the course's LeNet-BN."""

from __future__ import annotations

import torch
from torch import nn

from models import get_model
from models.scratch import BatchNorm

# PyTorch's names for the buffers and parameters the book calls gamma, beta, moving_*.
TORCH_NAMES = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_var": "running_var",
}


def as_scratch(state: dict[str, torch.Tensor], scratch: nn.Module) -> dict[str, torch.Tensor]:
    """A PyTorch LeNet-BN state_dict renamed and reshaped for the scratch net."""
    target = scratch.state_dict()
    converted = {}
    for name, tensor in target.items():
        prefix, _, leaf = name.rpartition(".")
        source = state.get(f"{prefix}.{TORCH_NAMES.get(leaf, leaf)}", state.get(name))
        assert source is not None, name
        converted[name] = source.reshape(tensor.shape)
    return converted


def test_scratch_batchnorm_matches_batchnorm2d_in_train_and_eval_mode() -> None:
    torch.manual_seed(0)
    ours, reference = BatchNorm(3, 4), nn.BatchNorm2d(3, momentum=0.1)  # 0.9 old = 0.1 new
    with torch.no_grad():
        reference.weight.uniform_(0.5, 2.0)
        reference.bias.uniform_(-1.0, 1.0)
        ours.gamma.copy_(reference.weight.view(1, 3, 1, 1))
        ours.beta.copy_(reference.bias.view(1, 3, 1, 1))
    for _ in range(5):  # train mode: batch statistics, moving means updated alike
        batch = torch.randn(16, 3, 6, 6) * 2 + 0.5
        assert torch.allclose(ours(batch), reference(batch), atol=1e-5)
    assert reference.running_mean is not None and reference.running_var is not None
    assert torch.allclose(ours.moving_mean.flatten(), reference.running_mean, atol=1e-6)
    # PyTorch averages the unbiased batch variance, the book the biased one: n/(n-1) apart.
    n = 16 * 6 * 6
    assert torch.allclose(ours.moving_var.flatten(), reference.running_var, rtol=1 / (n - 1))
    ours.eval()
    reference.eval()
    batch = torch.randn(4, 3, 6, 6)
    with torch.no_grad():  # with the very same statistics, eval outputs are identical
        ours.moving_var.copy_(reference.running_var.view(1, 3, 1, 1))
    assert torch.allclose(ours(batch), reference(batch), atol=1e-6)


def test_lenet_bn_scratch_and_torch_give_the_same_outputs() -> None:
    torch.manual_seed(0)
    torch_net = get_model("lenet_bn", in_channels=1, num_classes=10, batchnorm="torch")
    scratch_net = get_model("lenet_bn", in_channels=1, num_classes=10, batchnorm="scratch")
    scratch_net.load_state_dict(as_scratch(torch_net.state_dict(), scratch_net))
    images = torch.randn(32, 1, 28, 28)
    assert torch.allclose(scratch_net(images), torch_net(images), atol=1e-5)  # train mode
    scratch_net.load_state_dict(as_scratch(torch_net.state_dict(), scratch_net))
    scratch_net.eval()
    torch_net.eval()
    with torch.no_grad():
        assert torch.allclose(scratch_net(images), torch_net(images), atol=1e-5)
