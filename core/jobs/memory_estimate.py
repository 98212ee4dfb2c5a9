"""How much memory a training job needs on its device, estimated before it runs, so a job that no
worker could hold is refused at submission with the numbers (`core.jobs.admission`), instead of
being killed by the kernel or waiting in the queue forever.

The estimate is a dry run on the meta device (shapes only: no memory, no data): weights, their
gradients, the optimiser's state (momentum: one copy, Adam: two), and what autograd keeps of every
layer's output at the job's batch size for the backward pass; then the data: the dataset's raw
samples when they stay resident on the device (else the loader processes that stream them), and
the minibatches being made at network size. On a GPU, CUDA's own context and the allocator's
slack come on top; on a CPU, the worker process itself (Python, torch, Celery).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

import models
from core.datasets import DatasetInfo
from core.jobs.schemas import JobCreate
from core.settings import Settings
from models.complexity import activation_elements, count_parameters

GIB = 2**30
HEADROOM = 1 * GIB  # CUDA context, cuDNN workspaces, fragmentation
PROCESS_BYTES = 1 * GIB  # a worker child before its job: Python, torch (0.5 GiB), Celery
LOADER_PROCESS_BYTES = 256 * 2**20  # one DataLoader worker: a fork, its own pages only
# Autograd keeps more than each layer's output: a ReLU's output and the next conv's input are
# one tensor, but pooling keeps its indices, dropout its mask, the loss its softmax. Measured on
# the CPU for AlexNet, ResNet-18 and GoogLeNet at the book's sizes: 1.1x, 1.2x and 1.6x.
SAVED_PER_OUTPUT = 1.25
INPUT_COPIES = 3  # a minibatch as raw floats, resized, and the one the net reads

DeviceKind = Literal["cpu", "gpu"]


@dataclass(frozen=True)
class DataFootprint:
    """A job's dataset as the memory estimate sees it: its raw bytes, and what the workers let
    stay resident on a CPU or a GPU (the rest streams from disk through loader processes)."""

    raw_bytes: int = 0
    resident_max_bytes_cpu: int = 2**62
    resident_max_bytes_gpu: int = 2**62
    loader_workers: int = 0

    def resident(self, kind: DeviceKind) -> bool:
        budget = self.resident_max_bytes_cpu if kind == "cpu" else self.resident_max_bytes_gpu
        return self.raw_bytes <= budget


def data_footprint(raw_bytes: int | None, settings: Settings) -> DataFootprint:
    """A dataset of `raw_bytes` (None: unknown, counted as nothing) as the settings let the
    workers hold it."""
    return DataFootprint(
        raw_bytes=raw_bytes or 0,
        resident_max_bytes_cpu=settings.resident_data_max_bytes_cpu,
        resident_max_bytes_gpu=settings.resident_data_max_bytes_gpu,
        loader_workers=settings.data_loader_workers,
    )


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes one device needs to train a job, by what they hold."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    batch_size: int
    inputs: int = 0  # minibatches at network size: training's and evaluation's
    data: int = 0  # raw samples held on the device, or the processes streaming them
    streamed: bool = False
    kind: DeviceKind = "gpu"

    @property
    def overhead(self) -> int:
        """What the device holds before the job: CUDA's context, or the worker process."""
        return HEADROOM if self.kind == "gpu" else PROCESS_BYTES

    @property
    def total(self) -> int:
        return (
            self.weights
            + self.gradients
            + self.optimizer
            + self.activations
            + self.inputs
            + self.data
            + self.overhead
        )

    @property
    def per_example(self) -> int:
        """What one more example of the batch costs (activations and inputs grow with it)."""
        return (self.activations + self.inputs) // max(self.batch_size, 1)

    def describe(self) -> str:
        data = "loader processes streaming the data" if self.streamed else "raw samples resident"
        own = "CUDA's own" if self.kind == "gpu" else "the worker process"
        return (
            f"about {self.total / GIB:.1f} GiB (weights {self.weights / GIB:.2f}, gradients "
            f"{self.gradients / GIB:.2f}, optimiser {self.optimizer / GIB:.2f}, activations at "
            f"batch_size {self.batch_size}: {self.activations / GIB:.2f}, inputs at network "
            f"size {self.inputs / GIB:.2f}, data ({data}) {self.data / GIB:.2f}, {own} "
            f"{self.overhead / GIB:.1f})"
        )


def optimizer_copies(spec: JobCreate) -> int:
    """Copies of the weights the optimiser keeps: Adam's two moments, SGD's momentum buffer."""
    hp = spec.hyperparameters
    if hp.optimizer in ("adam", "adamw"):
        return 2
    return 1 if hp.momentum else 0


def estimate(
    spec: JobCreate,
    info: DatasetInfo,
    *,
    batch_size: int,
    kind: DeviceKind = "gpu",
    data: DataFootprint | None = None,
    input_size: int | None = None,
) -> TrainingMemory:
    """The job's training memory on one device that takes `batch_size` examples a step (at
    `input_size`, by default the job's own)."""
    size = input_size or spec.input_size_for(info)
    with torch.device("meta"):
        net_shape = spec.net_shape(info, input_size=size)
        net = models.build_net(spec.model.arch, spec.model_options, net_shape)
    shape = (batch_size, size) if info.tabular else (batch_size, info.in_channels, size, size)
    weights = count_parameters(net) * 4
    half = spec.hyperparameters.precision in ("bf16", "fp16")
    outputs = activation_elements(net, shape) * (2 if half else 4)
    per_input = 4 * (size if info.tabular else info.in_channels * size * size)
    data = data or DataFootprint()
    resident = data.resident(kind)
    held = data.raw_bytes if resident else 0
    if not resident and kind == "cpu":  # the loader processes share the host with training
        held = data.loader_workers * LOADER_PROCESS_BYTES
    return TrainingMemory(
        weights=weights,
        gradients=weights,
        optimizer=weights * optimizer_copies(spec),
        activations=int(outputs * SAVED_PER_OUTPUT),
        batch_size=batch_size,
        inputs=INPUT_COPIES * batch_size * per_input,
        data=held,
        streamed=not resident,
        kind=kind,
    )
