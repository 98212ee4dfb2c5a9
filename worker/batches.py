"""Minibatches at network size, made on the training device from a dataset's compact raw samples.

Two ways to get there, chosen by the raw bytes (`plan_feed`):
- resident: the raw samples (uint8 images at their stored size, float rows) are moved to the
  training device once; each step gathers its rows there and makes them network inputs with
  batched tensor ops (scale, resize, augment, normalise). Memory: the raw bytes plus a batch.
- streamed: the samples stay where they are (a memory map on disk); a `DataLoader`'s worker
  processes gather each step's raw rows into pinned memory, and the same preprocessing runs on
  the device. Memory: a few raw batches in flight.

Both walk the same list of position batches, so the same seed gives the same order, and the
same inputs, either way.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.utils.data import DataLoader, Dataset

from core.datasets import PreparedData, Split
from core.preprocessing import Preprocessing, apply
from core.settings import Settings

Mode = Literal["resident", "streamed"]
Augment = Callable[[torch.Tensor], torch.Tensor]
PREFETCH_BATCHES = 2  # per loader worker
EVAL_INPUT_BYTES = 32 * 2**20  # an evaluation batch at network size stays under this


@dataclass(frozen=True)
class DataPlan:
    """What the worker allows a job's data: raw bytes it may hold on a CPU or a GPU, and the
    loader processes that stream a larger dataset from disk."""

    resident_max_bytes_cpu: int = 2**62
    resident_max_bytes_gpu: int = 2**62
    loader_workers: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> DataPlan:
        return cls(
            resident_max_bytes_cpu=settings.resident_data_max_bytes_cpu,
            resident_max_bytes_gpu=settings.resident_data_max_bytes_gpu,
            loader_workers=settings.data_loader_workers,
        )

    def resident_max_bytes(self, device: torch.device) -> int:
        cpu = device.type == "cpu"
        return self.resident_max_bytes_cpu if cpu else self.resident_max_bytes_gpu


@dataclass(frozen=True)
class Feed:
    """How one job's minibatches reach `device`."""

    device: torch.device
    mode: Mode = "resident"
    loader_workers: int = 0

    def batches(
        self,
        split: Split,
        positions: Sequence[torch.Tensor],
        *,
        augment: Augment | None = None,
        channels_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(network inputs, targets) on the device for each tensor of split positions, in order."""
        for raw, targets in self._raw_batches(split, positions):
            inputs = apply(split.preprocessing, raw, augment=augment)
            if channels_last and inputs.dim() == 4:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            yield inputs, targets

    def _raw_batches(
        self, split: Split, positions: Sequence[torch.Tensor]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.mode == "resident":
            for batch in positions:
                rows = split.rows[batch.to(split.rows.device)]
                yield split.samples[rows], split.labels[rows]
            return
        loader = DataLoader(
            RawRows(split),
            batch_size=None,  # each sampler item is a whole batch of positions
            sampler=list(positions),
            num_workers=self.loader_workers,
            prefetch_factor=PREFETCH_BATCHES if self.loader_workers else None,
            pin_memory=self.device.type == "cuda",
        )
        with children_allowed():  # the loader's workers start here
            loaded = iter(loader)
        for raw, targets in loaded:
            yield (
                raw.to(self.device, non_blocking=True),
                targets.to(self.device, non_blocking=True),
            )

    def describe(self, data: PreparedData) -> dict[str, Any]:
        """What the job's result records about its data."""
        return {
            "mode": self.mode,
            "raw_bytes": data.raw_bytes,
            "raw_dtype": str(data.train.samples.dtype).removeprefix("torch."),
            "loader_workers": self.loader_workers,
        }


@contextmanager
def children_allowed() -> Iterator[None]:
    """Let this process start the loader's workers, even as a Celery prefork child.

    multiprocessing refuses children to a daemonic process (as a prefork child is) because it
    could not join them when it exits. The loader's workers are daemons themselves that torch
    stops with their iterator and that exit on their own when their parent dies, so nothing is
    left behind; the flag is set back at once."""
    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    daemonic = config.get("daemon")
    config["daemon"] = False
    try:
        yield
    finally:
        if daemonic is not None:
            config["daemon"] = daemonic


class RawRows(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """A split read a batch of positions at a time (in a loader worker): raw rows and labels."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.split.rows[positions]
        return self.split.samples[rows], self.split.labels[rows]


def plan_feed(data: PreparedData, device: torch.device, plan: DataPlan) -> Feed:
    """Resident when the raw samples fit the device's budget, else streamed from disk."""
    if data.raw_bytes <= plan.resident_max_bytes(device):
        return Feed(device=device, mode="resident")
    return Feed(device=device, mode="streamed", loader_workers=plan.loader_workers)


def place(data: PreparedData, feed: Feed) -> PreparedData:
    """The data where the feed reads them: moved to the device once when resident."""
    return data.to(feed.device) if feed.mode == "resident" else data


def eval_batch_size(prep: Preprocessing, batch_size: int, *, most: int = 1024) -> int:
    """Evaluation batch: up to `most` samples, fewer when the inputs are large (1024 AlexNet
    inputs at 224x224 would be 200 MB before the first layer), never fewer than training's."""
    side = prep.input_size
    per_sample = 4 * (prep.in_channels * side * side if prep.layout == "image" else side)
    return max(batch_size, min(most, EVAL_INPUT_BYTES // per_sample))


def in_order(count: int, batch_size: int) -> list[torch.Tensor]:
    """Positions 0..count-1 in batches: how a split is evaluated."""
    return list(torch.arange(count).split(batch_size))
