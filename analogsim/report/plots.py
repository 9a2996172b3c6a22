"""Figures of any run: accuracy against an axis with 95 % CI bands, heat maps of a grid of two
axes (one panel per value of the others), and training curves."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps

from analogsim.report.formatting import (
    axis_label,
    format_axis_value,
    is_time,
)
from analogsim.report.layout import panel_grid, save, suptitle
from analogsim.report.scales import positions, style_value_axis
from analogsim.report.summaries import ci_basis, sampling, summarise
from analogsim.results import RunData

#: More lines than this get a legend outside the axes and lighter bands.
_MANY_LINES = 6
#: Heat-map cells up to this many per panel carry their value.
_ANNOTATED_CELLS = 120


def reference_lines(run: RunData) -> list[tuple[float, str, str, str]]:
    """Horizontal references a run's attributes give: the digital model, chance (1/K), and the
    baseline and tolerance of a noise-budget curve, as (accuracy fraction, label, line style,
    colour)."""
    lines = []
    if "num_classes" in run.attrs:
        lines.append((1 / float(run.attrs["num_classes"]), "chance (1/K)", ":", "grey"))
    if "digital_accuracy" in run.attrs:
        lines.append((float(run.attrs["digital_accuracy"]), "digital model", "--", "black"))
    if "baseline_accuracy" in run.attrs and "tolerance_pp" in run.attrs:
        baseline = float(np.mean(run.attrs["baseline_accuracy"]))
        tolerance = float(run.attrs["tolerance_pp"])
        lines.append((baseline, "baseline (the card as it is)", "--", "black"))
        lines.append((baseline - tolerance / 100, f"tolerance (baseline − {tolerance:g} pp)", ":",
                      "tab:red"))
    return lines


def _select(array: np.ndarray, dims: Sequence[str], keep: Sequence[str]) -> np.ndarray:
    """``array`` over the axes ``keep``, in that order; every other axis at its first value."""
    sub = array[tuple(slice(None) if d in keep else 0 for d in dims)]
    kept = [d for d in dims if d in keep]
    return np.transpose(sub, [kept.index(d) for d in keep])


def _fixed(run: RunData, dims: Sequence[str], shown: Sequence[str]) -> str:
    """'time = 1 s, adc.bits = 6': the axes a figure holds at their first value."""
    return ", ".join(f"{d} = {format_axis_value(run, d, run.axes[d][0])}"
                     for d in dims if d not in shown)


def plot_curves(run: RunData, path: Path, metric: str = "accuracy", *, x: str | None = None,
                lines: str | None = None) -> Path:
    """Mean metric (in %) against axis ``x``, one line per value of axis ``lines``, with 95 %
    CI bands over the independent unit (seeds, else chips; the title states n and its unit).

    Args:
        x: the x axis (default: the last axis before the replicates). Times are drawn on a
            log axis as durations; other axes as :func:`.scales.style_value_axis` says.
        lines: the axis whose values are the lines (default: the first other axis with more
            than one value; none: one line). Any further axis is held at its first value,
            which the title names.
    """
    mean, low, high = summarise(run, metric)
    dims = run.dims[metric][:-1]
    x = x or dims[-1]
    if lines is None:
        lines = next((d for d in dims if d != x and len(run.axes[d]) > 1), None)
    keep = (lines, x) if lines else (x,)
    mean, low, high = (_select(a, dims, keep).reshape(-1, len(run.axes[x]))
                       for a in (mean, low, high))
    if lines is None:
        labels = ["mean, 95 % CI band"]
    else:
        labels = [str(v) if lines == "method" else format_axis_value(run, lines, v)
                  for v in run.axes[lines]]
    many = len(labels) > _MANY_LINES
    figure, (axes,) = panel_grid(1, 1, (9.5 if many else 7.5, 4.5))
    colours = colormaps["tab20" if len(labels) > 10 else "tab10"].colors
    where = positions(run.axes[x])
    for index, (m, lo, hi, label) in enumerate(zip(mean, low, high, labels, strict=True)):
        colour = colours[index % len(colours)]
        axes.plot(where, 100 * m, marker="o", label=label, color=colour)
        axes.fill_between(where, 100 * lo, 100 * hi, alpha=0.15 if many else 0.25,
                          color=colour, linewidth=0)
    unit, values = run.units.get(x, ""), np.asarray(run.axes[x])
    if values.dtype.kind in "fiu":  # the range measured so far (an evidence curve stops early)
        values = values[np.isfinite(mean).any(axis=0)]
    style_value_axis(axes, "x", values, unit, time=is_time(x, unit))
    for value, label, style, colour in reference_lines(run):
        axes.axhline(100 * value, color=colour, linestyle=style, linewidth=1.2, label=label)
    axes.set_xlabel(axis_label(run, x))
    axes.set_ylabel(f"{metric} [%]  (mean, 95 % CI)")
    fixed = _fixed(run, dims, keep)
    axes.set_title(run.attrs.get("title", run.name) + (f"\n({fixed})" if fixed else "")
                   + f"\n{ci_basis(run, metric)}", fontsize="small")
    axes.grid(True, which="major", alpha=0.3)
    title = None if lines in (None, "method") else axis_label(run, lines)
    if many:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", title=title)
    else:
        axes.legend(title=title, fontsize="small")
    return save(figure, path)


def _facet_title(run: RunData, facets: Sequence[str], index: Sequence[int]) -> str:
    parts = []
    for facet, i in zip(facets, index, strict=True):
        value = format_axis_value(run, facet, run.axes[facet][i])
        parts.append(f"after {value}" if facet.startswith("time") else f"{facet} = {value}")
    return ", ".join(parts)


def _columns(across: int) -> int:
    """Panels per row: one per value of the last facet axis up to 5; beyond, at most 4 per row,
    the rows as even as possible (6 → 3 + 3)."""
    return across if across <= 5 else math.ceil(across / math.ceil(across / 4))


def plot_heatmaps(run: RunData, path: Path, rows: str, cols: str,
                  metric: str = "accuracy") -> Path:
    """Mean metric (in %) over the grid ``rows`` × ``cols``; one panel per combination of the
    other axes (e.g. per drift time, the last of them across), all on one colour scale, each
    cell labelled with its value when the grid is small."""
    mean, _, _ = summarise(run, metric)
    dims = run.dims[metric][:-1]
    facets = [d for d in dims if d not in (rows, cols)]
    grids = np.moveaxis(mean, [dims.index(rows), dims.index(cols)], [-2, -1])
    n_rows, n_cols = grids.shape[-2:]
    grids = 100 * grids.reshape(-1, n_rows, n_cols)
    combinations = list(itertools.product(*(range(len(run.axes[f])) for f in facets)))
    across = len(run.axes[facets[-1]]) if facets else 1
    alone = len(combinations) == 1
    figure, panels = panel_grid(
        len(combinations), _columns(across),
        (max(5.5 if alone else 3.2, 0.5 * n_cols + 1.6),
         max(4.0 if alone else 2.6, 0.35 * n_rows + 1.4)))
    finite = grids[np.isfinite(grids)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 100.0)
    colour_map = colormaps["viridis"].with_extremes(bad="lightgrey")
    image = None
    for axes, index, grid in zip(panels, combinations, grids, strict=True):
        image = axes.imshow(grid, origin="lower", aspect="auto", cmap=colour_map, vmin=low,
                            vmax=high)
        if n_rows * n_cols <= _ANNOTATED_CELLS:
            for (r, c), value in np.ndenumerate(grid):
                if np.isfinite(value):
                    dark = value < low + 0.6 * (high - low)
                    axes.text(c, r, f"{value:.1f}", ha="center", va="center", fontsize="x-small",
                              color="white" if dark else "black")
        axes.set_xticks(range(n_cols), [format_axis_value(run, cols, v) for v in run.axes[cols]])
        axes.set_yticks(range(n_rows), [format_axis_value(run, rows, v) for v in run.axes[rows]])
        if facets:
            axes.set_title(_facet_title(run, facets, index), fontsize="medium")
    figure.supxlabel(axis_label(run, cols))
    figure.supylabel(axis_label(run, rows))
    figure.colorbar(image, ax=panels, label=f"mean {metric} [%] (n = {sampling(run, metric)})")
    suptitle(figure, run.attrs.get("title", run.name))
    return save(figure, path)


def plot_training(runs: list[RunData], path: Path) -> Path:
    """Test accuracy and ‖∇L‖ of the update against epoch, one line per training run."""
    figure, (top, bottom) = panel_grid(2, 1, (7, 3.2), sharey=False)
    for run in runs:
        epochs = np.asarray(run.axes["epoch"]) + 1
        label = run.name.removeprefix("train_")
        top.plot(epochs, 100 * run.data["test_accuracy"], label=label)
        bottom.plot(epochs, run.data["gradient_norm"], label=label)
    top.set_ylabel("test accuracy [%]")
    bottom.set_ylabel("‖∇L‖ of the update (epoch mean)")
    bottom.set_yscale("log")
    bottom.set_xlabel("epoch")
    top.set_title("training curves (a collapsing ‖∇L‖ marks vanishing gradients)")
    for axes in (top, bottom):
        axes.grid(True, alpha=0.3)
    top.legend(fontsize="small", ncol=2)
    return save(figure, path)
