"""Built-in datasets: torchvision's loaders on real-format files, fake_images, availability."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from core.datasets import (
    check_available,
    clear_raw_cache,
    get_dataset,
    list_datasets,
    load_raw,
    missing_files,
    prepare,
)
from core.datasets.images import decode_image, pixels_to_raw
from core.datasets.torchvision_sets import CIFAR10_CLASSES
from core.errors import InvalidInputError
from core.jobs.schemas import DatasetSpec

MNIST_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def write_idx(path: Path, array: np.ndarray, *, gz: bool) -> None:
    """The IDX format of LeCun's files: 0, 0, type 0x08 (ubyte), ndim, big-endian sizes, data."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as packed:
            packed.write(data)
    else:
        path.write_bytes(data)


def write_mnist(
    root: Path, folder: str, *, train: int = 50, test: int = 20, gz: bool = False, seed: int = 0
) -> dict[str, np.ndarray]:
    """A tiny MNIST-family dataset in torchvision's layout: root/<folder>/raw/<IDX files>."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_x": rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        "train_y": np.arange(train, dtype=np.uint8) % 10,
        "test_x": rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        "test_y": np.arange(test, dtype=np.uint8) % 10,
    }
    raw = root / folder / "raw"
    for name, key in zip(MNIST_NAMES, ("train_x", "train_y", "test_x", "test_y"), strict=True):
        write_idx(raw / name, arrays[key], gz=gz)
    return arrays


def write_cifar10(
    root: Path, *, per_batch: int = 10, test: int = 8, seed: int = 0
) -> dict[str, np.ndarray]:
    """CIFAR-10's python batches (pickled dicts of 3072-byte CHW rows) under cifar-10-batches-py."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rows, labels = [], []
    for name, count in [
        *((f"data_batch_{i}", per_batch) for i in range(1, 6)),
        ("test_batch", test),
    ]:
        data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        batch_labels = [int(v) for v in rng.integers(0, 10, count)]
        with (folder / name).open("wb") as file:
            pickle.dump({"data": data, "labels": batch_labels, "batch_label": name}, file)
        rows.append(data)
        labels.extend(batch_labels)
    with (folder / "batches.meta").open("wb") as file:
        pickle.dump(
            {"label_names": list(CIFAR10_CLASSES)},
            file,
        )
    return {"x": np.concatenate(rows).reshape(-1, 3, 32, 32), "y": np.array(labels)}


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    clear_raw_cache()


def test_the_course_datasets_are_registered() -> None:
    assert {"digits", "mnist", "fashion_mnist", "cifar10", "fake_images"} <= set(list_datasets())
    assert get_dataset("cifar10").raw_shape == (3, 32, 32)
    assert get_dataset("fashion_mnist").class_names[0] == "T-shirt/top"


def test_mnist_reads_uncompressed_idx_files_with_its_own_test_split(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, "MNIST", gz=False)
    raw = load_raw("mnist", root=tmp_path)
    assert raw.inputs.dtype == torch.uint8 and raw.inputs.shape == (70, 28, 28)
    assert raw.test_from == 50
    assert np.array_equal(raw.inputs[:50].numpy(), arrays["train_x"])
    assert np.array_equal(raw.inputs[50:].numpy(), arrays["test_x"])
    assert np.array_equal(raw.targets[50:].numpy(), arrays["test_y"])

    data = prepare(
        "mnist", root=tmp_path, input_size=28, val_fraction=0.2, test_fraction=0.3, seed=1
    )
    assert data.test_indices.tolist() == list(range(50, 70))  # torchvision's test split, all of it
    assert (len(data.train), len(data.val), len(data.test)) == (40, 10, 20)
    again = prepare(
        "mnist", root=tmp_path, input_size=28, val_fraction=0.2, test_fraction=0.3, seed=1
    )
    assert torch.equal(data.val.targets, again.val.targets)
    assert data.preprocessing.scale == pytest.approx(1 / 255)


