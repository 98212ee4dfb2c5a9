"""Training Nadaraya-Watson attention pooling (ch. 11.2), as the course does.

The net predicts from the training set itself: the training inputs are its keys and the targets
its values. The parametric model learns one kernel width `w` full batch (one optimiser step per
epoch) on the summed squared error, each training query attending to every other training
example (`leave_one_out`): a loop of its own, whose step is clipped and taken as the minibatch
loop's are (`worker.training_loop`). The non-parametric model has no parameters: it is
"trained" in one epoch that records its training loss, without an optimiser, and
`hyperparameters.epochs` is not used.

Losses here are sums over their split (the course's `l.sum()`); the result also gives the means
(`train_mse`, `test_mse`). Checkpoints hold, besides the usual payload, `train_keys` and
`train_values` (the sorted training inputs and targets), which every prediction needs.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from core.datasets import PreparedData, Split
from core.jobs.hyperparameters import Hyperparameters
from core.jobs.schemas import JobCreate
from models import leave_one_out
from worker.checkpoints import model_record
from worker.engine import build_network
from worker.optim import build_optimizer, build_scheduler
from worker.training_loop import backward_and_clip, step_optimizer
from worker.training_state import Callbacks, EarlyStopper, EpochReport, MetricValues, TrainState

MAX_ATTENTION_SIDE = 64  # larger attention matrices are kept strided to at most this per side


def scalar_split(split: Split, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(n,) inputs and targets of a one-feature split, sorted by input (for readable weights)."""
    inputs = split.network_inputs()[:, 0]
    order = torch.argsort(inputs)
    return inputs[order].to(device), split.targets[order].to(device)


def summed_squared_error(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return ((predictions - targets) ** 2).sum()


def fit_attention_pooling(
    spec: JobCreate, data: PreparedData, *, device: torch.device, callbacks: Callbacks
) -> dict[str, Any]:
    """Train (parametric) or just evaluate (non-parametric) Nadaraya-Watson; the job's result."""
    hp = spec.hyperparameters
    torch.manual_seed(hp.seed)  # the parametric w starts uniform in [0, 1)
    net = build_network(spec, data).to(device)
    keys, values = scalar_split(data.train, device)
    loo_keys, loo_values = leave_one_out(keys, values)
    state = full_batch_state(net, hp)
    optimizer = state.optimizer if state is not None else None
    val = scalar_split(data.val, device) if len(data.val) else None
    stopper, history = EarlyStopper(hp), []
    for epoch in range(1, (hp.epochs if state is not None else 1) + 1):
        loss = summed_squared_error(net(keys, loo_keys, loo_values), values)
        metrics: MetricValues = {("train", "loss"): loss.item()}
        if state is not None:
            metrics[("train", "lr")] = state.optimizer.param_groups[0]["lr"]
            state.optimizer.zero_grad(set_to_none=True)
            backward_and_clip(state, loss, hp.grad_clip_norm)
            step_optimizer(state)
        if not math.isfinite(metrics[("train", "loss")]):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}; try a lower lr")
        if val is not None:
            with torch.no_grad():
                metrics[("val", "loss")] = summed_squared_error(
                    net(val[0], keys, values), val[1]
                ).item()
        report = EpochReport(
            epoch=epoch, step=state.step if state is not None else 0, metrics=metrics
        )
        history.append(report)
        payload = checkpoint_payload(spec, data, net, optimizer, epoch, keys=keys, values=values)
        callbacks.on_checkpoint(epoch, payload)
        callbacks.on_epoch(report)
        if stopper.should_stop(report):
            break
    return pooling_result(spec, data, net, history, stopper, keys=keys, values=values)


def full_batch_state(net: nn.Module, hp: Hyperparameters) -> TrainState | None:
    """The parametric model's optimiser, stepped once per epoch (the whole training set is its
    minibatch); None for the non-parametric model, which has nothing to learn."""
    params = list(net.parameters())
    if not params:
        return None
    optimizer = build_optimizer(params, hp)
    return TrainState(
        net=net,
        forward=net,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, hp, steps_per_epoch=1),
        scaler=None,
    )


def checkpoint_payload(
    spec: JobCreate,
    data: PreparedData,
    net: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    epoch: int,
    *,
    keys: torch.Tensor,
    values: torch.Tensor,
) -> dict[str, Any]:
    """The engine's payload, and the training keys/values that predictions attend over."""
    return {
        **model_record(spec, data),
        "epoch": epoch,
        "step": epoch if optimizer is not None else 0,
        "state_dict": {name: tensor.detach().cpu() for name, tensor in net.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": None,
        "train_keys": keys.detach().cpu(),
        "train_values": values.detach().cpu(),
    }


def downsampled(weights: torch.Tensor) -> dict[str, Any]:
    """The attention matrix, strided down to at most MAX_ATTENTION_SIDE rows and columns."""
    rows, cols = weights.shape
    row_step = -(-rows // MAX_ATTENTION_SIDE)
    col_step = -(-cols // MAX_ATTENTION_SIDE)
    return {
        "shape": [rows, cols],
        "stride": [row_step, col_step],
        "values": weights[::row_step, ::col_step].cpu().tolist(),
    }


@torch.no_grad()
def pooling_result(
    spec: JobCreate,
    data: PreparedData,
    net: nn.Module,
    history: list[EpochReport],
    stopper: EarlyStopper,
    *,
    keys: torch.Tensor,
    values: torch.Tensor,
) -> dict[str, Any]:
    """Train and test loss (summed and mean), the learned width w, the test attention weights."""
    test_inputs, test_targets = scalar_split(data.test, keys.device)
    test_loss = summed_squared_error(net(test_inputs, keys, values), test_targets).item()
    attention = net.attention_weights  # (n_test, n_train), kept by the forward just above
    assert isinstance(attention, torch.Tensor)
    train_loss = history[-1].metrics[("train", "loss")]
    w = getattr(net, "w", None)
    return {
        "task": "regression",
        "loss_function": "summed squared error",
        "epochs": len(history),
        "steps": history[-1].step,
        "train_loss": train_loss,
        "val_loss": history[-1].metrics.get(("val", "loss")),
        "test_loss": test_loss,
        "train_mse": train_loss / len(keys),
        "test_mse": test_loss / len(test_targets),
        "w": float(w.item()) if w is not None else None,
        "attention_weights": downsampled(attention),
        "stopped_early": stopper.stopped,
        "best_epoch": stopper.best_epoch or None,
        "warnings": [],
        "parameters": sum(p.numel() for p in net.parameters()),
        "class_names": list(data.class_names),
        "preprocessing": data.preprocessing.to_dict(),
        "splits": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
    }
