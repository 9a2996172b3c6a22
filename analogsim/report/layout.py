"""Figure layout shared by the report's plots: grids of small multiples, saving to PNG."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Resolution of every PNG, in dots per inch.
DPI = 120


def panel_grid(count: int, ncols: int, panel_size: tuple[float, float] = (3.4, 2.8), *,
               sharex: bool = True, sharey: bool = True) -> tuple[Figure, list[Axes]]:
    """``count`` panels in rows of ``ncols`` (constrained layout), unused cells hidden.

    Args:
        panel_size: width, height of one panel, in inches.

    Returns:
        The figure and its ``count`` panels in reading order. With shared x, a panel whose
        neighbour below is hidden keeps its tick labels.
    """
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    figure, grid = plt.subplots(nrows, ncols, squeeze=False, sharex=sharex, sharey=sharey,
                                figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 0.6),
                                layout="constrained")
    panels = list(grid.flat)
    for index, axes in enumerate(panels):
        if index >= count:
            axes.set_visible(False)
        elif sharex and index + ncols >= count:
            axes.xaxis.set_tick_params(labelbottom=True)
    return figure, panels[:count]


def suptitle(figure: Figure, text: str) -> None:
    """The figure's title, wrapped to its width (about 10 characters per inch at the default
    title size)."""
    figure.suptitle(textwrap.fill(text, max(40, int(10 * figure.get_figwidth()))))


def save(figure: Figure, path: Path) -> Path:
    """Write the figure as a PNG and free it."""
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path
