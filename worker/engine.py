"""The training engine: a pure function of a job spec.

`fit` knows nothing of the database, Celery or settings. Progress and checkpoints leave it through
callbacks the task supplies; it returns the job's result. Small datasets stay resident as tensors
on the training device, shuffled by index each epoch (no per-item Python transforms), and the
loop reads values back from the device once per epoch, not once per step.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import models
from core.datasets import PreparedData, Split, prepare
from core.hyperparameters import Hyperparameters
from core.schemas import JobCreate
from models.init import init_weights
from worker.augment import BatchTransform, batch_augmenter
from worker.diagnostics import check_finite, global_grad_norm, gradient_warnings, layer_norms
from worker.finetune import Warmstart, apply_warmstart
from worker.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

EVAL_BATCH_SIZE = 1024
MAX_WARNINGS = 20
MetricValues = dict[tuple[str, str], float]


@dataclass(frozen=True)
class EpochReport:
    """One finished epoch: its metrics keyed (split, name), and the optimiser steps so far."""

    epoch: int
    step: int
    metrics: MetricValues
    progress: int | None = None  # epochs done in all, where a job trains several nets


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
    net: nn.Module  # the module whose state_dict is saved
    forward: Callable[[torch.Tensor], torch.Tensor]  # the net, compiled when asked
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None  # None: constant lr
    scaler: torch.amp.GradScaler | None
    step: int = 0
    history: list[EpochReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    finetune: dict[str, Any] | None = None
    augment: BatchTransform | None = None


def build_network(spec: JobCreate, data: PreparedData) -> nn.Module:
    """The spec's architecture sized to the dataset, initialised by the spec's scheme."""
    net = models.get_model(
        spec.model.arch,
        in_channels=data.preprocessing.in_channels,
        num_classes=len(data.class_names),
        input_size=data.preprocessing.input_size,
        **spec.model_options,
    )
    hp = spec.hyperparameters
    return init_weights(net, hp.init, std=hp.init_std, value=hp.init_value)


def autocast(hp: Hyperparameters, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision as asked; fp16 only on a GPU, where loss scaling keeps gradients alive."""
    if hp.precision == "fp32":
        return contextlib.nullcontext()
    if hp.precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a GPU; use bf16 or fp32 on the CPU")
    dtype = torch.bfloat16 if hp.precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def train_epoch(
    state: TrainState, split: Split, *, hp: Hyperparameters, generator: torch.Generator, epoch: int
) -> MetricValues:
    """One pass over `split` in a seeded random order: loss, accuracy, speed, lr, gradient norms.

    Per-step results stay on the device (each step's loss, each example's predicted class) and
    are reduced once at the end, so the loop costs what a hand-written one does."""
    state.net.train()
    device = split.inputs.device
    order = torch.randperm(len(split), generator=generator).to(device)
    starts = range(0, len(order), hp.batch_size)
    step_losses = torch.empty(len(starts), device=device)
    predictions = torch.empty(len(order), dtype=torch.int64, device=device)
    first_step, diagnostics = state.step, {}
    precision = autocast(hp, device)
    started = time.perf_counter()
    for i, begin in enumerate(starts):
        index = order[begin : begin + hp.batch_size]
        inputs, targets = split.inputs[index], split.targets[index]
        if state.augment is not None:
            inputs = state.augment(inputs)
        if hp.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with precision:
            logits = state.forward(inputs)
        loss = F.cross_entropy(logits.float(), targets, label_smoothing=hp.label_smoothing)
        state.optimizer.zero_grad(set_to_none=True)
        backward_and_clip(state, loss, hp.grad_clip_norm)
        if i == len(starts) - 1:
            diagnostics = epoch_diagnostics(state, hp, epoch)
        step_optimizer(state)
        step_losses[i] = loss.detach()
        predictions[begin : begin + hp.batch_size] = logits.detach().argmax(dim=1)
    elapsed = time.perf_counter() - started
    lr = state.optimizer.param_groups[0]["lr"]
    check_finite(step_losses, first_step=first_step, epoch=epoch, lr=lr)
    sizes = torch.full_like(step_losses, hp.batch_size)
    sizes[-1] = len(order) - (len(starts) - 1) * hp.batch_size
    metrics: MetricValues = {
        ("train", "loss"): (step_losses * sizes).sum().item() / len(split),
        ("train", "acc"): (predictions == split.targets[order]).sum().item() / len(split),
        ("train", "examples_per_sec"): len(split) / max(elapsed, 1e-9),
        ("train", "lr"): lr,
    }
    return metrics | diagnostics


