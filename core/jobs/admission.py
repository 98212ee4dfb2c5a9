"""Admission: a training job that no live worker could hold is refused at submission, with the
numbers and a batch or input size that would fit, instead of being killed by the kernel's
out-of-memory killer mid-step (or waiting forever for a GPU big enough).

Every job is checked, CPU and GPU alike, against the workers that would take it: those that
consume its queue, on the device it would train on there (`auto`: a worker's first GPU, else its
CPU). A CPU job gets the worker's memory (its RAM, or its cgroup's limit, as the worker reports
it) shared by the jobs it runs at once; a GPU job gets one GPU's memory. When no live worker is
known the job is accepted: one may join later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import models
from core.datasets import DatasetInfo
from core.errors import InvalidInputError
from core.jobs.memory_estimate import GIB, DataFootprint, DeviceKind, TrainingMemory, estimate
from core.jobs.schemas import JobCreate
from core.queue import queue_for
from core.tables import Worker


@dataclass(frozen=True)
class Capacity:
    """What one worker offers a job: the device it would train on and the bytes it has there."""

    worker: str
    kind: DeviceKind
    bytes: int  # one GPU's memory, or the worker's memory per job it runs at once
    devices: int = 1  # GPUs sharing each minibatch (device `all`)


def capacity(worker: Worker, device: str) -> Capacity | None:
    """Where a job asking for `device` would train on `worker`; None where it cannot, or where
    the worker did not say how much memory it has."""
    gpus = [d for d in worker.devices if d.get("type") == "cuda"]
    if device == "cpu" or (device in ("auto", "all") and not gpus):
        cpu = next((d for d in worker.devices if d.get("type") == "cpu"), None)
        if cpu is None or not cpu.get("memory_bytes"):
            return None
        per_job = int(cpu["memory_bytes"]) // max(1, int(cpu.get("jobs_at_once") or 1))
        return Capacity(worker=worker.hostname, kind="cpu", bytes=per_job)
    if device == "all":
        chosen = gpus
    elif device in ("auto", "cuda"):
        chosen = gpus[:1]
    else:
        chosen = [d for d in gpus if d.get("name") == device]
    if not chosen:
        return None
    smallest = min(int(d.get("memory_bytes", 0)) for d in chosen)
    return Capacity(worker=worker.hostname, kind="gpu", bytes=smallest, devices=len(chosen))


def takers(spec: JobCreate, workers: Sequence[Worker]) -> list[Worker]:
    """The workers that consume the queue the job goes to."""
    queue = queue_for(wants_gpu=spec.wants_gpu)
    return [w for w in workers if queue in w.queues]


def check_fits_a_worker(
    spec: JobCreate,
    info: DatasetInfo,
    workers: Sequence[Worker],
    *,
    data: DataFootprint | None = None,
) -> None:
    """Refuse (422) a job that none of the live `workers` (`core.workers.live_workers`) taking
    it could hold; say nothing when none is known. `data` is the job's dataset as the workers
    would hold it."""
    if models.get_architecture(spec.model.arch).task == "regression":
        return  # attention pooling: no layers to dry-run; its memory is its n x n weights
    data = data or DataFootprint()
    needs: dict[tuple[DeviceKind, int], TrainingMemory] = {}
    best: tuple[Capacity, TrainingMemory] | None = None
    for worker in takers(spec, workers):
        offer = capacity(worker, spec.device)
        if offer is None:
            continue
        batch = -(-spec.hyperparameters.batch_size // offer.devices)
        key = (offer.kind, batch)
        if key not in needs:
            needs[key] = estimate(spec, info, batch_size=batch, kind=offer.kind, data=data)
        if needs[key].total <= offer.bytes:
            return
        if best is None or offer.bytes > best[0].bytes:
            best = (offer, needs[key])
    if best is not None:
        raise InvalidInputError(refusal(spec, info, *best, data=data))


def refusal(
    spec: JobCreate,
    info: DatasetInfo,
    offer: Capacity,
    need: TrainingMemory,
    *,
    data: DataFootprint,
) -> str:
    """What the job needs, what the largest worker has, and what would fit."""
    if offer.kind == "gpu":
        where = "GPU memory on one GPU"
        largest = f"the largest GPU among the workers has {offer.bytes / GIB:.1f} GiB"
    else:
        where = "memory on one CPU worker"
        largest = f"the largest CPU worker that takes it has {offer.bytes / GIB:.1f} GiB per job"
    return f"the job needs {need.describe()} of {where}; {largest} ({offer.worker}). " + advice(
        spec, info, offer, need, data=data
    )


def advice(
    spec: JobCreate,
    info: DatasetInfo,
    offer: Capacity,
    need: TrainingMemory,
    *,
    data: DataFootprint,
) -> str:
    """A batch size, an input size or a precision that fit, where some do; else what holds
    the memory."""
    hints = []
    fixed = need.total - need.per_example * need.batch_size
    fitting = (offer.bytes - fixed) // max(need.per_example, 1)
    if fitting >= 1:
        hints.append(f"lower hyperparameters.batch_size (about {fitting * offer.devices} fits)")
    if not info.tabular:
        size = fitting_input_size(spec, info, offer, need, data=data)
        if size is not None:
            batch = need.batch_size
            hints.append(f"lower model.input_size (about {size} fits at batch_size {batch})")
    halved = need.total - need.activations // 2  # bf16 autocast: activations at 2 bytes
    if spec.hyperparameters.precision == "fp32" and halved <= offer.bytes:
        hints.append('use precision "bf16"')
    if hints:
        text = ", or ".join(hints)
        return f"{text[0].upper()}{text[1:]}."
    held = "the model's weights and their gradients"
    if not need.streamed and need.data > need.weights:
        held = (
            f"the dataset's raw samples ({need.data / GIB:.2f} GiB, held resident: a smaller "
            "D2L_RESIDENT_DATA_MAX_BYTES_CPU or _GPU would stream them from disk)"
        )
    return f"Not even one example fits: {held} take most of it. Choose a smaller model."


def fitting_input_size(
    spec: JobCreate,
    info: DatasetInfo,
    offer: Capacity,
    need: TrainingMemory,
    *,
    data: DataFootprint,
) -> int | None:
    """The largest input side below the job's that fits at its batch size (binary search:
    activations grow with the side's square), or None when not even the smallest does."""
    low, high = models.get_architecture(spec.model.arch).min_input_size, spec.input_size_for(info)
    best = None
    while low < high:
        middle = (low + high) // 2
        try:
            trial = estimate(
                spec,
                info,
                batch_size=need.batch_size,
                kind=offer.kind,
                data=data,
                input_size=middle,
            ).total
        except (ValueError, RuntimeError):  # a side the net cannot take (pooled to nothing)
            trial = offer.bytes + 1
        if trial <= offer.bytes:
            best, low = middle, middle + 1
        else:
            high = middle
    return best
