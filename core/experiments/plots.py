"""The course's learning-curve charts (its `Animator`), drawn as PNG by matplotlib (Agg), with
matplotlib's object API (core/charts.py says why)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from core.charts import DPI, png_bytes

Curve = Sequence[tuple[int, float]]  # (epoch, value)
FIGSIZE = (6.0, 4.0)


def curves_png(
    curves: Mapping[str, Curve],
    *,
    title: str,
    ylabel: str = "",
    emphasis: Sequence[str] = (),
    faint: Sequence[str] = (),
    yscale: str = "linear",
) -> bytes:
    """One chart, epochs on x, one line per curve; `emphasis` drawn thick, `faint` thin and pale.

    `yscale="log"` is the course's choice for losses that span decades (ch. 3.6's polynomials)."""
    figure = Figure(figsize=FIGSIZE, dpi=DPI)
    axes = figure.subplots()
    for label, points in curves.items():
        epochs = [epoch for epoch, _ in points]
        values = [value for _, value in points]
        width = 2.5 if label in emphasis else 0.8 if label in faint else 1.5
        alpha = 0.45 if label in faint else 1.0
        axes.plot(epochs, values, label=label, linewidth=width, alpha=alpha)
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.set_yscale(yscale)
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)
    if curves:
        axes.legend(fontsize=8, loc="best")
    return png_bytes(figure)


def heatmap_png(
    matrix: Sequence[Sequence[float]], *, title: str, xlabel: str, ylabel: str
) -> bytes:
    """The course's `show_heatmaps`: a matrix (e.g. queries x keys attention weights) in colour."""
    figure = Figure(figsize=FIGSIZE, dpi=DPI)
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Reds", aspect="auto")
    figure.colorbar(image, ax=axes)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    return png_bytes(figure)
