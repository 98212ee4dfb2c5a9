"""MNIST, Fashion-MNIST and CIFAR-10 read by torchvision's own dataset classes.

Files live under the datasets directory in torchvision's layout (`MNIST/raw/...`,
`FashionMNIST/raw/...`, `cifar-10-batches-py/...`). They are downloaded only by `fetch`, which
runs when the `download_datasets` setting is on; otherwise they are read from disk, and a job
that names a dataset whose files are absent is refused at submission (see `check_available`).
Each keeps its own test split; validation is drawn from the train split with the job's seed.
The first read converts them once into the compact, memory-mapped form of `core.datasets.compact`
(uint8 arrays), which every later job on the machine maps instead of parsing the files again.
"""

from __future__ import annotations

import gzip
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10, MNIST, FashionMNIST

from core.datasets.compact import cached_compact
from core.datasets.idx import idx_count
from core.datasets.info import DatasetInfo, RawData
from core.datasets.registry import register_dataset

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_COUNT = 60_000
CIFAR10_FILES = (
    *(name for name, _ in CIFAR10.train_list),
    *(name for name, _ in CIFAR10.test_list),
    CIFAR10.meta["filename"],
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


class LocalCIFAR10(CIFAR10):
    """torchvision's CIFAR-10 that checks the batch files are present rather than their md5.

    The md5 sums are those of the official archive, which `download` still verifies; a copy
    placed in the datasets directory by hand (or written by the tests) is read as it is."""

    train_list = [[name, None] for name, _ in CIFAR10.train_list]
    test_list = [[name, None] for name, _ in CIFAR10.test_list]
    meta = {**CIFAR10.meta, "md5": None}


def gunzip_missing(paths: tuple[Path, ...]) -> None:
    """torchvision reads the IDX files uncompressed; unpack any that exist only as `.gz`."""
    for path in paths:
        packed = path.with_name(path.name + ".gz")
        if path.exists() or not packed.exists():
            continue
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        try:
            with gzip.open(packed, "rb") as source, partial.open("wb") as target:
                shutil.copyfileobj(source, target)
            os.replace(partial, path)  # atomic: a concurrent reader sees all or nothing
        finally:
            partial.unlink(missing_ok=True)


Arrays = tuple[np.ndarray, np.ndarray, dict[str, object]]


def load_mnist_family(dataset_class: type[MNIST], root: Path) -> RawData:
    """Train then test images (N, 28, 28) uint8, memory-mapped, with the test split's start."""
    files = tuple(root / dataset_class.__name__ / "raw" / name for name in MNIST_FILES)
    gunzip_missing(files)

    def convert() -> Arrays:
        train = dataset_class(str(root), train=True, download=False)
        test = dataset_class(str(root), train=False, download=False)
        images = torch.cat([train.data, test.data]).numpy()
        labels = torch.cat([train.targets, test.targets]).to(torch.int64).numpy()
        return images, labels, {"test_from": len(train.targets)}

    return compact_raw(root, dataset_class.__name__, files, convert)


def load_cifar10(root: Path) -> RawData:
    """Train then test images as (N, 3, 32, 32) uint8 (torchvision holds them NHWC)."""
    files = tuple(root / CIFAR10_FOLDER / name for name in CIFAR10_FILES)

    def convert() -> Arrays:
        parts = [LocalCIFAR10(str(root), train=train, download=False) for train in (True, False)]
        images = np.concatenate([part.data.transpose(0, 3, 1, 2) for part in parts])
        labels = np.concatenate([np.asarray(part.targets, dtype=np.int64) for part in parts])
        return images, labels, {"test_from": len(parts[0].targets)}

    return compact_raw(root, "cifar10", files, convert)


def compact_raw(
    root: Path, name: str, files: tuple[Path, ...], convert: Callable[[], Arrays]
) -> RawData:
    """The dataset from its compact copy (made from `files` by `convert` the first time)."""
    samples, labels, info = cached_compact(root, name, files, convert)
    return RawData(inputs=samples, targets=labels, test_from=int(str(info["test_from"])))


def mnist_count(dataset_class: type[MNIST], root: Path) -> int:
    raw = root / dataset_class.__name__ / "raw"
    return idx_count(raw / MNIST_FILES[0]) + idx_count(raw / MNIST_FILES[2])


def fetch_mnist_family(dataset_class: type[MNIST], root: Path) -> None:
    for train in (True, False):
        dataset_class(str(root), train=train, download=True)


def fetch_cifar10(root: Path) -> None:
    CIFAR10(str(root), train=True, download=True)


def register_mnist_family(name: str, dataset_class: type[MNIST], description: str) -> None:
    folder = dataset_class.__name__
    register_dataset(
        DatasetInfo(
            name=name,
            description=description,
            raw_shape=(28, 28),
            in_channels=1,
            class_names=tuple(dataset_class.classes),
            raw_scale=1 / 255,
            loader=lambda root: load_mnist_family(dataset_class, root),
            source="torchvision",
            required_files=lambda root: tuple(root / folder / "raw" / f for f in MNIST_FILES),
            fetch=lambda root: fetch_mnist_family(dataset_class, root),
            accepts_gzip=True,
            count=lambda root: mnist_count(dataset_class, root),
        )
    )


register_mnist_family(
    "mnist", MNIST, "LeCun's handwritten digits, 60,000 + 10,000 28x28 grey images, 10 classes"
)
register_mnist_family(
    "fashion_mnist",
    FashionMNIST,
    "Zalando's Fashion-MNIST, 60,000 + 10,000 28x28 grey images of clothing, 10 classes",
)
register_dataset(
    DatasetInfo(
        name="cifar10",
        description="CIFAR-10, 50,000 + 10,000 32x32 colour images, 10 classes",
        raw_shape=(3, 32, 32),
        in_channels=3,
        class_names=CIFAR10_CLASSES,
        raw_scale=1 / 255,
        loader=load_cifar10,
        source="torchvision",
        required_files=lambda root: tuple(root / CIFAR10_FOLDER / f for f in CIFAR10_FILES),
        fetch=fetch_cifar10,
        count=lambda root: CIFAR10_COUNT,
    )
)
