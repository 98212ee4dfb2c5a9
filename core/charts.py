"""What every chart the service draws shares: its resolution, and rendering a figure to PNG.

Figures are made with matplotlib's object API, not pyplot: pyplot keeps every open figure in one
global registry, which the API's CPU pool (several threads drawing at once) must not share."""

from __future__ import annotations

import io

from matplotlib.figure import Figure

DPI = 100  # a 6 x 4 inch figure is 600 x 400 pixels


def png_bytes(figure: Figure) -> bytes:
    """The figure laid out and rendered by Agg, in memory (no display, no file)."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
