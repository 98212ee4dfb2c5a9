"""An uploaded CSV: a header, numeric feature columns and one target column.

The target's task is chosen with the upload (`classification` or `regression`), or `auto`:
text labels, or at most `AUTO_MAX_CLASSES` distinct whole numbers, make a classification; other
numbers a regression. Errors name the line and column to fix; nothing is evaluated, only parsed
as numbers (a CSV is data, never code).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from core.errors import InvalidInputError

Task = Literal["auto", "classification", "regression"]
AUTO_MAX_CLASSES = 20


@dataclass(frozen=True)
class Table:
    """Feature rows (N, F) float32, targets (int64 labels or float32 values), and their names."""

    features: np.ndarray
    targets: np.ndarray
    feature_names: list[str]
    target: str
    task: str  # classification | regression
    class_names: list[str]  # the labels; for a regression, the target's name


def read_rows(path: Path, filename: str) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows; blank lines are skipped."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{filename}: not UTF-8 text; save the CSV as UTF-8") from None
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise InvalidInputError(f"{filename}: unreadable CSV ({error})") from None
    if len(rows) < 2:
        raise InvalidInputError(f"{filename}: needs a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    if any(not name for name in header) or len(set(header)) != len(header):
        raise InvalidInputError(f"{filename}: the header must name every column once: {header}")
    if len(header) < 2:
        raise InvalidInputError(f"{filename}: needs at least one feature column and a target")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InvalidInputError(
                f"{filename}: line {line} has {len(row)} fields; the header has {len(header)}"
            )
    return header, rows[1:]


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


def choose_task(labels: list[str], requested: Task) -> str:
    """The task the target column makes (see the module's docstring for `auto`)."""
    if requested != "auto":
        return requested
    try:
        values = [float(label) for label in labels]
    except ValueError:
        return "classification"
    whole = all(value.is_integer() for value in values)
    return "classification" if whole and len(set(values)) <= AUTO_MAX_CLASSES else "regression"


def class_labels(labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Labels 0..K-1 and the K names, in numeric order when every label is a number."""
    distinct = set(labels)
    try:
        names = sorted(distinct, key=float)
    except ValueError:
        names = sorted(distinct)
    index = {name: position for position, name in enumerate(names)}
    return np.array([index[label] for label in labels], dtype=np.int64), names


def read_csv(
    path: Path, *, filename: str, target: str | None, task: Task, max_values: int
) -> Table:
    """Parse and check the upload; `target` is the label column (default: the last)."""
    header, rows = read_rows(path, filename)
    target = target if target is not None else header[-1]
    if target not in header:
        raise InvalidInputError(f"{filename}: no column {target!r}; the columns are {header}")
    if len(rows) * len(header) > max_values:
        raise InvalidInputError(f"{filename}: more than {max_values} values")
    target_at = header.index(target)
    feature_names = [name for name in header if name != target]
    features = np.empty((len(rows), len(feature_names)), dtype=np.float32)
    for row_index, row in enumerate(rows):
        cells = row[:target_at] + row[target_at + 1 :]
        for column_index, cell in enumerate(cells):
            features[row_index, column_index] = number(
                cell, filename=filename, line=row_index + 2, column=feature_names[column_index]
            )
    labels = [row[target_at].strip() for row in rows]
    chosen = choose_task(labels, task)
    if chosen == "regression":
        values = [
            number(label, filename=filename, line=line, column=target)
            for line, label in enumerate(labels, start=2)
        ]
        return Table(
            features=features,
            targets=np.array(values, dtype=np.float32),
            feature_names=feature_names,
            target=target,
            task="regression",
            class_names=[target],
        )
    if any(not label for label in labels):
        line = labels.index("") + 2
        raise InvalidInputError(f"{filename}: line {line} has no value in column {target!r}")
    targets, names = class_labels(labels)
    if len(names) < 2:
        raise InvalidInputError(
            f"{filename}: a classification needs at least 2 classes in {target!r}; it has {names}"
        )
    return Table(
        features=features,
        targets=targets,
        feature_names=feature_names,
        target=target,
        task="classification",
        class_names=names,
    )
