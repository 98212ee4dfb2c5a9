"""An uploaded CSV: a header, numeric feature columns and one target column.

The target's task is chosen with the upload (`classification` or `regression`), or `auto`:
text labels, or at most `AUTO_MAX_CLASSES` distinct whole numbers, make a classification; other
numbers a regression. Errors name the line and column to fix; nothing is evaluated, only parsed
as numbers (a CSV is data, never code).

Memory stays near the size of the arrays a CSV makes (float32 features, the target column as
fixed-width strings), never the ~40x of Python lists of cells: numpy's C parser (`np.loadtxt`)
reads the file as it streams from disk, straight into those arrays. Whatever it refuses or
reads differently (a bad cell, a ragged or blank-but-for-commas row, a header not on line 1) is
read again by the exact path, `csv` a block of rows at a time, which says which line to fix.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from core.errors import InvalidInputError, TooLargeError

Task = Literal["auto", "classification", "regression"]
AUTO_MAX_CLASSES = 20
BLOCK_CELLS = 1 << 14  # cells the exact path holds as Python strings at once (~1 MB)


@dataclass(frozen=True)
class Table:
    """Feature rows (N, F) float32, targets (int64 labels or float32 values), and their names."""

    features: np.ndarray
    targets: np.ndarray
    feature_names: list[str]
    target: str
    task: str  # classification | regression
    class_names: list[str]  # the labels; for a regression, the target's name


def number(cell: str, *, filename: str, line: int, column: str) -> float:
    """A finite float, or a 422 naming the cell."""
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        shown = cell.strip() or "an empty cell"
        raise InvalidInputError(
            f"{filename}: line {line}, column {column!r}: {shown!r} is not a finite number "
            "(features must be numeric; fill or drop missing values)"
        )
    return value


@dataclass(frozen=True)
class Columns:
    """The data rows as arrays: features (N, F) float32 and the stripped target labels (N,)."""

    features: np.ndarray
    labels: np.ndarray


def open_text(path: Path) -> IO[str]:
    return path.open(encoding="utf-8-sig", newline="")


def data_rows(text: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank row, read as the file streams in."""
    reader = csv.reader(text)
    for row in reader:
        if "".join(row).strip():
            yield reader.line_num, row


def read_header(path: Path, filename: str) -> tuple[list[str], int]:
    """The column names and the line they are on."""
    with open_text(path) as text:
        rows = data_rows(text)
        first, second = next(rows, None), next(rows, None)
    if first is None or second is None:
        raise InvalidInputError(f"{filename}: needs a header row and at least one data row")
    line, cells = first
    header = [name.strip() for name in cells]
    if any(not name for name in header) or len(set(header)) != len(header):
        raise InvalidInputError(f"{filename}: the header must name every column once: {header}")
    if len(header) < 2:
        raise InvalidInputError(f"{filename}: needs at least one feature column and a target")
    return header, line


def too_many_values(filename: str, max_values: int) -> TooLargeError:
    return TooLargeError(
        f"{filename}: more than {max_values} values (D2L_UPLOAD_MAX_EXPANDED_BYTES / 4 bytes "
        "of float32); upload fewer rows or columns"
    )


def parsed_columns(path: Path, *, width: int, target_at: int) -> Columns | None:
    """Both arrays by numpy's C parser (the header on line 1), or None where it refuses
    anything or reads a feature that is not finite: the exact path then says what."""
    options: dict[str, Any] = {"delimiter": ",", "comments": None, "quotechar": '"', "skiprows": 1}
    feature_columns = [column for column in range(width) if column != target_at]
    try:
        with open_text(path) as text:
            features = np.loadtxt(
                text, dtype=np.float32, usecols=feature_columns, ndmin=2, **options
            )
        with open_text(path) as text:
            labels = np.loadtxt(text, dtype=str, usecols=[target_at], ndmin=1, **options)
    except ValueError:  # a cell that is not a number, or a row of another width
        return None
    if len(features) == 0 or len(labels) != len(features) or not np.isfinite(features).all():
        return None
    return Columns(features, np.char.strip(labels))


def convert_block(
    block: list[tuple[int, list[str]]], *, header: list[str], target_at: int, filename: str
) -> Columns:
    """One block of rows -> its arrays; a 422 names the line (and column) of the first problem."""
    width = len(header)
    for line, row in block:
        if len(row) != width:
            raise InvalidInputError(
                f"{filename}: line {line} has {len(row)} fields; the header has {width}"
            )
    names = header[:target_at] + header[target_at + 1 :]
    features = np.empty((len(block), width - 1), dtype=np.float32)
    for index, (line, row) in enumerate(block):
        cells = row[:target_at] + row[target_at + 1 :]
        features[index] = [
            number(cell, filename=filename, line=line, column=column)
            for column, cell in zip(names, cells, strict=True)
        ]
    labels = np.array([row[target_at] for _, row in block], dtype=str)
    return Columns(features, np.char.strip(labels))


