"""The views inside a net as PNG pictures, drawn from their JSON answers with matplotlib's object
API (core/charts.py says why)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from core.charts import DPI, png_bytes
from core.serving.inside.schemas import (
    ConfusionOut,
    FeatureMapsOut,
    FiltersOut,
    SaliencyOut,
    TopLossesOut,
)

CELL_IN = 0.8  # inches a small map takes in a grid
MAX_ANNOTATED_CLASSES = 20  # beyond this a confusion matrix's cells are too small for numbers
MAX_TICK_LABELS = 40


def picture(values: Any) -> tuple[np.ndarray, str | None]:
    """An image of (H, W) or (C, H, W) values, and the colour map it needs: grey for one
    channel, colour for three (scaled to 0-1 per image), their mean otherwise."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 3 and array.shape[0] == 3:
        low, high = array.min(), array.max()
        rgb = (array - low) / (high - low) if high > low else np.zeros_like(array)
        return rgb.transpose(1, 2, 0), None
    if array.ndim == 3:
        array = array.mean(axis=0)
    return array, "gray"


def show(axes: Axes, values: Any, *, cmap: str | None = None, title: str = "") -> None:
    image, default = picture(values)
    axes.imshow(image, cmap=cmap or default, interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])
    if title:
        axes.set_title(title, fontsize=7)


def grid(rows: int, columns: int) -> tuple[Figure, np.ndarray]:
    figure = Figure(figsize=(max(3.0, columns * CELL_IN), max(1.5, rows * CELL_IN)), dpi=DPI)
    cells = np.atleast_2d(figure.subplots(rows, columns, squeeze=False))
    for cell in cells.flat:
        cell.axis("off")
    return figure, cells


