"""Datasets kept once in a compact, memory-mapped form: opening one costs no memory, uploads of
the older form still load, and torchvision's files are converted again when they change."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from core.datasets import clear_raw_cache, load_raw, prepare
from core.datasets.compact import CACHE_FOLDER
from core.datasets.idx import write_idx
from core.datasets.stored import DATA_FILE, upload_dir
from core.datasets.uploads import UploadLimits, receive_upload

LIMITS = UploadLimits(
    max_bytes=2**30, max_members=100, max_expanded_bytes=2**30, max_image_pixels=1_000_000
)
MNIST_FILES = {
    "train-images-idx3-ubyte": "train_x",
    "train-labels-idx1-ubyte": "train_y",
    "t10k-images-idx3-ubyte": "test_x",
    "t10k-labels-idx1-ubyte": "test_y",
}


def resident_bytes() -> int:
    """This process's resident memory now (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def upload_npz(root: Path, x: np.ndarray, y: np.ndarray) -> str:
    body = io.BytesIO()
    np.savez(body, x=x, y=y)
    body.seek(0)
    return str(receive_upload(body, filename="big.npz", root=root, limits=LIMITS)["id"])


def test_opening_an_upload_maps_it_instead_of_reading_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4000, 3, 64, 64), dtype=np.uint8)  # 49 MB of pixels
    y = np.arange(4000) % 10
    dataset_id = upload_npz(tmp_path, x, y)
    sample = x[1234].copy()
    del x
    before = resident_bytes()
    raw = load_raw(dataset_id, root=tmp_path)
    assert resident_bytes() - before < 8 * 2**20  # not the 49 MB it holds
    assert raw.inputs.shape == (4000, 3, 64, 64) and raw.inputs.dtype == torch.uint8
    assert torch.equal(raw.inputs[1234], torch.from_numpy(sample))
    assert torch.equal(raw.targets, torch.from_numpy(y).to(torch.int64))


def test_an_upload_stored_in_the_older_npz_form_still_trains(tmp_path: Path) -> None:
    x = np.random.default_rng(1).integers(0, 256, (60, 8, 8), dtype=np.uint8)
    y = np.arange(60) % 3
    dataset_id = upload_npz(tmp_path, x, y)
    folder = upload_dir(tmp_path, dataset_id)
    for compact in ("x.npy", "y.npy", "compact.json"):
        (folder / compact).unlink()
    np.savez(folder / DATA_FILE, x=x[:, None], y=y)  # as uploads were stored before
    clear_raw_cache()
    data = prepare(
        dataset_id, root=tmp_path, input_size=8, val_fraction=0.1, test_fraction=0.2, seed=0
    )
    assert len(data.train) + len(data.val) + len(data.test) == 60
    assert torch.equal(load_raw(dataset_id, root=tmp_path).inputs, torch.from_numpy(x[:, None]))


def write_fashion(root: Path, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train_x": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        "train_y": np.arange(30, dtype=np.uint8) % 10,
        "test_x": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "test_y": np.arange(10, dtype=np.uint8) % 10,
    }
    for name, key in MNIST_FILES.items():
        write_idx(root / "FashionMNIST" / "raw" / name, arrays[key])
    return arrays


def test_torchvision_files_are_converted_once_and_again_when_they_change(tmp_path: Path) -> None:
    first = write_fashion(tmp_path, seed=0)
    clear_raw_cache()
    raw = load_raw("fashion_mnist", root=tmp_path)
    assert np.array_equal(raw.inputs[:30].numpy(), first["train_x"]) and raw.test_from == 30
    (converted,) = (tmp_path / CACHE_FOLDER).iterdir()
    assert (converted / "x.npy").stat().st_size > 40 * 28 * 28  # the images, uncompressed

    images = tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    second = write_fashion(tmp_path, seed=1)
    os.utime(images, ns=(1, images.stat().st_mtime_ns + 10**9))  # a newer file, surely
    clear_raw_cache()
    again = load_raw("fashion_mnist", root=tmp_path)
    assert np.array_equal(again.inputs[:30].numpy(), second["train_x"])
    assert len(list((tmp_path / CACHE_FOLDER).iterdir())) == 1  # the stale copy is gone