def streamed_columns(
    path: Path, *, header: list[str], target_at: int, filename: str, max_values: int
) -> Columns:
    """The exact path: `csv` a block of rows at a time (`BLOCK_CELLS` cells), into arrays."""
    block_rows = max(1, BLOCK_CELLS // len(header))
    blocks: list[Columns] = []
    values = 0
    with open_text(path) as text:
        rows = data_rows(text)
        next(rows)  # the header
        while block := list(islice(rows, block_rows)):
            values += len(block) * len(header)
            if values > max_values:
                raise too_many_values(filename, max_values)
            blocks.append(
                convert_block(block, header=header, target_at=target_at, filename=filename)
            )
    features = np.concatenate([block.features for block in blocks])
    return Columns(features, np.concatenate([block.labels for block in blocks]))


def line_of_row(path: Path, index: int) -> int:
    """The line in the file of data row `index` (0: the first row after the header)."""
    with open_text(path) as text:
        line, _ = next(islice(data_rows(text), index + 1, None))
    return line


def read_columns(
    path: Path,
    *,
    header: list[str],
    header_line: int,
    target_at: int,
    filename: str,
    max_values: int,
) -> Columns:
    """Every data row as arrays, by the fast path where it reads the file as the exact one
    would; 413 past `max_values` cells.

    A number takes at least two bytes with its comma or newline, so a file of at most
    2 * `max_values` bytes cannot hold too many; a bigger one is read by the exact path,
    which counts as it goes (`np.loadtxt`'s own `max_rows` would allocate that many rows)."""
    if header_line == 1 and path.stat().st_size < 2 * max_values:
        columns = parsed_columns(path, width=len(header), target_at=target_at)
        if columns is not None:
            return columns
    return streamed_columns(
        path, header=header, target_at=target_at, filename=filename, max_values=max_values
    )


def choose_task(labels: np.ndarray, requested: Task) -> str:
    """The task the target column makes (see the module's docstring for `auto`)."""
    if requested != "auto":
        return requested
    try:
        values = labels.astype(np.float64)
    except ValueError:
        return "classification"
    whole = bool(np.all(np.isfinite(values) & (values == np.floor(values))))
    few = len(np.unique(values)) <= AUTO_MAX_CLASSES
    return "classification" if whole and few else "regression"


def class_labels(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Labels 0..K-1 and the K names, in numeric order when every label is a number."""
    names, codes = np.unique(labels, return_inverse=True)
    try:
        order = np.argsort(names.astype(np.float64), kind="stable")
    except ValueError:
        order = np.arange(len(names))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[codes].astype(np.int64), [str(name) for name in names[order]]


def regression_targets(labels: np.ndarray, *, path: Path, target: str, filename: str) -> np.ndarray:
    """The target column as finite float32 values; a 422 names the first line that is not."""
    try:
        values = labels.astype(np.float64)
    except ValueError:
        values = np.array([_float_or_nan(label) for label in labels.tolist()])
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        line = line_of_row(path, int(bad[0]))
        number(str(labels[bad[0]]), filename=filename, line=line, column=target)  # raises
    return values.astype(np.float32)


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_csv(
    path: Path, *, filename: str, target: str | None, task: Task, max_values: int
) -> Table:
    """Parse and check the upload; `target` is the label column (default: the last)."""
    try:
        header, header_line = read_header(path, filename)
        target = target if target is not None else header[-1]
        if target not in header:
            raise InvalidInputError(f"{filename}: no column {target!r}; the columns are {header}")
        columns = read_columns(
            path,
            header=header,
            header_line=header_line,
            target_at=header.index(target),
            filename=filename,
            max_values=max_values,
        )
    except UnicodeDecodeError:
        raise InvalidInputError(f"{filename}: not UTF-8 text; save the CSV as UTF-8") from None
    except csv.Error as error:
        raise InvalidInputError(f"{filename}: unreadable CSV ({error})") from None
    feature_names = [name for name in header if name != target]
    if choose_task(columns.labels, task) == "regression":
        return Table(
            features=columns.features,
            targets=regression_targets(columns.labels, path=path, target=target, filename=filename),
            feature_names=feature_names,
            target=target,
            task="regression",
            class_names=[target],
        )
    empty = np.flatnonzero(columns.labels == "")
    if len(empty):
        line = line_of_row(path, int(empty[0]))
        raise InvalidInputError(f"{filename}: line {line} has no value in column {target!r}")
    targets, names = class_labels(columns.labels)
    if len(names) < 2:
        raise InvalidInputError(
            f"{filename}: a classification needs at least 2 classes in {target!r}; it has {names}"
        )
    return Table(
        features=columns.features,
        targets=targets,
        feature_names=feature_names,
        target=target,
        task="classification",
        class_names=names,
    )
