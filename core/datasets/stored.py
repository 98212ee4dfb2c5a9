"""Uploaded datasets as they lie in the datasets directory: `uploads/<id>/meta.json` + data.

Both processes resolve an upload id from these files alone, so a job names an upload by its id
and the worker loads it without asking the API or the database. The data are `x.npy` and `y.npy`
(`core.datasets.compact`: memory-mapped, never read whole); uploads made before that form hold
one `data.npz`, read into memory as before.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.datasets.compact import INFO_FILE, LABELS_FILE, SAMPLES_FILE, is_compact, read_compact
from core.datasets.info import DatasetInfo, RawData, UnknownDatasetError, is_upload_id

UPLOADS_FOLDER = "uploads"
META_FILE = "meta.json"
DATA_FILE = "data.npz"  # the form of uploads made before the compact one


def upload_dir(root: Path, dataset_id: str) -> Path:
    """Where the upload `dataset_id` lives under the datasets directory `root`."""
    if not is_upload_id(dataset_id):  # never let a name reach the filesystem unchecked
        raise UnknownDatasetError(f"{dataset_id!r} is not an upload id")
    return root / UPLOADS_FOLDER / dataset_id


def read_meta(root: Path, dataset_id: str) -> dict[str, Any]:
    """The upload's metadata, or UnknownDatasetError when there is no such upload."""
    meta_path = upload_dir(root, dataset_id) / META_FILE
    try:
        meta: dict[str, Any] = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise UnknownDatasetError(
            f"no uploaded dataset with id {dataset_id!r} (POST /v1/datasets uploads one)"
        ) from None
    return meta


def load_upload(root: Path, dataset_id: str, *, table: bool = False) -> RawData:
    """The upload's decoded uint8 images (N, C, H, W), or a CSV's float32 rows (N, F), with
    their labels (or regression targets), never unpickling anything."""
    folder = upload_dir(root, dataset_id)
    if is_compact(folder):
        samples, labels, _ = read_compact(folder)
        wanted = torch.float32 if table else torch.uint8
        targets = labels.to(torch.float32 if labels.is_floating_point() else torch.int64)
        return RawData(
            inputs=samples if samples.dtype == wanted else samples.to(wanted), targets=targets
        )
    with np.load(folder / DATA_FILE, allow_pickle=False) as data:
        x, y = data["x"], data["y"]
        inputs = x.astype(np.float32) if table else x.astype(np.uint8)
        targets = y.astype(np.float32) if y.dtype.kind == "f" else y.astype(np.int64)
        return RawData(inputs=torch.from_numpy(inputs), targets=torch.from_numpy(targets))


@lru_cache(maxsize=64)
def _info(root: Path, dataset_id: str, meta_mtime_ns: int) -> DatasetInfo:
    meta = read_meta(root, dataset_id)
    raw_shape = tuple(int(side) for side in meta["raw_shape"])
    folder = upload_dir(root, dataset_id)
    table = meta["format"] == "csv"
    task = str(meta.get("task", "classification"))
    return DatasetInfo(
        name=dataset_id,
        description=f"uploaded {meta['format']} dataset {meta['name']!r}",
        raw_shape=raw_shape,
        in_channels=1 if table else raw_shape[0],
        class_names=tuple(meta["class_names"]),
        raw_scale=1.0 if table else 1 / 255,
        loader=lambda data_root: load_upload(data_root, dataset_id, table=table),
        source="upload",
        required_files=lambda _root: data_files(folder),
        task=task,
        standardize=table,
        count=lambda _root: int(meta["num_examples"]),
        raw_itemsize=4 if table else 1,  # float32 rows, uint8 images
    )


def data_files(folder: Path) -> tuple[Path, ...]:
    """The files an upload's data are in: the compact form, or an older upload's .npz."""
    if (folder / DATA_FILE).exists():
        return (folder / META_FILE, folder / DATA_FILE)
    return (folder / META_FILE, folder / SAMPLES_FILE, folder / LABELS_FILE, folder / INFO_FILE)


def stored_info(dataset_id: str, *, root: Path) -> DatasetInfo:
    """The upload `dataset_id` as a DatasetInfo (cached until its meta.json changes)."""
    meta_path = upload_dir(root, dataset_id) / META_FILE
    try:
        mtime = meta_path.stat().st_mtime_ns
    except FileNotFoundError:
        read_meta(root, dataset_id)  # raises the error that says what to do
        raise
    return _info(root, dataset_id, mtime)
