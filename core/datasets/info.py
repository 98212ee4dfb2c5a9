"""What a dataset is, known without loading it: its description (`DatasetInfo`), its samples as
stored (`RawData`), and the shape of an upload's id.

The registry (registry.py) names the built-in datasets and stored.py reads the uploaded ones;
both describe a dataset with these types, so they live apart from either.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

UPLOAD_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


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
    # How many samples there are, read without loading them (a file's header, an upload's
    # meta.json), and the bytes of one raw value: what a job's memory estimate counts.
    count: Callable[[Path], int] | None = None
    raw_itemsize: int = 1  # uint8 images; 4 for float rows and float images

    def raw_bytes(self, root: Path) -> int | None:
        """Bytes of every raw sample of the dataset, or None when its size is unknown (or its
        files are not there yet: a worker will download them)."""
        if self.count is None:
            return None
        per_sample = self.raw_itemsize
        for side in self.raw_shape:
            per_sample *= side
        try:
            return self.count(root) * per_sample
        except OSError:
            return None

    @property
    def num_classes(self) -> int:
        """Outputs the net needs: one per class, or the single predicted value of a regression."""
        return 1 if self.task == "regression" else len(self.class_names)

    @property
    def tabular(self) -> bool:
        """Rows of features (raw_shape `(F,)`) rather than images."""
        return len(self.raw_shape) == 1


def is_upload_id(name: str) -> bool:
    """True for names shaped like a server-generated upload id (32 lowercase hex digits)."""
    return bool(UPLOAD_ID_PATTERN.match(name))
