"""How much GPU memory a training job needs, estimated before it runs, so a job that no worker's
GPU can hold is refused at submission with the numbers, instead of waiting in the queue forever.

The estimate is a dry run on the meta device (shapes only: no memory, no data): weights, their
gradients, the optimiser's state (momentum: one copy, Adam: two), and the activations every
layer outputs at the job's batch size (kept for the backward pass). CUDA's own context and the
allocator's slack come on top, so `HEADROOM` is added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import torch

import models
from core.datasets import DatasetInfo
from core.errors import InvalidInputError
from core.schemas import JobCreate
from core.tables import Worker, utcnow
from models.complexity import activation_elements, count_parameters

GIB = 2**30
HEADROOM = 1 * GIB  # CUDA context, cuDNN workspaces, fragmentation
ALIVE_WITHIN = timedelta(seconds=60)


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes one GPU needs to train a job, by what they hold."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    batch_size: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + HEADROOM

    def describe(self) -> str:
        return (
            f"about {self.total / GIB:.1f} GiB (weights {self.weights / GIB:.2f}, gradients "
            f"{self.gradients / GIB:.2f}, optimiser {self.optimizer / GIB:.2f}, activations at "
            f"batch_size {self.batch_size}: {self.activations / GIB:.2f}, CUDA's own "
            f"{HEADROOM / GIB:.0f})"
        )


def optimizer_copies(spec: JobCreate) -> int:
    """Copies of the weights the optimiser keeps: Adam's two moments, SGD's momentum buffer."""
    hp = spec.hyperparameters
    if hp.optimizer in ("adam", "adamw"):
        return 2
    return 1 if hp.momentum else 0


def estimate(spec: JobCreate, info: DatasetInfo, *, batch_size: int) -> TrainingMemory:
    """The job's training memory on one GPU that takes `batch_size` examples a step."""
    size = spec.input_size_for(info)
    with torch.device("meta"):
        net = models.get_model(
            spec.model.arch,
            in_channels=info.in_channels,
            num_classes=info.num_classes,
            input_size=size,
            **spec.model_options,
        )
    shape = (batch_size, size) if info.tabular else (batch_size, info.in_channels, size, size)
    weights = count_parameters(net) * 4
    half = spec.hyperparameters.precision in ("bf16", "fp16")
    return TrainingMemory(
        weights=weights,
        gradients=weights,
        optimizer=weights * optimizer_copies(spec),
        activations=activation_elements(net, shape) * (2 if half else 4),
        batch_size=batch_size,
    )


def gpu_memory(worker: Worker, device: str) -> list[int]:
    """Memory of each GPU of `worker` a job on `device` would use (empty: it cannot run there)."""
    gpus = [d for d in worker.devices if d.get("type") == "cuda"]
    if device in ("all", "auto", "cuda"):
        chosen = gpus if device == "all" else gpus[:1]
    else:
        chosen = [d for d in gpus if d.get("name") == device]
    return [int(d.get("memory_bytes", 0)) for d in chosen]


def check_fits_a_worker(spec: JobCreate, info: DatasetInfo, workers: Sequence[Worker]) -> None:
    """Refuse (422) a GPU job that no live GPU worker could hold; say nothing when none is known
    (one may join later)."""
    now = utcnow()
    live = [
        w
        for w in workers
        if w.stopped_at is None and now - w.last_seen < ALIVE_WITHIN and "gpu" in w.queues
    ]
    best: tuple[int, TrainingMemory, Worker] | None = None
    for worker in live:
        memories = gpu_memory(worker, spec.device)
        if not memories:
            continue
        per_gpu_batch = -(-spec.hyperparameters.batch_size // len(memories))
        need = estimate(spec, info, batch_size=per_gpu_batch)
        if need.total <= min(memories):
            return
        if best is None or min(memories) > best[0]:
            best = (min(memories), need, worker)
    if best is None:
        return
    capacity, need, worker = best
    fixed = need.total - need.activations
    fitting = max(0, (capacity - fixed) * need.batch_size // max(need.activations, 1))
    raise InvalidInputError(
        f"the job needs {need.describe()} of GPU memory on one GPU; the largest GPU among the "
        f"workers has {capacity / GIB:.1f} GiB ({worker.hostname}). Lower "
        f"hyperparameters.batch_size (about {fitting} fits), use precision bf16, or a smaller "
        "model.input_size"
    )
