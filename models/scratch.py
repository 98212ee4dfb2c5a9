"""The course's from-scratch layers: BatchNorm (ch. 8.5) and dropout (ch. 5.6).

They exist so a user can rerun the course's "from scratch" experiments (its LeNet-BN table row
with scratch BN, its MLP with hand-written dropout) and compare them with PyTorch's layers.
Two deliberate departures from the book's code, both to behave like the PyTorch layers they
stand in for:
- the moving statistics are registered buffers, so `.to(device)` and `state_dict` carry them;
- the mode follows `module.training` (`net.eval()`), where the book tests
  `torch.is_grad_enabled()`; under the book's rule an evaluation without `no_grad` would use
  batch statistics.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.layers import check_probability


def batch_norm(
    inputs: Tensor,
    gamma: Tensor,
    beta: Tensor,
    moving_mean: Tensor,
    moving_var: Tensor,
    *,
    training: bool,
    eps: float = 1e-5,
    momentum: float = 0.9,
) -> Tensor:
    """Normalise by batch statistics while training, by the moving averages otherwise.

    The moving averages are updated in place: `moving = momentum * moving + (1 - momentum) *
    batch`, with the biased batch variance the book uses for both steps (nn.BatchNorm stores
    the unbiased one, so its `running_var` differs slightly from ours).
    """
    if not training:
        normalised = (inputs - moving_mean) / torch.sqrt(moving_var + eps)
        return gamma * normalised + beta
    # Fully connected: statistics per feature; convolution: per channel over batch and space.
    dims = (0,) if inputs.dim() == 2 else (0, 2, 3)
    mean = inputs.mean(dim=dims, keepdim=True)
    var = ((inputs - mean) ** 2).mean(dim=dims, keepdim=True)
    normalised = (inputs - mean) / torch.sqrt(var + eps)
    with torch.no_grad():
        moving_mean.mul_(momentum).add_((1.0 - momentum) * mean)
        moving_var.mul_(momentum).add_((1.0 - momentum) * var)
    return gamma * normalised + beta


class BatchNorm(nn.Module):
    """The book's `BatchNorm(num_features, num_dims)`: 2 for dense outputs, 4 for conv maps."""

    moving_mean: Tensor
    moving_var: Tensor

    def __init__(
        self, num_features: int, num_dims: int, *, eps: float = 1e-5, momentum: float = 0.9
    ) -> None:
        super().__init__()
        if num_dims not in (2, 4):
            raise ValueError(f"num_dims must be 2 (dense) or 4 (conv), got {num_dims}")
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.eps = eps
        self.momentum = momentum
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, inputs: Tensor) -> Tensor:
        """Normalise `inputs` (N, C) or (N, C, H, W); see `batch_norm`."""
        return batch_norm(
            inputs,
            self.gamma,
            self.beta,
            self.moving_mean,
            self.moving_var,
            training=self.training,
            eps=self.eps,
            momentum=self.momentum,
        )


class Dropout(nn.Module):
    """The book's `dropout_layer` as a module: zero with probability p, scale the rest by 1/(1-p).

    The scaling keeps each activation's expectation, so evaluation is the identity.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_probability("dropout", p)

    def forward(self, inputs: Tensor) -> Tensor:
        """Drop while training; pass through in eval mode."""
        if not self.training or self.p == 0.0:
            return inputs
        mask = (torch.rand(inputs.shape, device=inputs.device) > self.p).to(inputs.dtype)
        return mask * inputs / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
