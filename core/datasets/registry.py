"""Named datasets, their deterministic splits, and the preprocessing fitted on the train split.

Small datasets are held as tensors, preprocessed once, instead of decoded per item each epoch.
Built-in datasets register by import; uploaded ones are resolved lazily from their `meta.json`
under the datasets directory, so the API and the worker (which share only that directory and the
database) see the same dataset without a registration step.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from core.preprocessing import (
    Preprocessing,
    apply,
    channel_stats,
    feature_stats,
    tabular_preprocessing,
    to_network_scale,
)

UPLOAD_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
RAW_CACHE_SIZE = 4  # datasets kept decoded per process (MNIST's 70,000 images are 55 MB)


class UnknownDatasetError(ValueError):
    """A dataset name that is not registered (or an upload id with no data behind it)."""


@dataclass(frozen=True)
class RawData:
    """Samples exactly as the dataset stores them, with integer labels (float targets for a
    regression dataset).

    `test_from` marks where the dataset's own test split begins (torchvision's train/test
    files); None means the test split is drawn from all samples with the seed."""

    inputs: torch.Tensor
    targets: torch.Tensor
    test_from: int | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """What a job and the predict endpoint need to know about a dataset without loading it."""

    name: str
    description: str
    raw_shape: tuple[int, ...]
    in_channels: int
    class_names: tuple[str, ...]
    raw_scale: float
    loader: Callable[[Path], RawData]  # gets the datasets directory
    source: str = "builtin"  # builtin | torchvision | synthetic | upload
    # The files the loader reads under the datasets directory.
    required_files: Callable[[Path], tuple[Path, ...]] | None = None
    fetch: Callable[[Path], None] | None = None  # downloads into the datasets directory
    # A file also counts as present gzipped beside itself (path + ".gz"), as MNIST's mirrors
    # serve them; the loader unpacks it.
    accepts_gzip: bool = False
    # "classification" (integer labels, one output per class) or "regression" (one float target
    # per sample, one output; `class_names` then names that target).
    task: str = "classification"
    # Tabular only: standardise each feature with the train split's mean and std (uploaded CSVs,
    # whose columns come in any units); the course's synthetic data are used as generated.
    standardize: bool = False

    @property
    def num_classes(self) -> int:
        """Outputs the net needs: one per class, or the single predicted value of a regression."""
        return 1 if self.task == "regression" else len(self.class_names)

    @property
    def tabular(self) -> bool:
        """Rows of features (raw_shape `(F,)`) rather than images."""
        return len(self.raw_shape) == 1


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
    task: str = "classification"  # or "regression": what the served model answers


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> None:
    """Make `info.name` a dataset jobs can name; a second use of a name is a bug."""
    if info.name in _DATASETS:
        raise RuntimeError(f"dataset {info.name!r} is registered twice")
    _DATASETS[info.name] = info


def list_datasets() -> list[str]:
    """Every registered (built-in) dataset name, sorted; uploads are listed from the database."""
    return sorted(_DATASETS)


def is_upload_id(name: str) -> bool:
    """True for names shaped like a server-generated upload id (32 lowercase hex digits)."""
    return bool(UPLOAD_ID_PATTERN.match(name))


def get_dataset(name: str, *, root: Path | None = None) -> DatasetInfo:
    """The dataset called `name`, or an error that lists the names there are.

    Uploaded datasets need `root` (the datasets directory) because they live there, not here."""
    if name in _DATASETS:
        return _DATASETS[name]
    if is_upload_id(name):
        if root is None:
            raise UnknownDatasetError(
                f"dataset {name!r} looks like an upload id; it is resolved with the datasets dir"
            )
        from core.datasets.stored import stored_info  # stored.py imports this module

        return stored_info(name, root=root)
    raise UnknownDatasetError(
        f"unknown dataset {name!r}; choose one of: {', '.join(list_datasets())} "
        "or the id of an uploaded dataset"
    )


def feature_count(info: DatasetInfo, requested: int | None) -> int:
    """How many of a tabular dataset's features the net takes: the first `requested` (a job's
    `model.input_size`), or all of them when it names none.

    This is how a job picks the polynomial's degree on `poly_regression` (ch. 3.6): 2 features
    underfit, 4 fit, all 20 overfit."""
    available = info.raw_shape[0]
    if requested is None:
        return available
    if not 1 <= requested <= available:
        raise ValueError(
            f"{info.name} has {available} features; model.input_size (how many of them the "
            f"net takes, from the first) must be 1-{available}, got {requested}"
        )
    return requested


def gzipped(path: Path) -> Path:
    return path.with_name(path.name + ".gz")


def missing_files(info: DatasetInfo, root: Path) -> list[Path]:
    """The files `info` needs under `root` that are not there (empty: it can be loaded)."""
    if info.required_files is None:
        return []
    return [
        path
        for path in info.required_files(root)
        if not (path.exists() or (info.accepts_gzip and gzipped(path).exists()))
    ]


def _stamp(info: DatasetInfo, root: Path) -> tuple[tuple[str, int], ...]:
    """Modification times of the dataset's files: a changed file is a new cache key."""
    if info.required_files is None:
        return ()
    stamps = []
    for path in info.required_files(root):
        existing = path if path.exists() else gzipped(path)
        stamps.append((str(existing), existing.stat().st_mtime_ns if existing.exists() else 0))
    return tuple(stamps)


