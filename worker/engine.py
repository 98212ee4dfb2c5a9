"""The training engine: a pure function of a job spec.

`fit` knows nothing of the database, Celery or settings. Progress and checkpoints leave it through
callbacks the task supplies; it returns the job's result. Small datasets stay resident as tensors
on the training device, shuffled by index each epoch (no per-item Python transforms).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import models
from core.datasets import PreparedData, Split, prepare
from core.schemas import JobCreate
from models.init import init_weights

log = logging.getLogger(__name__)

EVAL_BATCH_SIZE = 1024
MetricValues = dict[tuple[str, str], float]


@dataclass(frozen=True)
class EpochReport:
    """One finished epoch: its metrics keyed (split, name), and the optimiser steps so far."""

    epoch: int
    step: int
    metrics: MetricValues


@dataclass
class Callbacks:
    """How the engine talks to the outside world; every hook is optional."""

    on_epoch: Callable[[EpochReport], None] = lambda report: None
    on_checkpoint: Callable[[int, dict[str, Any]], None] = lambda epoch, payload: None


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float


@dataclass
class TrainState:
    net: nn.Module
    optimizer: torch.optim.Optimizer
    step: int = 0
    history: list[EpochReport] = field(default_factory=list)


def build_network(spec: JobCreate, data: PreparedData) -> nn.Module:
    """The spec's architecture sized to the dataset, initialised by the spec's scheme."""
    net = models.get_model(
        spec.model.arch,
        in_channels=data.preprocessing.in_channels,
        num_classes=len(data.class_names),
        input_size=data.preprocessing.input_size,
        **spec.model.config,
    )
    hp = spec.hyperparameters
    return init_weights(net, hp.init, std=hp.init_std, value=hp.init_value)


def train_epoch(
    state: TrainState, split: Split, *, batch_size: int, generator: torch.Generator
) -> dict[str, float]:
    """One pass over `split` in a seeded random order; mean loss, accuracy and examples/sec."""
    state.net.train()
    order = torch.randperm(len(split), generator=generator).to(split.inputs.device)
    loss_sum = torch.zeros((), device=split.inputs.device)
    correct = torch.zeros((), device=split.inputs.device, dtype=torch.int64)
    started = time.perf_counter()
    for begin in range(0, len(split), batch_size):
        index = order[begin : begin + batch_size]
        inputs, targets = split.inputs[index], split.targets[index]
        logits = state.net(inputs)
        loss = F.cross_entropy(logits, targets)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        state.step += 1
        # Accumulate on the device: one host sync per epoch, not per step.
        loss_sum += loss.detach() * len(index)
        correct += (logits.detach().argmax(dim=1) == targets).sum()
    elapsed = time.perf_counter() - started
    count = len(split)
    return {
        "loss": loss_sum.item() / count,
        "acc": correct.item() / count,
        "examples_per_sec": count / max(elapsed, 1e-9),
    }


@torch.inference_mode()
def evaluate(net: nn.Module, split: Split) -> Evaluation:
    """Mean loss and accuracy on `split` in eval mode (dropout off, BatchNorm running stats)."""
    net.eval()
    loss_sum, correct = 0.0, 0
    for begin in range(0, len(split), EVAL_BATCH_SIZE):
        inputs = split.inputs[begin : begin + EVAL_BATCH_SIZE]
        targets = split.targets[begin : begin + EVAL_BATCH_SIZE]
        logits = net(inputs)
        loss_sum += F.cross_entropy(logits, targets, reduction="sum").item()
        correct += int((logits.argmax(dim=1) == targets).sum().item())
    return Evaluation(loss=loss_sum / len(split), accuracy=correct / len(split))


def checkpoint_payload(
    spec: JobCreate, data: PreparedData, state: TrainState, epoch: int
) -> dict[str, Any]:
    """Everything needed to rebuild the net exactly and to resume: config, weights, optimiser."""
    return {
        "arch": spec.model.arch,
        "config": dict(spec.model.config),
        "in_channels": data.preprocessing.in_channels,
        "num_classes": len(data.class_names),
        "input_size": data.preprocessing.input_size,
        "class_names": list(data.class_names),
        "preprocessing": data.preprocessing.to_dict(),
        "epoch": epoch,
        "step": state.step,
        "state_dict": {
            name: tensor.detach().cpu() for name, tensor in state.net.state_dict().items()
        },
        "optimizer": state.optimizer.state_dict(),
    }


def to_device(split: Split, device: torch.device) -> Split:
    return Split(inputs=split.inputs.to(device), targets=split.targets.to(device))


def fit(
    spec: JobCreate, *, device: torch.device, callbacks: Callbacks | None = None
) -> dict[str, Any]:
    """Train `spec` on `device`, reporting every epoch; returns the job's result."""
    callbacks = callbacks or Callbacks()
    hp = spec.hyperparameters
    torch.manual_seed(hp.seed)
    data = prepare(
        spec.dataset.name,
        input_size=spec.model.resolved_input_size,
        val_fraction=spec.dataset.val_fraction,
        test_fraction=spec.dataset.test_fraction,
        seed=spec.dataset.split_seed,
    )
    net = build_network(spec, data).to(device)
    state = TrainState(net=net, optimizer=torch.optim.SGD(net.parameters(), lr=hp.lr))
    train, val = to_device(data.train, device), to_device(data.val, device)
    order_generator = torch.Generator().manual_seed(hp.seed)
    for epoch in range(1, hp.epochs + 1):
        metrics: MetricValues = {
            ("train", name): value
            for name, value in train_epoch(
                state, train, batch_size=hp.batch_size, generator=order_generator
            ).items()
        }
        if len(val):
            held_out = evaluate(net, val)
            metrics[("val", "loss")], metrics[("val", "acc")] = held_out.loss, held_out.accuracy
        report = EpochReport(epoch=epoch, step=state.step, metrics=metrics)
        state.history.append(report)
        callbacks.on_epoch(report)
        callbacks.on_checkpoint(epoch, checkpoint_payload(spec, data, state, epoch))
    return summarise(net, data, state, device)


def summarise(
    net: nn.Module, data: PreparedData, state: TrainState, device: torch.device
) -> dict[str, Any]:
    """Train error beside generalisation (test) error, and what the model needs to serve."""
    final = state.history[-1].metrics
    test = evaluate(net, to_device(data.test, device))
    return {
        "epochs": len(state.history),
        "steps": state.step,
        "train_loss": final[("train", "loss")],
        "train_acc": final[("train", "acc")],
        "val_acc": final.get(("val", "acc")),
        "test_loss": test.loss,
        "test_acc": test.accuracy,
        "train_error": 1 - final[("train", "acc")],
        "test_error": 1 - test.accuracy,
        "parameters": sum(p.numel() for p in net.parameters()),
        "class_names": list(data.class_names),
        "preprocessing": data.preprocessing.to_dict(),
        "splits": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
    }
