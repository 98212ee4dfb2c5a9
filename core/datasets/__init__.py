"""Datasets that jobs can name, and the splits and preprocessing the engine trains on.

`info` says what a dataset is, `registry` names the built-in ones and splits them, `stored`
reads uploads from the datasets directory and `uploads` (with `archives`, `csv_upload`, `images`)
makes them; `queries` reads and writes the uploads' rows, `schemas` is what GET /v1/datasets
answers. The rest are the datasets themselves (`digits`, `torchvision_sets`, `synthetic`,
`regression`) and their file formats (`idx`, `compact`).
"""

from core.datasets import digits as _digits  # noqa: F401  (registers by import)
from core.datasets import regression as _regression  # noqa: F401
from core.datasets import synthetic as _synthetic  # noqa: F401
from core.datasets import torchvision_sets as _torchvision_sets  # noqa: F401
from core.datasets.availability import check_available, fetch_if_missing
from core.datasets.info import DatasetInfo, UnknownDatasetError, is_upload_id
from core.datasets.registry import (
    PreparedData,
    Split,
    clear_raw_cache,
    feature_count,
    get_dataset,
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
