"""Named datasets, their deterministic splits, and the preprocessing fitted on the train split.

A dataset stays in its compact raw form (uint8 images at their stored size, a CSV's float rows),
often memory-mapped from disk; a split is a set of rows of it, and each minibatch is made into
network inputs when it is needed (`Split.batch_inputs`), on the training device. So the memory a
job's data takes is about its raw bytes plus one batch at network size, whatever the network's
input size.

Built-in datasets register by import; uploaded ones are resolved lazily from their `meta.json`
under the datasets directory, so the API and the worker (which share only that directory and the
database) see the same dataset without a registration step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import torch

from core.datasets.info import (
    DatasetInfo,
    RawData,
    UnknownDatasetError,
    is_upload_id,
)
from core.datasets.stored import stored_info
from core.preprocessing import (
    ChannelMoments,
    Preprocessing,
    apply,
    tabular_preprocessing,
    to_network_scale,
)

RAW_CACHE_SIZE = 4  # datasets kept decoded per process (MNIST's 70,000 images are 55 MB)
# The train split's normalisation statistics are taken over at most this many bytes of inputs
# at network size (a seeded sample of rows beyond it), a chunk at a time.
STATS_MAX_BYTES = 256 * 2**20
STATS_CHUNK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class Split:
    """One split: rows of the dataset's raw samples, made into network inputs a batch at a time.

    `samples` and `labels` are the whole dataset's (shared by its splits, never copied per
    split); `rows` are this split's. Positions index the split (0..len-1)."""

    samples: torch.Tensor  # (N, *raw_shape), compact; on the training device when resident
    labels: torch.Tensor  # (N,) class indices, or float targets of a regression
    rows: torch.Tensor  # int64 rows of `samples` in this split
    preprocessing: Preprocessing

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def targets(self) -> torch.Tensor:
        """The split's labels (or targets), in its order."""
        return self.labels[self.rows]

    def raw(self, positions: torch.Tensor) -> torch.Tensor:
        """The raw samples at `positions`, as stored."""
        return self.samples[self.rows[positions]]

    def batch_inputs(
        self,
        positions: torch.Tensor,
        *,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Network inputs of the samples at `positions`, made where the samples are."""
        return apply(self.preprocessing, self.raw(positions), augment=augment)

    def network_inputs(self) -> torch.Tensor:
        """The whole split at network size: for the small tabular sets of regression only."""
        return apply(self.preprocessing, self.samples[self.rows])

    def subset(self, positions: torch.Tensor) -> Split:
        """The samples at `positions` (a fold of k-fold cross-validation): no data is copied."""
        return replace(self, rows=self.rows[positions.to(self.rows.device)])

    def joined(self, other: Split) -> Split:
        """This split's rows followed by `other`'s (train and validation pooled)."""
        if other.samples is not self.samples:
            raise ValueError("only splits of the same samples can be joined")
        return replace(self, rows=torch.cat([self.rows, other.rows]))


@dataclass(frozen=True)
class PreparedData:
    """Train/validation/test splits of one dataset's raw samples and their preprocessing."""

    train: Split
    val: Split
    test: Split
    preprocessing: Preprocessing
    class_names: tuple[str, ...]
    test_indices: torch.Tensor
    task: str = "classification"  # or "regression": what the served model answers

    @property
    def raw_bytes(self) -> int:
        """Bytes of the raw samples every split shares: what keeping them resident costs."""
        samples = self.train.samples
        return samples.numel() * samples.element_size()

    def to(self, device: torch.device) -> PreparedData:
        """The same splits with the shared samples moved to `device` once (resident data)."""
        samples = self.train.samples.to(device)
        labels = self.train.labels.to(device)

        def moved(split: Split) -> Split:
            return replace(split, samples=samples, labels=labels, rows=split.rows.to(device))

        return replace(self, train=moved(self.train), val=moved(self.val), test=moved(self.test))


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> None:
    """Make `info.name` a dataset jobs can name; a second use of a name is a bug."""
    if info.name in _DATASETS:
        raise RuntimeError(f"dataset {info.name!r} is registered twice")
    _DATASETS[info.name] = info


def list_datasets() -> list[str]:
    """Every registered (built-in) dataset name, sorted; uploads are listed from the database."""
    return sorted(_DATASETS)


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
    """Load and split a dataset, and fit its preprocessing on the train split alone.

    Nothing is made at network size here: the splits are rows of the raw samples. For a
    tabular dataset `input_size` is how many of its features (from the first) the net takes;
    its rows are used as they are (see `core.preprocessing.tabular_preprocessing`)."""
    info = get_dataset(name, root=root)
    raw = load_raw(name, root=root)
    train_idx, val_idx, test_idx = dataset_splits(
        raw, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    if info.tabular:
        mean: tuple[float, ...] = (0.0,)
        std: tuple[float, ...] = (1.0,)
        if info.standardize:  # every feature, as the rows store them
            mean, std = train_moments(raw.inputs, train_idx, lambda rows: rows, seed=seed)
        prep = tabular_preprocessing(
            info.raw_shape, input_size=input_size, scale=info.raw_scale, mean=mean, std=std
        )
    else:

        def network_scale(chunk: torch.Tensor) -> torch.Tensor:
            return to_network_scale(
                chunk, in_channels=info.in_channels, input_size=input_size, scale=info.raw_scale
            )

        mean, std = train_moments(raw.inputs, train_idx, network_scale, seed=seed)
        prep = Preprocessing(
            raw_shape=info.raw_shape,
            in_channels=info.in_channels,
            input_size=input_size,
            scale=info.raw_scale,
            mean=mean,
            std=std,
        )

    def split(rows: torch.Tensor) -> Split:
        return Split(samples=raw.inputs, labels=raw.targets, rows=rows, preprocessing=prep)

    return PreparedData(
        train=split(train_idx),
        val=split(val_idx),
        test=split(test_idx),
        preprocessing=prep,
        class_names=info.class_names,
        test_indices=test_idx,
        task=info.task,
    )


def train_moments(
    samples: torch.Tensor,
    rows: torch.Tensor,
    make: Callable[[torch.Tensor], torch.Tensor],
    *,
    seed: int,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (images) or per-feature (rows) mean and std of the train samples as the net
    sees them before normalisation (`make`: scaled and resized), a chunk at a time.

    All train rows when they come to at most `STATS_MAX_BYTES` at that size (Fashion-MNIST at
    28x28: all 60,000), else a seeded sample of that many: resizing all 60,000 images to
    224x224 would take about 90 s on 2 cores, and a sample of 1,300 gives the same statistics
    to about 1%."""
    probe = make(samples[rows[:1]])
    per_row = max(1, probe[:1].numel() * 4)
    chosen = rows
    most = max(2, STATS_MAX_BYTES // per_row)
    if len(rows) > most:
        pick = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:most]
        chosen = rows[pick]
    chosen = chosen.sort().values  # storage order: sequential reads of a memory map
    chunk_rows = max(1, STATS_CHUNK_BYTES // per_row)
    moments = ChannelMoments()
    for begin in range(0, len(chosen), chunk_rows):
        chunk = make(samples[chosen[begin : begin + chunk_rows]]).to(torch.float32)
        moments.add(chunk[:, :, None, None] if chunk.dim() == 2 else chunk)
    return moments.stats()