def backward_and_clip(state: TrainState, loss: torch.Tensor, clip: float | None) -> None:
    if state.scaler is not None:
        state.scaler.scale(loss).backward()
        state.scaler.unscale_(state.optimizer)
    else:
        loss.backward()
    if clip is not None:
        nn.utils.clip_grad_norm_(state.net.parameters(), clip)


def step_optimizer(state: TrainState) -> None:
    if state.scaler is not None:
        state.scaler.step(state.optimizer)
        state.scaler.update()
    else:
        state.optimizer.step()
    if state.scheduler is not None:
        state.scheduler.step()
    state.step += 1


def epoch_diagnostics(state: TrainState, hp: Hyperparameters, epoch: int) -> MetricValues:
    """The gradient actually applied on the epoch's last step (after clipping), and per layer."""
    metrics: MetricValues = {("train", "grad_norm"): global_grad_norm(state.net)}
    if hp.layer_diagnostics:
        norms = layer_norms(state.net)
        for name, (grad, weight) in norms.items():
            metrics[("layers", f"grad_norm:{name}")] = grad
            metrics[("layers", f"weight_norm:{name}")] = weight
        for warning in gradient_warnings(norms, epoch=epoch):
            if len(state.warnings) < MAX_WARNINGS:
                state.warnings.append(warning)
    return metrics


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


def model_record(spec: JobCreate, data: PreparedData) -> dict[str, Any]:
    """What rebuilds the net exactly and serves it: arch, options, sizes, classes, preprocessing."""
    return {
        "arch": spec.model.arch,
        "config": spec.model_options,
        "in_channels": data.preprocessing.in_channels,
        "num_classes": len(data.class_names),
        "input_size": data.preprocessing.input_size,
        "class_names": list(data.class_names),
        "preprocessing": data.preprocessing.to_dict(),
        "task": data.task,
    }


def checkpoint_payload(
    spec: JobCreate, data: PreparedData, state: TrainState, epoch: int
) -> dict[str, Any]:
    """Everything needed to rebuild the net exactly and to resume: config, weights, optimiser."""
    return {
        **model_record(spec, data),
        "epoch": epoch,
        "step": state.step,
        "state_dict": {
            name: tensor.detach().cpu() for name, tensor in state.net.state_dict().items()
        },
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict() if state.scheduler is not None else None,
    }


def to_device(split: Split, device: torch.device) -> Split:
    return Split(inputs=split.inputs.to(device), targets=split.targets.to(device))


def new_state(
    spec: JobCreate,
    data: PreparedData,
    device: torch.device,
    *,
    train_size: int,
    warmstart: Warmstart | None = None,
) -> TrainState:
    hp = spec.hyperparameters
    net = build_network(spec, data)
    params: Any = net.parameters()
    finetune = None
    if warmstart is not None:
        params, report = apply_warmstart(
            net, warmstart, num_classes=len(data.class_names), lr=hp.lr
        )
        finetune = report.as_result()
    net = net.to(device)
    if hp.channels_last:
        net = net.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(params, hp)
    steps_per_epoch = -(-train_size // hp.batch_size)
    return TrainState(
        net=net,
        forward=torch.compile(net) if hp.compile else net,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, hp, steps_per_epoch=steps_per_epoch),
        scaler=torch.amp.GradScaler("cuda") if hp.precision == "fp16" else None,
        finetune=finetune,
        augment=batch_augmenter(hp.augmentation, data.preprocessing),
    )


def prepare_data(spec: JobCreate, data_dir: Path) -> PreparedData:
    """The job's dataset, split and preprocessed for its architecture's input size."""
    return prepare(
        spec.dataset.name,
        root=data_dir,
        input_size=spec.model.resolved_input_size,
        val_fraction=spec.dataset.val_fraction,
        test_fraction=spec.dataset.test_fraction,
        seed=spec.dataset.split_seed,
    )


