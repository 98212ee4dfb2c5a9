"""Fashion-MNIST-format data of the real size, written offline as torchvision's IDX files.

60,000 + 10,000 28x28 grey images (47 MB + 8 MB), ten classes each drawn around a template of
its own, so a net can learn them; made once per test session (about a second).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.datasets.idx import write_idx

TRAIN, TEST = 60_000, 10_000


def class_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, 28, 28): each class's blurry template (0-177) plus noise (0-76)."""
    coarse = rng.random((10, 7, 7))
    templates = (np.kron(coarse, np.ones((4, 4))) * 178).astype(np.uint8)
    noise = rng.integers(0, 77, (len(labels), 28, 28), dtype=np.uint8)
    return templates[labels] + noise


def write_fashion_format(
    root: Path, *, train: int = TRAIN, test: int = TEST, seed: int = 0
) -> Path:
    """Write the four IDX files under `root/FashionMNIST/raw`, as torchvision reads them."""
    rng = np.random.default_rng(seed)
    raw = root / "FashionMNIST" / "raw"
    for prefix, count in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", class_images(labels, rng))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root