def mosaic(maps: Sequence[Any], *, columns: int, each_scaled: bool = True) -> np.ndarray:
    """Maps of one size side by side in rows of `columns`, each scaled to 0-1 on its own (as
    one small picture each would be) unless `each_scaled` is off, one pixel of gap between
    them: one image to draw, where an axes per map would take seconds to lay out for a ResNet."""
    arrays = [np.asarray(values, dtype=np.float64) for values in maps]
    height, width = arrays[0].shape
    rows = -(-len(arrays) // columns)
    canvas = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), np.nan)
    for index, array in enumerate(arrays):
        low, high = (array.min(), array.max()) if each_scaled else (0.0, 1.0)
        top, left = (index // columns) * (height + 1), (index % columns) * (width + 1)
        scaled = (array - low) / (high - low) if high > low else np.zeros_like(array)
        canvas[top : top + height, left : left + width] = scaled
    return canvas


def feature_maps_png(answer: FeatureMapsOut) -> bytes:
    """The input, then one row per stage: its channels shown side by side."""
    figure = Figure(figsize=(10.0, 0.7 * (len(answer.layers) + 1) + 0.4), dpi=DPI)
    cells = figure.subplots(len(answer.layers) + 1, 1, squeeze=False)[:, 0]
    show(cells[0], answer.image)
    for cell, layer in zip(cells[1:], answer.layers, strict=True):
        show(cell, mosaic(layer.maps, columns=len(layer.maps)), cmap="viridis")
        cell.set_ylabel(
            f"{layer.layer}\n{layer.kind}\n{layer.channels}x{layer.height}x{layer.width}",
            fontsize=6,
            rotation=0,
            ha="right",
            va="center",
        )
    prediction = answer.prediction
    figure.suptitle(
        f"feature maps of model {answer.model_id[:12]}: the input, predicted "
        f"{prediction.label} (p={prediction.probability:.2f}), through each stage",
        fontsize=9,
    )
    return png_bytes(figure)


def filters_png(answer: FiltersOut) -> bytes:
    """The first layer's kernels, eight to a row (colour where the input has three channels)."""
    columns = min(8, max(answer.shown, 1))
    figure = Figure(figsize=(6.0, 6.0 * -(-answer.shown // columns) / columns + 0.6), dpi=DPI)
    axes = figure.subplots()
    kernels = [picture(kernel)[0] for kernel in answer.weights]
    if answer.in_channels == 3:
        show(axes, colour_mosaic(kernels, columns=columns))
    else:
        show(axes, mosaic(kernels, columns=columns), cmap="gray")
    size = "x".join(map(str, answer.kernel_size))
    axes.set_title(f"{answer.layer}: {answer.filters} kernels of {size}", fontsize=9)
    return png_bytes(figure)


def colour_mosaic(kernels: Sequence[np.ndarray], *, columns: int) -> np.ndarray:
    """RGB kernels (H, W, 3), each already scaled to 0-1, side by side."""
    planes = [
        mosaic([kernel[:, :, c] for kernel in kernels], columns=columns, each_scaled=False)
        for c in range(3)
    ]
    return np.nan_to_num(np.stack(planes), nan=1.0)


def saliency_png(answer: SaliencyOut) -> bytes:
    """The input, its gradient saliency, and Grad-CAM laid over it."""
    panels = 3 if answer.grad_cam is not None else 2
    figure = Figure(figsize=(3.0 * panels, 3.4), dpi=DPI)
    axes = figure.subplots(1, panels)
    show(axes[0], answer.image, title=f"input (predicted {answer.prediction.label})")
    show(axes[1], answer.saliency, cmap="hot", title="gradient saliency")
    if answer.grad_cam is not None:
        show(axes[2], answer.image, title=f"Grad-CAM ({answer.grad_cam_layer})")
        axes[2].imshow(np.asarray(answer.grad_cam), cmap="jet", alpha=0.5)
    target = answer.target
    figure.suptitle(f"why {target.label!r} (p={target.probability:.2f})", fontsize=10)
    return png_bytes(figure)


def confusion_png(answer: ConfusionOut) -> bytes:
    """Counts, true class down, predicted class across; each cell's count where it fits."""
    matrix = np.asarray(answer.matrix)
    classes = len(answer.class_names)
    side = min(10.0, max(4.0, 0.45 * classes + 2))
    figure = Figure(figsize=(side, side), dpi=DPI)
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    if classes <= MAX_TICK_LABELS:
        ticks = list(range(classes))
        axes.set_xticks(ticks, labels=answer.class_names, rotation=90, fontsize=7)
        axes.set_yticks(ticks, labels=answer.class_names, fontsize=7)
    if classes <= MAX_ANNOTATED_CLASSES:
        annotate(axes, matrix)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    cut = f" (first {answer.evaluated} of {answer.test_examples})" if answer.cut else ""
    axes.set_title(f"test split{cut}: accuracy {answer.accuracy:.3f}", fontsize=10)
    return png_bytes(figure)


def annotate(axes: Axes, matrix: np.ndarray) -> None:
    light = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > light else "black"
        axes.text(column, row, str(count), ha="center", va="center", fontsize=7, color=colour)


def top_losses_png(answer: TopLossesOut) -> bytes:
    """The examples it gets most wrong, highest loss first: label, prediction, probability."""
    items = answer.items
    columns = min(8, max(len(items), 1))
    rows = -(-len(items) // columns) or 1
    figure, cells = grid(rows, columns)
    figure.set_size_inches(max(3.0, columns * 1.3), max(2.0, rows * 1.9))
    for index, item in enumerate(items):
        cell = cells[index // columns, index % columns]
        cell.axis("on")
        show(cell, sample_picture(item.sample), title=caption(item))
    figure.suptitle("top losses: label / predicted / probability / loss", fontsize=9)
    return png_bytes(figure)


def sample_picture(sample: Sequence[Any]) -> np.ndarray:
    """A raw sample as an image: rows of one feature row are drawn as a strip."""
    array = np.asarray(sample, dtype=np.float64)
    return array[np.newaxis] if array.ndim == 1 else array


def caption(item: Any) -> str:
    return f"{item.label} / {item.prediction}\n{item.probability:.2f} / {item.loss:.2f}"
