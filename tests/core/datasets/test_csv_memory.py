"""A CSV upload is parsed into typed arrays as it streams from disk: the memory it takes is near
the file's size, not the ~40x of Python lists of cells, on the fast path (numpy's C parser) and
on the exact one (used when the fast one refuses a file, here one starting with a blank line).

Memory is measured with tracemalloc: the bytes Python and numpy allocate, counted exactly."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from core.datasets.csv_upload import read_csv
from core.errors import InvalidInputError

ROWS, FEATURES = 40_000, 10


def write_csv(path: Path, *, leading: str = "") -> tuple[np.ndarray, np.ndarray]:
    """A classification table of ROWS x FEATURES six-decimal numbers; its features as float32
    (as the service stores them) and its labels."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(ROWS, FEATURES))
    labels = rng.integers(0, 3, size=ROWS)
    with path.open("w") as out:
        out.write(leading + ",".join(f"f{i}" for i in range(FEATURES)) + ",label\n")
        np.savetxt(
            out,
            np.column_stack([features, labels]),
            fmt=["%.6f"] * FEATURES + ["%d"],
            delimiter=",",
        )
    return np.loadtxt(path, delimiter=",", skiprows=1 + leading.count("\n"))[:, :-1], labels


@pytest.mark.parametrize("leading", ["", "\n"], ids=["fast path", "exact path"])
def test_a_csv_takes_memory_near_its_size_not_its_cells_as_python_objects(
    tmp_path: Path, leading: str
) -> None:
    path = tmp_path / "table.csv"
    features, labels = write_csv(path, leading=leading)
    tracemalloc.start()
    try:
        table = read_csv(path, filename="table.csv", target=None, task="auto", max_values=10**9)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = path.stat().st_size  # ~3.9 MB, and 1.6 MB of float32 features
    assert peak < 2 * size, f"parsing a {size} B CSV allocated {peak} B at its peak"
    assert table.features.dtype == np.float32
    np.testing.assert_array_equal(table.features, features.astype(np.float32))
    assert table.task == "classification" and table.class_names == ["0", "1", "2"]
    np.testing.assert_array_equal(table.targets, labels)


def test_more_values_than_the_expanded_limit_is_a_413_naming_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    write_csv(path)
    limit = ROWS * (FEATURES + 1) - 1
    with pytest.raises(InvalidInputError, match="D2L_UPLOAD_MAX_EXPANDED_BYTES") as refused:
        read_csv(path, filename="table.csv", target=None, task="auto", max_values=limit)
    assert refused.value.status_code == 413
    assert f"more than {limit} values" in str(refused.value)
    table = read_csv(path, filename="table.csv", target=None, task="auto", max_values=limit + 1)
    assert table.features.shape == (ROWS, FEATURES)
