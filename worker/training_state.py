"""What a training run carries from step to step and shows the outside world: its state, the
reports and hooks of each epoch, its share of a data-parallel run, and early stopping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from core.jobs.hyperparameters import Hyperparameters
from core.jobs.metrics import MetricKey
from worker.augment import BatchTransform
from worker.batches import Feed

MetricValues = dict[tuple[str, str], float]


@dataclass(frozen=True)
class EpochReport:
    """One finished epoch: its metrics keyed (split, name), and the optimiser steps so far."""

    epoch: int
    step: int
    metrics: MetricValues
    progress: int | None = None  # epochs done in all, where a job trains several nets


@dataclass
class StepProgress:
    """Where training is within the current epoch: written by the engine at every step (two
    attribute stores, no call), read by the job's heartbeat thread for live progress."""

    done: int = 0
    total: int = 0


@dataclass
class Callbacks:
    """How the engine talks to the outside world; every hook is optional.

    `should_stop` is asked before every step, so it must be cheap (an event's flag, not a
    database read): True ends training with `JobCancelled`."""

    on_epoch: Callable[[EpochReport], None] = lambda report: None
    on_checkpoint: Callable[[int, dict[str, Any]], None] = lambda epoch, payload: None
    should_stop: Callable[[], bool] = lambda: False
    progress: StepProgress = field(default_factory=StepProgress)


class JobCancelled(RuntimeError):
    """Training stopped between two steps because the job was cancelled."""


@dataclass(frozen=True)
class Shard:
    """This process's part of data-parallel training: rank `rank` of `world` processes.

    Every rank draws the same shuffled order each epoch; each global minibatch is dealt out
    rank by rank, so the gradient DistributedDataParallel averages is the whole minibatch's, as
    on one device (the course's multi-GPU chapter splits each minibatch the same way)."""

    rank: int = 0
    world: int = 1

    @property
    def leader(self) -> bool:
        """Rank 0 reports metrics and writes checkpoints for all."""
        return self.rank == 0


SINGLE = Shard()


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
    shard: Shard = SINGLE
    order: torch.Generator = field(default_factory=torch.Generator)  # each epoch's shuffle
    should_stop: Callable[[], bool] = lambda: False
    progress: StepProgress = field(default_factory=StepProgress)
    feed: Feed = field(default_factory=lambda: Feed(device=torch.device("cpu")))


def stop_if_asked(state: TrainState, epoch: int, where: str) -> None:
    """End training with JobCancelled when the job was cancelled or ran out of time."""
    if state.should_stop():
        raise JobCancelled(f"stopped in epoch {epoch}, {where} step {state.step + 1}")


def stop_between_layers(net: nn.Module, state: TrainState) -> None:
    """Let a cancel (or the time limit) stop a forward pass between two layers.

    One step of a large net on a large input can take minutes on a CPU; asked only between
    steps, a cancel would wait for it. The check is a flag and a clock (`should_stop`), about a
    microsecond per layer."""

    def check(module: nn.Module, inputs: Any) -> None:
        if state.should_stop():
            raise JobCancelled(f"stopped during step {state.step + 1}")

    for module in net.modules():
        if next(module.children(), None) is None:  # a leaf: a layer that computes
            module.register_forward_pre_hook(check)


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
        split, name = MetricKey.parse(self.rule.metric)
        value = report.metrics.get((split, name))
        if value is None:
            return False
        score = -value if name == "loss" else value  # higher is better
        if self.best is None or score > self.best + self.rule.min_delta:
            self.best, self.best_epoch = score, report.epoch
        self.stopped = report.epoch - self.best_epoch >= self.rule.patience
        return self.stopped

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps, so a resumed job stops where the uninterrupted one would."""
        return {"best": self.best, "best_epoch": self.best_epoch, "stopped": self.stopped}

    def load(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], int(state["best_epoch"])
        self.stopped = bool(state["stopped"])
