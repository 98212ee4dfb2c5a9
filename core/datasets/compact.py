"""Datasets stored once in a compact, memory-mappable form: `x.npy` (uint8 images at their stored
size, or float32 rows) and `y.npy` (labels or targets) in one folder.

Opening one costs no memory: the samples are a memory map, read page by page as minibatches
touch them (and shared, through the page cache, by every process on the machine). A job then
holds its data resident on the training device when they fit, or streams them from this map.
Uploads are written in this form when they are accepted; torchvision's datasets (IDX files,
pickled CIFAR batches) are converted once, the first time a worker reads them, into a folder
named by their files' sizes and times, so a changed file is converted again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

SAMPLES_FILE = "x.npy"
LABELS_FILE = "y.npy"
INFO_FILE = "compact.json"  # written last: a folder without it is incomplete
CACHE_FOLDER = ".compact"


def write_compact(folder: Path, samples: np.ndarray, labels: np.ndarray, **info: object) -> None:
    """Write `samples` and `labels` into `folder` as .npy files (uncompressed: mappable)."""
    np.save(folder / SAMPLES_FILE, np.ascontiguousarray(samples), allow_pickle=False)
    np.save(folder / LABELS_FILE, np.ascontiguousarray(labels), allow_pickle=False)
    (folder / INFO_FILE).write_text(json.dumps(info))


def is_compact(folder: Path) -> bool:
    """Whether `folder` holds a complete compact dataset."""
    return (folder / INFO_FILE).exists()


def read_compact(folder: Path) -> tuple[torch.Tensor, torch.Tensor, dict[str, object]]:
    """(samples as a memory map, labels in memory, the info written with them).

    The map is copy-on-write (`mmap_mode="c"`): nothing is written back, and torch gets an
    array it may treat as writable, without copying it."""
    samples = np.load(folder / SAMPLES_FILE, mmap_mode="c", allow_pickle=False)
    labels = np.load(folder / LABELS_FILE, allow_pickle=False)
    info = json.loads((folder / INFO_FILE).read_text())
    return torch.from_numpy(samples), torch.from_numpy(labels), info


def source_key(paths: tuple[Path, ...]) -> str:
    """A short name for the exact files a dataset was converted from (paths, sizes, times)."""
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def cached_compact(
    root: Path,
    name: str,
    sources: tuple[Path, ...],
    build: Callable[[], tuple[np.ndarray, np.ndarray, dict[str, object]]],
) -> tuple[torch.Tensor, torch.Tensor, dict[str, object]]:
    """The dataset `name` in compact form under `root/.compact/`, converted by `build` the first
    time (or when one of `sources` changed).

    Written in a staging folder and renamed into place, so concurrent workers never read half a
    conversion; when two convert at once, the first rename wins and the other's copy is
    dropped. Conversions of older files are removed (a process still mapping one keeps it
    until it lets go: that is how Linux removes open files)."""
    folder = root / CACHE_FOLDER / f"{name}-{source_key(sources)}"
    if not is_compact(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        samples, labels, info = build()
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
        try:
            write_compact(staging, samples, labels, **info)
            os.rename(staging, folder)
        except OSError:
            if not is_compact(folder):
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for stale in folder.parent.glob(f"{name}-*"):
            if stale != folder and is_compact(stale):
                shutil.rmtree(stale, ignore_errors=True)
    return read_compact(folder)
