"""Datasets that jobs can name, and the splits and preprocessing the engine trains on."""

from core.datasets import digits as _digits  # noqa: F401  (registers by import)
from core.datasets.registry import (
    DatasetInfo,
    PreparedData,
    Split,
    UnknownDatasetError,
    get_dataset,
    list_datasets,
    prepare,
)

__all__ = [
    "DatasetInfo",
    "PreparedData",
    "Split",
    "UnknownDatasetError",
    "get_dataset",
    "list_datasets",
    "prepare",
]
