"""The numerical-stability chapter (ch. 5.4) as checks on a running job.

Each step's loss is kept on the device and read once per epoch (no host sync per step);
gradient and weight norms are measured on each epoch's last step, per layer and overall.
"""

from __future__ import annotations

import math

import torch
from torch import nn

VANISHING_RATIO = 1e-7  # gradient norm / weight norm below this: the layer has stopped learning


class NonFiniteError(RuntimeError):
    """The loss or the gradients became NaN or infinite."""


def check_finite(step_losses: torch.Tensor, *, first_step: int, epoch: int, lr: float) -> None:
    """One host sync per epoch: fail the job with where it went wrong and what to try."""
    bad = (~torch.isfinite(step_losses)).nonzero()
    if len(bad):
        step = first_step + int(bad[0].item())
        raise NonFiniteError(
            f"the loss became NaN or infinite at epoch {epoch}, step {step}: the gradients "
            f"exploded. Try a lower lr (it was {lr:g}), gradient clipping "
            "(hyperparameters.grad_clip_norm, e.g. 1.0), or another init (e.g. kaiming_normal)"
        )


def global_grad_norm(net: nn.Module) -> float:
    """The L2 norm of all gradients together (what clip_grad_norm_ clips)."""
    norms = [p.grad.detach().norm() for p in net.parameters() if p.grad is not None]
    return float(torch.stack(norms).norm().item()) if norms else 0.0


def layer_norms(net: nn.Module) -> dict[str, tuple[float, float]]:
    """name -> (gradient norm, weight norm) of each parameter, read in one transfer."""
    named = [(name, p) for name, p in net.named_parameters() if p.grad is not None]
    if not named:
        return {}
    stacked = torch.stack(
        [torch.stack([p.grad.detach().norm(), p.detach().norm()]) for _, p in named]  # type: ignore[union-attr]
    ).tolist()
    return {name: (grad, weight) for (name, _), (grad, weight) in zip(named, stacked, strict=True)}


def gradient_warnings(norms: dict[str, tuple[float, float]], *, epoch: int) -> list[str]:
    """Layers whose gradients vanished or died, as messages for the job's record."""
    warnings = []
    for name, (grad, weight) in norms.items():
        if grad == 0.0 and name.endswith("weight"):
            warnings.append(
                f"epoch {epoch}: no gradient reaches {name} (dead ReLUs or saturated units); "
                "try a lower lr or kaiming init"
            )
        elif math.isfinite(grad) and weight > 0 and grad / weight < VANISHING_RATIO:
            warnings.append(
                f"epoch {epoch}: vanishing gradient at {name} (|grad|/|w| = {grad / weight:.1e}); "
                "try ReLU, BatchNorm, or xavier/kaiming init"
            )
    return warnings
