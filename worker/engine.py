"""The classification engine: a pure function of a job spec.

`fit` knows nothing of the database, Celery or settings. Progress and checkpoints leave it through
callbacks the task supplies; it returns the job's result. A dataset's compact raw samples stay
resident on the training device when they fit the worker's budget (else they stream from disk,
see `worker.batches`), each step's minibatch is made at network size there, shuffled by index
each epoch (no per-item Python transforms). The epochs themselves are the one training loop's
(`worker.training_loop`), given cross-entropy and accuracy as the objective.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import models
from core.datasets import PreparedData, Split, get_dataset, prepare
from core.jobs.schemas import JobCreate
from models.init import init_weights
from worker.augment import batch_augmenter
from worker.batches import DataPlan, Feed, eval_batch_size, place, plan_feed
from worker.checkpoints import checkpoint_payload, restore
from worker.finetune import Warmstart, apply_warmstart
from worker.objectives import Objective, classification
from worker.optim import build_optimizer, build_scheduler
from worker.training_loop import autocast, evaluate, train_epoch
from worker.training_state import (
    SINGLE,
    Callbacks,
    EarlyStopper,
    EpochReport,
    Shard,
    StepProgress,
    TrainState,
    stop_between_layers,
)

log = logging.getLogger(__name__)


def build_network(spec: JobCreate, data: PreparedData) -> nn.Module:
    """The spec's architecture sized to the dataset, initialised by the spec's scheme."""
    shape = models.NetShape(
        in_channels=data.preprocessing.in_channels,
        num_classes=len(data.class_names),
        input_size=data.preprocessing.input_size,
    )
    net = models.build_net(spec.model.arch, spec.model_options, shape)
    hp = spec.hyperparameters
    return init_weights(
        net, hp.init, std=hp.init_std, value=hp.init_value, zero_bias=hp.init_bias == "zero"
    )


def new_state(
    spec: JobCreate,
    data: PreparedData,
    device: torch.device,
    *,
    train_size: int,
    warmstart: Warmstart | None = None,
    shard: Shard = SINGLE,
    feed: Feed | None = None,
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
    forward: nn.Module = net
    if shard.world > 1:  # gradients are averaged across ranks during backward
        forward = DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
    state = TrainState(
        net=net,
        forward=torch.compile(forward) if hp.compile else forward,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, hp, steps_per_epoch=steps_per_epoch),
        scaler=torch.amp.GradScaler("cuda") if hp.precision == "fp16" else None,
        finetune=finetune,
        augment=batch_augmenter(hp.augmentation, data.preprocessing),
        shard=shard,
        order=torch.Generator().manual_seed(hp.seed),
        feed=feed or Feed(device=device),
    )
    if not hp.compile:  # a compiled graph would break at every hook
        stop_between_layers(net, state)
    return state


def prepare_data(spec: JobCreate, data_dir: Path) -> PreparedData:
    """The job's dataset, split and preprocessed for its architecture's input size."""
    return prepare(
        spec.dataset.name,
        root=data_dir,
        input_size=spec.input_size_for(get_dataset(spec.dataset.name, root=data_dir)),
        val_fraction=spec.dataset.val_fraction,
        test_fraction=spec.dataset.test_fraction,
        seed=spec.dataset.split_seed,
    )


def load_data(
    spec: JobCreate, data_dir: Path, device: torch.device, plan: DataPlan
) -> tuple[PreparedData, Feed]:
    """The job's splits, placed as the plan says (resident on the device, or streamed)."""
    data = prepare_data(spec, data_dir)
    feed = plan_feed(data, device, plan)
    log.info("data: %s, %.1f MB raw", feed.mode, data.raw_bytes / 2**20)
    return place(data, feed), feed


