"""Optimisers and learning-rate schedules from a job's hyperparameters (ch. 12 of d2l.ai)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR

from core.jobs.hyperparameters import Hyperparameters, LRSchedule

ParamGroups = Iterable[dict[str, object]] | Iterable[nn.Parameter]


def build_optimizer(params: ParamGroups, hp: Hyperparameters) -> torch.optim.Optimizer:
    """SGD (weight decay = the L2 penalty's gradient, ch. 3.7), Adam, or AdamW (decoupled)."""
    if hp.optimizer == "sgd":
        return torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    if hp.optimizer == "adam":
        return torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
    return torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)


def lr_factor(
    schedule: LRSchedule, *, steps_per_epoch: int, total_steps: int
) -> Callable[[int], float]:
    """The multiplier of the base lr at optimiser step `t` (0-based), warm-up included."""
    warmup = round(schedule.warmup_epochs * steps_per_epoch)

    def after_warmup(step: int) -> float:
        if schedule.name == "step":
            return schedule.gamma ** (step // (schedule.step_size * steps_per_epoch))
        if schedule.name == "cosine":
            span = max(1, total_steps - warmup)
            progress = min(1.0, (step - warmup) / span)
            floor = schedule.min_lr_ratio
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return after_warmup(step)

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, hp: Hyperparameters, *, steps_per_epoch: int
) -> LRScheduler | None:
    """A scheduler stepped after every optimiser step; None for a constant lr (no work per step)."""
    if hp.lr_schedule.name == "constant" and hp.lr_schedule.warmup_epochs == 0:
        return None
    total_steps = hp.epochs * steps_per_epoch
    if hp.lr_schedule.name == "onecycle":
        max_lrs = [group["lr"] for group in optimizer.param_groups]  # fine-tuning: per group
        return OneCycleLR(
            optimizer, max_lr=max_lrs, total_steps=total_steps, pct_start=hp.lr_schedule.pct_start
        )
    factor = lr_factor(hp.lr_schedule, steps_per_epoch=steps_per_epoch, total_steps=total_steps)
    return LambdaLR(optimizer, lr_lambda=factor)
