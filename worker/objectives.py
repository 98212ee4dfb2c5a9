"""What a net learns, as data the one training loop is given (`worker.training_loop`).

The loop is the same for every net trained in minibatches; what differs between a classifier and
a regression net is only the loss it minimises, the loss evaluation adds up, and whether it counts
right answers beside them. An `Objective` holds those three functions, and names what they
report: ("train", "loss") and ("val", "loss") always, ("train", "acc") and ("val", "acc") only
where answers are counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from worker.training_state import MetricValues

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (net outputs, targets) -> loss


@dataclass(frozen=True)
class Objective:
    """The loss a step minimises (a mean over its minibatch), the loss evaluation sums over a
    split, and the right answers counted in a batch on the device (None: nothing to count)."""

    loss: Loss
    summed_loss: Loss
    right_answers: Loss | None = None

    def report(self, split: str, *, loss: float, correct: torch.Tensor, count: int) -> MetricValues:
        """The split's mean loss, and its accuracy where this objective counts right answers
        (`correct` is then read back from the device: once per epoch or evaluation)."""
        metrics: MetricValues = {(split, "loss"): loss}
        if self.right_answers is not None:
            metrics[(split, "acc")] = correct.item() / count
        return metrics


def cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy on fp32 logits, whatever precision the forward pass ran in."""
    return F.cross_entropy(
        logits.float(), targets, label_smoothing=label_smoothing, reduction=reduction
    )


def argmax_hits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """How many of the batch's highest-scoring classes are the right ones."""
    return (logits.argmax(dim=1) == targets).sum()


def squared_error(
    outputs: torch.Tensor, targets: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """Squared error of the net's one output against the float targets."""
    return F.mse_loss(outputs.squeeze(-1), targets, reduction=reduction)


def classification(label_smoothing: float = 0.0) -> Objective:
    """Cross-entropy (label-smoothed in training, plain in evaluation) and accuracy."""
    return Objective(
        loss=partial(cross_entropy, label_smoothing=label_smoothing),
        summed_loss=partial(cross_entropy, reduction="sum"),
        right_answers=argmax_hits,
    )


# Squared loss with mean reduction (ch. 3.1), and no accuracy to count.
REGRESSION = Objective(loss=squared_error, summed_loss=partial(squared_error, reduction="sum"))
