"""scikit-learn's bundled handwritten digits: real data that needs no download (8x8, 0-16)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

from core.datasets.info import DatasetInfo, RawData
from core.datasets.registry import register_dataset

DIGITS_COUNT = 1797


@cache
def load_digits_raw(root: Path | None = None) -> RawData:
    """The 1,797 digits as (N, 8, 8) float values 0-16 and labels 0-9, cached per process.

    They ship inside scikit-learn, so `root` (the datasets directory) is not read."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return RawData(
        inputs=torch.tensor(bunch.images, dtype=torch.float32),
        targets=torch.tensor(bunch.target, dtype=torch.int64),
    )


register_dataset(
    DatasetInfo(
        name="digits",
        description="scikit-learn's 1,797 handwritten digits, 8x8 grey levels 0-16, 10 classes",
        raw_shape=(8, 8),
        in_channels=1,
        class_names=tuple(str(digit) for digit in range(10)),
        raw_scale=1 / 16,
        loader=load_digits_raw,
        count=lambda root: DIGITS_COUNT,
        raw_itemsize=4,  # float32 grey levels
    )
)