def test_fashion_mnist_reads_gzipped_idx_files(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, "FashionMNIST", gz=True, seed=3)
    check_available("fashion_mnist", tmp_path)  # the .gz files count as present
    raw = load_raw("fashion_mnist", root=tmp_path)
    assert np.array_equal(raw.inputs[:50].numpy(), arrays["train_x"])
    assert np.array_equal(raw.targets[:50].numpy(), arrays["train_y"])
    assert (tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").exists()


def test_cifar10_reads_the_python_batches_as_chw_uint8(tmp_path: Path) -> None:
    arrays = write_cifar10(tmp_path)
    raw = load_raw("cifar10", root=tmp_path)
    assert raw.inputs.shape == (58, 3, 32, 32) and raw.inputs.dtype == torch.uint8
    assert raw.test_from == 50
    assert np.array_equal(raw.inputs.numpy(), arrays["x"])
    assert raw.targets.tolist() == arrays["y"].tolist()
    data = prepare(
        "cifar10", root=tmp_path, input_size=32, val_fraction=0.1, test_fraction=0.2, seed=0
    )
    assert data.train.network_inputs().shape[1:] == (3, 32, 32) and len(data.test) == 8


def test_missing_files_are_named_in_torchvision_layout(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as refused:
        check_available("fashion_mnist", tmp_path)
    message = str(refused.value)
    for name in MNIST_NAMES:
        assert str(tmp_path / "FashionMNIST" / "raw" / name) in message
    assert "D2L_DOWNLOAD_DATASETS" in message
    with pytest.raises(InvalidInputError, match="cifar-10-batches-py/data_batch_1"):
        check_available("cifar10", tmp_path)
    check_available("cifar10", tmp_path, download=True)  # absent, but the worker may fetch it
    check_available("digits", tmp_path)
    check_available("fake_images", tmp_path)


def test_a_partial_copy_names_only_what_is_missing(tmp_path: Path) -> None:
    write_mnist(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    assert missing_files(get_dataset("mnist"), tmp_path) == [
        tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    ]


def test_unknown_names_and_absent_uploads_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown dataset 'imagenet'"):
        check_available("imagenet", tmp_path)
    with pytest.raises(InvalidInputError, match="no uploaded dataset with id"):
        check_available("0" * 32, tmp_path)


def test_dataset_spec_accepts_builtins_and_upload_ids_only() -> None:
    assert DatasetSpec(name="fashion_mnist").name == "fashion_mnist"
    assert DatasetSpec(name="ab" * 16).name == "ab" * 16  # existence is checked at submission
    for bad in ("imagenet", "AB" * 16, "../" + "a" * 29):
        with pytest.raises(ValidationError):
            DatasetSpec(name=bad)


def test_raw_data_are_cached_per_process_until_a_file_changes(tmp_path: Path) -> None:
    write_mnist(tmp_path, "MNIST")
    first = load_raw("mnist", root=tmp_path)
    assert load_raw("mnist", root=tmp_path) is first
    changed = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    os.utime(changed, ns=(1, 1))
    assert load_raw("mnist", root=tmp_path) is not first


def test_fake_images_are_seeded_rgb_uint8(tmp_path: Path) -> None:
    info = get_dataset("fake_images")
    raw = load_raw("fake_images", root=tmp_path)
    assert raw.inputs.shape == (600, *info.raw_shape) and raw.inputs.dtype == torch.uint8
    assert info.num_classes == 10 and set(raw.targets.tolist()) <= set(range(10))
    clear_raw_cache()
    assert torch.equal(load_raw("fake_images", root=tmp_path / "elsewhere").inputs, raw.inputs)


def test_images_decode_to_the_raw_shape(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(np.full((10, 12, 3), 200, dtype=np.uint8)).save(path)
    assert decode_image(path, raw_shape=(3, 10, 12)).shape == (3, 10, 12)
    grey = decode_image(path, raw_shape=(8, 8))
    assert grey.shape == (8, 8) and grey.dtype == torch.uint8
    assert torch.equal(pixels_to_raw(grey, scale=1 / 255), grey)
    assert pixels_to_raw(
        torch.tensor([255], dtype=torch.uint8), scale=1 / 16
    ).item() == pytest.approx(16)