@dataclass(frozen=True)
class Outcome:
    """A finished training run: its state and why it stopped."""

    state: TrainState
    stopper: EarlyStopper


def run_training(
    spec: JobCreate,
    data: PreparedData,
    *,
    train: Split,
    val: Split | None,
    device: torch.device,
    report: Callable[[EpochReport], None],
    checkpoint: Callable[[int, dict[str, Any]], None] | None = None,
    warmstart: Warmstart | None = None,
) -> Outcome:
    """Train a fresh net on `train`, evaluating on `val` each epoch (when given)."""
    hp = spec.hyperparameters
    torch.manual_seed(hp.seed)
    state = new_state(spec, data, device, train_size=len(train), warmstart=warmstart)
    train, order_generator = to_device(train, device), torch.Generator().manual_seed(hp.seed)
    val = to_device(val, device) if val is not None and len(val) else None
    stopper = EarlyStopper(hp)
    for epoch in range(1, hp.epochs + 1):
        metrics = train_epoch(state, train, hp=hp, generator=order_generator, epoch=epoch)
        if val is not None:
            held_out = evaluate(state.net, val)
            metrics[("val", "loss")], metrics[("val", "acc")] = held_out.loss, held_out.accuracy
        epoch_report = EpochReport(epoch=epoch, step=state.step, metrics=metrics)
        state.history.append(epoch_report)
        report(epoch_report)
        if checkpoint is not None:
            checkpoint(epoch, checkpoint_payload(spec, data, state, epoch))
        if stopper.should_stop(epoch_report):
            log.info("early stop after epoch %d: best epoch %d", epoch, stopper.best_epoch)
            break
    return Outcome(state=state, stopper=stopper)


def fit(
    spec: JobCreate,
    *,
    device: torch.device,
    data_dir: Path,
    callbacks: Callbacks | None = None,
    warmstart: Warmstart | None = None,
) -> dict[str, Any]:
    """Train `spec` on `device` with datasets under `data_dir` (from `warmstart`'s weights when
    fine-tuning); returns the job's result."""
    callbacks = callbacks or Callbacks()
    autocast(spec.hyperparameters, device)  # refuse an impossible precision before any work
    data = prepare_data(spec, data_dir)
    outcome = run_training(
        spec,
        data,
        train=data.train,
        val=data.val,
        device=device,
        report=callbacks.on_epoch,
        checkpoint=callbacks.on_checkpoint,
        warmstart=warmstart,
    )
    return summarise(outcome, data, device)


class EarlyStopper:
    """Counts epochs without improvement of the chosen validation metric."""

    def __init__(self, hp: Hyperparameters) -> None:
        self.rule = hp.early_stopping
        self.best: float | None = None
        self.best_epoch = 0
        self.stopped = False

    def should_stop(self, report: EpochReport) -> bool:
        if self.rule is None:
            return False
        split, name = self.rule.metric.split("_", 1)
        value = report.metrics.get((split, name))
        if value is None:
            return False
        score = -value if name == "loss" else value  # higher is better
        if self.best is None or score > self.best + self.rule.min_delta:
            self.best, self.best_epoch = score, report.epoch
        self.stopped = report.epoch - self.best_epoch >= self.rule.patience
        return self.stopped


def summarise(outcome: Outcome, data: PreparedData, device: torch.device) -> dict[str, Any]:
    """Train error beside generalisation (test) error, and what the model needs to serve."""
    state, stopper = outcome.state, outcome.stopper
    final = state.history[-1].metrics
    test = evaluate(state.net, to_device(data.test, device))
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
        "stopped_early": stopper.stopped,
        "best_epoch": stopper.best_epoch or None,
        "warnings": state.warnings,
        **({"finetune": state.finetune} if state.finetune is not None else {}),
        "parameters": sum(p.numel() for p in state.net.parameters()),
        "class_names": list(data.class_names),
        "preprocessing": data.preprocessing.to_dict(),
        "splits": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
    }
