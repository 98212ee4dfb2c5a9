"""Checkpoints: what rebuilds a trained net exactly (to serve it), and what lets an interrupted
job go on exactly where it stopped (weights, optimiser, schedule, random states, early stopping).
"""

from __future__ import annotations

from typing import Any

import torch

from core.datasets import PreparedData
from core.jobs.schemas import JobCreate
from worker.training_state import EarlyStopper, EpochReport, TrainState

NO_MORE_EPOCHS = 2**31  # where a resumed job that had already stopped early goes on from


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
    spec: JobCreate,
    data: PreparedData,
    state: TrainState,
    report: EpochReport,
    stopper: EarlyStopper | None = None,
) -> dict[str, Any]:
    """Everything needed to rebuild the net exactly and to resume training exactly: config,
    weights, optimiser and scheduler, the random states (shuffle order, dropout, augmentation),
    early-stopping progress and the epoch's metrics."""
    device = next(state.net.parameters()).device
    return {
        **model_record(spec, data),
        "epoch": report.epoch,
        "step": state.step,
        "state_dict": {
            name: tensor.detach().cpu() for name, tensor in state.net.state_dict().items()
        },
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict() if state.scheduler is not None else None,
        "rng": {
            "order": state.order.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        },
        "stopper": stopper.state() if stopper is not None else None,
        "metrics": [[split, name, value] for (split, name), value in report.metrics.items()],
    }


def restore(
    state: TrainState, stopper: EarlyStopper, payload: dict[str, Any], device: torch.device
) -> int:
    """Continue from a checkpoint of an earlier attempt; returns the next epoch to train.

    Epochs after it then run exactly as they would have without the interruption (on the CPU;
    GPU kernels need not be bitwise deterministic)."""
    state.net.load_state_dict(payload["state_dict"])
    state.optimizer.load_state_dict(payload["optimizer"])
    if state.scheduler is not None and payload["scheduler"] is not None:
        state.scheduler.load_state_dict(payload["scheduler"])
    state.step = int(payload["step"])
    rng = payload["rng"]
    state.order.set_state(rng["order"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], device)
    if payload["stopper"] is not None:
        stopper.load(payload["stopper"])
    metrics = {(split, name): float(value) for split, name, value in payload["metrics"]}
    epoch = int(payload["epoch"])
    state.history.append(EpochReport(epoch=epoch, step=state.step, metrics=metrics))
    return epoch + 1 if not stopper.stopped else NO_MORE_EPOCHS


def resumable(payload: dict[str, Any] | None) -> bool:
    """A checkpoint written with everything `restore` needs (older ones lack random states)."""
    return payload is not None and "rng" in payload and "metrics" in payload