@dataclass(frozen=True)
class Outcome:
    """A finished training run: its state, why it stopped, how it is evaluated."""

    state: TrainState
    stopper: EarlyStopper
    eval_batch: int
    objective: Objective


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
    shard: Shard = SINGLE,
    should_stop: Callable[[], bool] = lambda: False,
    resume: dict[str, Any] | None = None,
    progress: StepProgress | None = None,
    feed: Feed | None = None,
) -> Outcome:
    """Train a fresh net on `train` (or go on from `resume`, a checkpoint payload of an earlier
    attempt), evaluating on `val` each epoch (when given). The splits are where `feed` reads
    them (see `load_data`); by default resident on `device`.

    With several ranks only the leader reports and checkpoints, and it decides early stopping
    for all (each rank's BatchNorm buffers may differ slightly, and with them its val score)."""
    hp = spec.hyperparameters
    torch.manual_seed(hp.seed)  # the same initial weights on every rank
    feed = feed or Feed(device=device)
    state = new_state(
        spec, data, device, train_size=len(train), warmstart=warmstart, shard=shard, feed=feed
    )
    state.should_stop = should_stop
    if progress is not None:
        state.progress = progress
    if shard.rank:  # but each rank its own augmentation draws
        torch.manual_seed(hp.seed + shard.rank)
    val = val if val is not None and len(val) else None
    eval_batch = eval_batch_size(data.preprocessing, hp.batch_size)
    objective = classification(hp.label_smoothing)
    stopper = EarlyStopper(hp)
    first = restore(state, stopper, resume, device) if resume is not None else 1
    for epoch in range(first, hp.epochs + 1):
        metrics = train_epoch(
            state, train, hp=hp, generator=state.order, epoch=epoch, objective=objective
        )
        if val is not None:
            metrics |= evaluate(
                state.net, val, feed, batch_size=eval_batch, objective=objective, name="val"
            )
        epoch_report = EpochReport(epoch=epoch, step=state.step, metrics=metrics)
        state.history.append(epoch_report)
        stop = stopper.should_stop(epoch_report)  # before the checkpoint, which records it
        if shard.leader:  # the checkpoint first: an epoch shown as done can be resumed from
            if checkpoint is not None:
                checkpoint(epoch, checkpoint_payload(spec, data, state, epoch_report, stopper))
            report(epoch_report)
        if leader_decides(stop, shard, device):
            log.info("early stop after epoch %d: best epoch %d", epoch, stopper.best_epoch)
            break
    return Outcome(state=state, stopper=stopper, eval_batch=eval_batch, objective=objective)


def leader_decides(decision: bool, shard: Shard, device: torch.device) -> bool:
    """Rank 0's decision, on every rank (all must leave the loop on the same epoch)."""
    if shard.world == 1:
        return decision
    flag = torch.tensor([int(decision)], device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


def fit(
    spec: JobCreate,
    *,
    device: torch.device,
    data_dir: Path,
    callbacks: Callbacks | None = None,
    warmstart: Warmstart | None = None,
    shard: Shard = SINGLE,
    resume: dict[str, Any] | None = None,
    plan: DataPlan | None = None,
) -> dict[str, Any]:
    """Train `spec` on `device` with datasets under `data_dir` (from `warmstart`'s weights when
    fine-tuning; from `resume`, an earlier attempt's checkpoint, when it was interrupted), as rank
    `shard.rank` of `shard.world` data-parallel processes; returns the job's result.

    `plan` bounds the raw bytes held on the device (the rest streams from disk)."""
    callbacks = callbacks or Callbacks()
    autocast(spec.hyperparameters, device)  # refuse an impossible precision before any work
    data, feed = load_data(spec, data_dir, device, plan or DataPlan())
    outcome = run_training(
        spec,
        data,
        train=data.train,
        val=data.val,
        device=device,
        report=callbacks.on_epoch,
        checkpoint=callbacks.on_checkpoint,
        warmstart=warmstart,
        shard=shard,
        should_stop=callbacks.should_stop,
        resume=resume,
        progress=callbacks.progress,
        feed=feed,
    )
    return training_result(outcome, data)


def training_result(outcome: Outcome, data: PreparedData) -> dict[str, Any]:
    """Train error beside generalisation (test) error, and what the model needs to serve."""
    state, stopper = outcome.state, outcome.stopper
    final = state.history[-1].metrics
    test = evaluate(
        state.net,
        data.test,
        state.feed,
        batch_size=outcome.eval_batch,
        objective=outcome.objective,
        name="test",
    )
    return {
        "epochs": len(state.history),
        "steps": state.step,
        "train_loss": final[("train", "loss")],
        "train_acc": final[("train", "acc")],
        "val_acc": final.get(("val", "acc")),
        "test_loss": test[("test", "loss")],
        "test_acc": test[("test", "acc")],
        "train_error": 1 - final[("train", "acc")],
        "test_error": 1 - test[("test", "acc")],
        "stopped_early": stopper.stopped,
        "best_epoch": stopper.best_epoch or None,
        "warnings": state.warnings,
        **({"finetune": state.finetune} if state.finetune is not None else {}),
        "parameters": sum(p.numel() for p in state.net.parameters()),
        "class_names": list(data.class_names),
        "preprocessing": data.preprocessing.to_dict(),
        "splits": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
        "data": state.feed.describe(data),
    }
