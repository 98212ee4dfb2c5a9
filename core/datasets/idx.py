"""LeCun's IDX format (MNIST, Fashion-MNIST): a header of sizes, then the raw bytes.

torchvision's dataset classes read these files; this module reads only a header (how many items
a file holds, for a job's memory estimate, without loading it) and writes files in the format
(the benchmarks and the tests make Fashion-MNIST-format data of the real size offline).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

UBYTE = 0x08


def idx_count(path: Path) -> int:
    """The number of items `path` holds, from its header; `path.gz` is read when `path` is not
    there (as the mirrors serve the files)."""
    if path.exists():
        with path.open("rb") as file:
            header = file.read(8)
    else:
        with gzip.open(path.with_name(path.name + ".gz"), "rb") as file:
            header = file.read(8)
    return int(struct.unpack(">I", header[4:8])[0])


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write `array` as an IDX file of unsigned bytes: 0, 0, type 0x08, ndim, big-endian sizes."""
    header = struct.pack(">HBB", 0, UBYTE, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        file.write(header)
        file.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())
