"""Regression training: the course's linear models (ch. 3) and attention pooling (ch. 11.2).

`fit_regression` is `fit`'s counterpart for datasets whose `task` is "regression" (one float
target per row): the same spec, callbacks, `EpochReport`s and checkpoint payload. What differs
is the objective, and how each family is trained:

- a net (the MLP; with `hidden_sizes=[]` and `flat_features=true` the linear model) trains in
  minibatches through the one training loop (`worker.training_loop`), given squared loss with
  mean reduction as its objective, as the polynomial recipe (ch. 3.6). Weight decay is the L2
  penalty on the weights only, not the biases (ch. 3.7's concise version). ("train", "loss") is
  the training set's MSE after each epoch, in eval mode (the book's `evaluate_loss`), and
  ("test", "loss") the test set's: ch. 3.6 draws both per epoch to show under/overfitting.
  Its rows of features are small: they stay resident on the training device, in fp32.
- Nadaraya-Watson (worker/attention_pooling.py) trains full batch on the summed squared error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

import models
from core.datasets import PreparedData, Split, get_dataset
from core.jobs.schemas import JobCreate
from worker.attention_pooling import fit_attention_pooling
from worker.batches import Feed
from worker.checkpoints import checkpoint_payload
from worker.engine import build_network, prepare_data
from worker.objectives import REGRESSION
from worker.optim import build_optimizer, build_scheduler
from worker.training_loop import evaluate, train_epoch
from worker.training_state import Callbacks, EarlyStopper, EpochReport, MetricValues, TrainState

EVAL_ROWS = 1024  # rows of features evaluated at once


def fit_regression(
    spec: JobCreate, *, device: torch.device, data_dir: Path, callbacks: Callbacks | None = None
) -> dict[str, Any]:
    """Train `spec` on a regression dataset under `data_dir`; returns the job's result."""
    callbacks = callbacks or Callbacks()
    info = get_dataset(spec.dataset.name, root=data_dir)
    if info.task != "regression":
        raise ValueError(f"{info.name} is a {info.task} dataset; fit_regression needs regression")
    data = prepare_data(spec, data_dir)
    if models.get_architecture(spec.model.arch).task == "regression":  # attention pooling
        return fit_attention_pooling(spec, data, device=device, callbacks=callbacks)
    return fit_net(spec, data, device=device, callbacks=callbacks)


def decay_groups(net: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Parameter groups where only weights (not biases) carry the L2 penalty, as ch. 3.7."""
    weights = [param for param in net.parameters() if param.dim() > 1]
    others = [param for param in net.parameters() if param.dim() <= 1]
    return [
        {"params": weights, "weight_decay": weight_decay},
        {"params": others, "weight_decay": 0.0},
    ]


def mean_squared_error(state: TrainState, split: Split, *, name: str) -> MetricValues:
    """(`name`, "loss"): the MSE of the net's one output against the targets, in eval mode."""
    return evaluate(
        state.net, split, state.feed, batch_size=EVAL_ROWS, objective=REGRESSION, name=name
    )


def new_regression_state(spec: JobCreate, data: PreparedData, device: torch.device) -> TrainState:
    """A freshly initialised net with one output, its optimiser and lr schedule."""
    hp = spec.hyperparameters
    net = build_network(spec, data).to(device)  # one output: the dataset has one target
    optimizer = build_optimizer(decay_groups(net, hp.weight_decay), hp)
    steps_per_epoch = -(-len(data.train) // hp.batch_size)
    return TrainState(
        net=net,
        forward=torch.compile(net) if hp.compile else net,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, hp, steps_per_epoch=steps_per_epoch),
        scaler=None,
        order=torch.Generator().manual_seed(hp.seed),
        feed=Feed(device=device),  # rows of features: small, always resident
    )


def fit_net(
    spec: JobCreate, data: PreparedData, *, device: torch.device, callbacks: Callbacks
) -> dict[str, Any]:
    """Minibatch training of a net on squared loss, evaluated on each split every epoch."""
    hp = spec.hyperparameters
    torch.manual_seed(hp.seed)
    state = new_regression_state(spec, data, device)
    state.should_stop, state.progress = callbacks.should_stop, callbacks.progress
    placed = data.to(device)
    scored = {"train": placed.train, "val": placed.val, "test": placed.test}
    if not len(placed.val):
        del scored["val"]
    stopper = EarlyStopper(hp)
    for epoch in range(1, hp.epochs + 1):
        metrics = train_epoch(
            state, placed.train, hp=hp, generator=state.order, epoch=epoch, objective=REGRESSION
        )
        for name, split in scored.items():  # train too: its loss in eval mode, as evaluate_loss
            metrics |= mean_squared_error(state, split, name=name)
        report = EpochReport(epoch=epoch, step=state.step, metrics=metrics)
        state.history.append(report)
        stop = stopper.should_stop(report)
        callbacks.on_checkpoint(epoch, checkpoint_payload(spec, data, state, report, stopper))
        callbacks.on_epoch(report)
        if stop:
            break
    final = state.history[-1].metrics
    return {
        "task": "regression",
        "loss_function": "mse",
        "epochs": len(state.history),
        "steps": state.step,
        "train_loss": final[("train", "loss")],
        "val_loss": final.get(("val", "loss")),
        "test_loss": final[("test", "loss")],
        "stopped_early": stopper.stopped,
        "best_epoch": stopper.best_epoch or None,
        "warnings": state.warnings,
        **linear_weights(state.net),
        "parameters": sum(p.numel() for p in state.net.parameters()),
        "class_names": list(data.class_names),
        "preprocessing": data.preprocessing.to_dict(),
        "splits": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
    }


def linear_weights(net: nn.Module) -> dict[str, Any]:
    """For a linear model (one Linear layer), its learned w and b and the L2 norm of w, to set
    beside the book's printed weights and norms; nothing for a deeper net."""
    layers = [module for module in net.modules() if isinstance(module, nn.Linear)]
    if len(layers) != 1:
        return {}
    weight = layers[0].weight.detach().cpu().flatten()
    bias = layers[0].bias
    return {
        "weights": {
            "w": weight.tolist(),
            "b": float(bias.detach().cpu().item()) if bias is not None else None,
        },
        "w_norm": float(weight.norm()),
    }
