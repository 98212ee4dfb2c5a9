"""Named datasets, their deterministic splits, and the preprocessing fitted on the train split.

Small datasets are held as tensors, preprocessed once, instead of decoded per item each epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from core.preprocessing import Preprocessing, apply, channel_stats, to_network_scale


class UnknownDatasetError(ValueError):
    """A dataset name that is not registered."""


@dataclass(frozen=True)
class RawData:
    """Samples exactly as the dataset stores them, with integer labels."""

    inputs: torch.Tensor
    targets: torch.Tensor


@dataclass(frozen=True)
class DatasetInfo:
    """What a job and the predict endpoint need to know about a dataset without loading it."""

    name: str
    description: str
    raw_shape: tuple[int, ...]
    in_channels: int
    class_names: tuple[str, ...]
    raw_scale: float
    loader: Callable[[], RawData]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class Split:
    """One split, preprocessed: network inputs and their labels."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.targets)


@dataclass(frozen=True)
class PreparedData:
    """Train/validation/test splits and the preprocessing that produced them."""

    train: Split
    val: Split
    test: Split
    preprocessing: Preprocessing
    class_names: tuple[str, ...]
    test_indices: torch.Tensor


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> None:
    """Make `info.name` a dataset jobs can name; a second use of a name is a bug."""
    if info.name in _DATASETS:
        raise RuntimeError(f"dataset {info.name!r} is registered twice")
    _DATASETS[info.name] = info


def list_datasets() -> list[str]:
    """Every registered dataset name, sorted."""
    return sorted(_DATASETS)


def get_dataset(name: str) -> DatasetInfo:
    """The dataset called `name`, or an error that lists the names there are."""
    try:
        return _DATASETS[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; choose one of: {', '.join(list_datasets())}"
        ) from None


def split_indices(
    count: int, *, val_fraction: float, test_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Deterministic train/val/test index sets: the same seed gives the same split anywhere."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(count * test_fraction))
    n_val = round(count * val_fraction)
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def prepare(
    name: str, *, input_size: int, val_fraction: float, test_fraction: float, seed: int
) -> PreparedData:
    """Load, split and preprocess a dataset; normalisation statistics come from train alone."""
    info = get_dataset(name)
    raw = info.loader()
    train_idx, val_idx, test_idx = split_indices(
        len(raw.targets), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    scaled_train = to_network_scale(
        raw.inputs[train_idx],
        in_channels=info.in_channels,
        input_size=input_size,
        scale=info.raw_scale,
    )
    mean, std = channel_stats(scaled_train)
    prep = Preprocessing(
        raw_shape=info.raw_shape,
        in_channels=info.in_channels,
        input_size=input_size,
        scale=info.raw_scale,
        mean=mean,
        std=std,
    )

    def split(indices: torch.Tensor) -> Split:
        return Split(inputs=apply(prep, raw.inputs[indices]), targets=raw.targets[indices])

    return PreparedData(
        train=split(train_idx),
        val=split(val_idx),
        test=split(test_idx),
        preprocessing=prep,
        class_names=info.class_names,
        test_indices=test_idx,
    )
