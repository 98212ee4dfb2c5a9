"""The one training loop: an epoch of minibatch steps, and evaluation, for every net so trained.

Classifiers (`worker.engine`) and regression nets (`worker.regression`) train through the same
`train_epoch` and are scored by the same `evaluate`; what they learn comes in as an `Objective`
(`worker.objectives`): the loss, the loss evaluation sums, and the right answers, if any, to
count. Each step's minibatch comes from the job's `Feed`, made at network size on the training
device; per-step results stay on the device and are read back once per epoch, not once per step.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from core.datasets import Split
from core.jobs.hyperparameters import Hyperparameters
from worker.batches import Feed, in_order
from worker.diagnostics import check_finite, global_grad_norm, gradient_warnings, layer_norms
from worker.objectives import Objective
from worker.training_state import MetricValues, Shard, TrainState, stop_if_asked

MAX_WARNINGS = 20


def autocast(hp: Hyperparameters, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision as asked; fp16 only on a GPU, where loss scaling keeps gradients alive."""
    if hp.precision == "fp32":
        return contextlib.nullcontext()
    if hp.precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a GPU; use bf16 or fp32 on the CPU")
    dtype = torch.bfloat16 if hp.precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def train_epoch(
    state: TrainState,
    split: Split,
    *,
    hp: Hyperparameters,
    generator: torch.Generator,
    epoch: int,
    objective: Objective,
) -> MetricValues:
    """One pass over `split` in a seeded random order: loss (and accuracy, where the objective
    counts right answers), speed, lr, gradient norms."""
    state.net.train()
    feed, shard = state.feed, state.shard
    device = feed.device
    order, batch = epoch_order(len(split), hp.batch_size, generator, shard)
    batches = shard_batches(order.to(split.rows.device), batch, shard)
    step_losses = torch.empty(len(batches), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    first_step, diagnostics = state.step, {}
    precision = autocast(hp, device)
    started = time.perf_counter()
    progress = state.progress
    progress.done, progress.total = 0, len(batches)
    steps = feed.batches(split, batches, augment=state.augment, channels_last=hp.channels_last)
    for i, (inputs, targets) in enumerate(steps):
        stop_if_asked(state, epoch, "before")
        progress.done = i
        with precision:
            outputs = state.forward(inputs)
        loss = objective.loss(outputs, targets)
        stop_if_asked(state, epoch, "during")  # a long step: before its backward pass too
        state.optimizer.zero_grad(set_to_none=True)
        backward_and_clip(state, loss, hp.grad_clip_norm)
        if i == len(batches) - 1:
            diagnostics = epoch_diagnostics(state, hp, epoch)
        step_optimizer(state)
        step_losses[i] = loss.detach()
        if objective.right_answers is not None:
            correct += objective.right_answers(outputs.detach(), targets)
    progress.done = len(batches)
    elapsed = time.perf_counter() - started
    if shard.world > 1:  # every rank's share of each step, summed: the whole minibatch's
        dist.all_reduce(step_losses)
        step_losses /= shard.world
        dist.all_reduce(correct)
    lr = state.optimizer.param_groups[0]["lr"]
    check_finite(step_losses, first_step=first_step, epoch=epoch, lr=lr)
    sizes = torch.full_like(step_losses, batch)
    sizes[-1] = len(order) - (len(batches) - 1) * batch
    mean_loss = (step_losses * sizes).sum().item() / len(order)
    metrics = objective.report("train", loss=mean_loss, correct=correct, count=len(order))
    metrics[("train", "examples_per_sec")] = len(order) / max(elapsed, 1e-9)
    metrics[("train", "lr")] = lr
    return metrics | diagnostics


def epoch_order(
    size: int, batch_size: int, generator: torch.Generator, shard: Shard
) -> tuple[torch.Tensor, int]:
    """The epoch's shuffled order and its global minibatch size.

    For several ranks the order is padded (wrapping around, as DistributedSampler does) and the
    minibatch rounded up to a multiple of the world size, so every rank takes an equal share of
    every step and no rank waits on a step the others never take."""
    order = torch.randperm(size, generator=generator)
    if shard.world == 1:
        return order, batch_size
    padding = -size % shard.world
    order = torch.cat([order, order[:padding]])
    return order, -(-batch_size // shard.world) * shard.world


def shard_batches(order: torch.Tensor, batch: int, shard: Shard) -> list[torch.Tensor]:
    """This rank's indices for each step: its share of every global minibatch."""
    steps = range(0, len(order), batch)
    if shard.world == 1:
        return [order[begin : begin + batch] for begin in steps]
    return [order[begin : begin + batch][shard.rank :: shard.world] for begin in steps]


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
def evaluate(
    net: nn.Module,
    split: Split,
    feed: Feed,
    *,
    batch_size: int,
    objective: Objective,
    name: str,
) -> MetricValues:
    """Mean loss (and accuracy, where counted) on `split` in eval mode (dropout off, BatchNorm
    running stats), reported under the split name `name`."""
    net.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=feed.device)
    correct = torch.zeros((), dtype=torch.int64, device=feed.device)
    for inputs, targets in feed.batches(split, in_order(len(split), batch_size)):
        outputs = net(inputs)
        loss_sum += objective.summed_loss(outputs, targets)
        if objective.right_answers is not None:
            correct += objective.right_answers(outputs, targets)
    count = len(split)
    return objective.report(name, loss=loss_sum.item() / count, correct=correct, count=count)