@lru_cache(maxsize=RAW_CACHE_SIZE)
def _cached_raw(name: str, root: Path, stamp: tuple[tuple[str, int], ...]) -> RawData:
    return get_dataset(name, root=root).loader(root)


def load_raw(name: str, *, root: Path) -> RawData:
    """The raw samples of `name`, decoded once per process and reused across jobs.

    Keyed by name, root and the files' mtimes, bounded to a few datasets."""
    info = get_dataset(name, root=root)
    return _cached_raw(name, root, _stamp(info, root))


def clear_raw_cache() -> None:
    """Forget every decoded dataset (after a delete, or in tests)."""
    _cached_raw.cache_clear()


def split_indices(
    count: int, *, val_fraction: float, test_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Deterministic train/val/test index sets: the same seed gives the same split anywhere."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(count * test_fraction))
    n_val = round(count * val_fraction)
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def dataset_splits(
    raw: RawData, *, val_fraction: float, test_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train/val/test indices: the dataset's own test split where it has one (then
    `test_fraction` is unused and validation is drawn from its train part), else drawn by seed."""
    if raw.test_from is None:
        return split_indices(
            len(raw.targets), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
        )
    order = torch.randperm(raw.test_from, generator=torch.Generator().manual_seed(seed))
    n_val = round(raw.test_from * val_fraction)
    test = torch.arange(raw.test_from, len(raw.targets))
    return order[n_val:], order[:n_val], test


def prepare(
    name: str,
    *,
    root: Path,
    input_size: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> PreparedData:
    """Load, split and preprocess a dataset; normalisation statistics come from train alone.

    For a tabular dataset `input_size` is how many of its features (from the first) the net
    takes; its rows are used as they are (see `core.preprocessing.tabular_preprocessing`)."""
    info = get_dataset(name, root=root)
    raw = load_raw(name, root=root)
    train_idx, val_idx, test_idx = dataset_splits(
        raw, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    if info.tabular:
        mean, std = feature_stats(raw.inputs[train_idx]) if info.standardize else ((0.0,), (1.0,))
        prep = tabular_preprocessing(
            info.raw_shape, input_size=input_size, scale=info.raw_scale, mean=mean, std=std
        )
    else:
        prep = _image_preprocessing(info, raw.inputs[train_idx], input_size=input_size)

    def split(indices: torch.Tensor) -> Split:
        return Split(inputs=apply(prep, raw.inputs[indices]), targets=raw.targets[indices])

    return PreparedData(
        train=split(train_idx),
        val=split(val_idx),
        test=split(test_idx),
        preprocessing=prep,
        class_names=info.class_names,
        test_indices=test_idx,
        task=info.task,
    )


def _image_preprocessing(
    info: DatasetInfo, raw_train: torch.Tensor, *, input_size: int
) -> Preprocessing:
    """Scale and resize, then normalise with the train split's per-channel mean and std."""
    scaled_train = to_network_scale(
        raw_train,
        in_channels=info.in_channels,
        input_size=input_size,
        scale=info.raw_scale,
    )
    mean, std = channel_stats(scaled_train)
    return Preprocessing(
        raw_shape=info.raw_shape,
        in_channels=info.in_channels,
        input_size=input_size,
        scale=info.raw_scale,
        mean=mean,
        std=std,
    )
