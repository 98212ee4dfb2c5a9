"""Datasets that jobs can name, and the splits and preprocessing the engine trains on."""

from core.datasets import digits as _digits  # noqa: F401  (registers by import)
from core.datasets import regression as _regression  # noqa: F401
from core.datasets import synthetic as _synthetic  # noqa: F401
from core.datasets import torchvision_sets as _torchvision_sets  # noqa: F401
from core.datasets.availability import check_available, fetch_if_missing
from core.datasets.registry import (
    DatasetInfo,
    PreparedData,
    Split,
    UnknownDatasetError,
    clear_raw_cache,
    feature_count,
    get_dataset,
    is_upload_id,
    list_datasets,
    load_raw,
    missing_files,
    prepare,
)

__all__ = [
    "DatasetInfo",
    "PreparedData",
    "Split",
    "UnknownDatasetError",
    "check_available",
    "clear_raw_cache",
    "feature_count",
    "fetch_if_missing",
    "get_dataset",
    "is_upload_id",
    "list_datasets",
    "load_raw",
    "missing_files",
    "prepare",
]
