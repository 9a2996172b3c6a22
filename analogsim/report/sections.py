"""The page section of a run of any kind without a dedicated one: its figure (curves or heat
maps, chosen from its axes) and its table of mean accuracy with 95 % CI per point. Sweeps over
card fields and noise-budget curves are drawn this way."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analogsim.report.formatting import (
    format_axis_value,
    format_percent_interval,
    is_time,
)
from analogsim.report.markup import figure_html, heading, html_table, paragraph
from analogsim.report.plots import plot_curves, plot_heatmaps
from analogsim.report.sections_cost import cost_html, cost_run_of
from analogsim.report.summaries import (
    ci_basis,
    knife_edge,
    per_seed_curves,
    summarise,
    threshold_over_seeds,
)
from analogsim.results import Results, RunData
from analogsim.statistics import tolerance_threshold

#: Lines up to this many get a column each in the table of a two-axis run.
_PIVOT_COLUMNS = 6


def heatmap_axes(run: RunData) -> tuple[str, str] | None:
    """(rows, columns) of heat maps when two card-like (non-time) axes vary — always in a
    sweep, else beside a third varying axis or as a numeric grid of more than 2 × 2; else None."""
    dims = run.dims["accuracy"][:-1]
    varying = [d for d in dims if len(run.axes[d]) > 1]
    grid = [d for d in varying if not is_time(d, run.units.get(d, ""))]
    numeric_grid = len(grid) == 2 and all(
        len(run.axes[d]) > 2 and np.asarray(run.axes[d]).dtype.kind in "fiu" for d in grid)
    categories = [d for d in grid if np.asarray(run.axes[d]).dtype.kind not in "fiu"]
    if (varying == grid and len(grid) == 2 and len(categories) == 1
            and len(run.axes[categories[0]]) <= _PIVOT_COLUMNS):
        return None  # a few categories (e.g. coding schemes) over a number: one curve each
    if len(grid) >= 2 and (run.attrs.get("kind") == "sweep" or len(varying) > 2 or numeric_grid):
        return grid[-2], grid[-1]
    return None


def curve_axes(run: RunData) -> tuple[str, str | None]:
    """(x, lines) of curves: x is a time axis if one varies, else the last varying numeric
    axis (else the last varying one); the lines are another varying axis, if any."""
    dims = run.dims["accuracy"][:-1]
    varying = [d for d in dims if len(run.axes[d]) > 1]
    times = [d for d in varying if is_time(d, run.units.get(d, ""))]
    numbers = [d for d in varying if np.asarray(run.axes[d]).dtype.kind in "fiu"]
    x = times[0] if times else (numbers[-1] if numbers else
                                varying[-1] if varying else dims[-1])
    return x, next((d for d in varying if d != x), None)


def accuracy_figure(run: RunData, out_dir: Path) -> Path | None:
    """Heat maps (:func:`heatmap_axes`) or curves (:func:`curve_axes`) of mean accuracy."""
    if ("accuracy" not in run.data or not run.dims["accuracy"][:-1]
            or not np.isfinite(run.data["accuracy"]).any()):
        return None
    path = out_dir / f"{run.name}.png"
    grid = heatmap_axes(run)
    if grid is not None:
        return plot_heatmaps(run, path, rows=grid[0], cols=grid[1])
    x, lines = curve_axes(run)
    return plot_curves(run, path, x=x, lines=lines)


def accuracy_table(run: RunData) -> str:
    """Mean accuracy and its 95 % CI over the independent unit (seeds, else the chips of one
    model; :func:`.summaries.ci_basis` names it and n): one row per value of the curves' x axis
    and a column per line when a figure has at most :data:`_PIVOT_COLUMNS` lines over two axes;
    else one row per point."""
    mean, low, high = summarise(run)
    dims = run.dims["accuracy"][:-1]
    what = f"accuracy, mean [{ci_basis(run)}]"
    x, lines = curve_axes(run) if dims else (None, None)
    if (len(dims) == 2 and lines is not None and heatmap_axes(run) is None
            and len(run.axes[lines]) <= _PIVOT_COLUMNS):
        order = [dims.index(x), dims.index(lines)]
        mean, low, high = (np.transpose(a, order) for a in (mean, low, high))
        rows = [[format_axis_value(run, x, value),
                 *(format_percent_interval(mean[i, j], low[i, j], high[i, j])
                   for j in range(mean.shape[1]))] for i, value in enumerate(run.axes[x])]
        header = [x, *(f"{lines} = {format_axis_value(run, lines, v)}" for v in run.axes[lines])]
        return html_table(header, rows, caption=f"Each cell: {what}.")
    rows = []
    for index in np.ndindex(mean.shape):
        cells = [format_axis_value(run, d, run.axes[d][i]) for d, i in zip(dims, index,
                                                                            strict=True)]
        rows.append([*cells, format_percent_interval(mean[index], low[index], high[index])])
    return html_table([*dims, "accuracy, mean [95 % CI]"], rows, caption=f"Each cell: {what}.")


def coding_cost_table(run: RunData) -> str:
    """What the weight coding costs (cells per weight r_avg, side bits per weight, devices),
    one row per value of the axes it varies along; nothing when no point is coded."""
    if "r_avg" not in run.data:
        return ""
    r_avg, bits = run.data["r_avg"], run.data["side_bits_per_weight"]
    if not (np.nanmax(bits, initial=0) > 0 or np.nanmax(np.abs(r_avg - 1), initial=0) > 0):
        return ""
    dims = run.dims["r_avg"]
    varying = [d for i, d in enumerate(dims)
               if any(np.nanmax(np.ptp(run.data[m], axis=i), initial=0) > 0
                      for m in ("r_avg", "side_bits_per_weight", "devices"))]
    index = tuple(slice(None) if d in varying else 0 for d in dims)
    tables = [run.data[m][index] for m in ("r_avg", "side_bits_per_weight", "devices")]
    rows = []
    for point in np.ndindex(tables[0].shape):
        cells = [format_axis_value(run, d, run.axes[d][i]) for d, i in zip(varying, point,
                                                                            strict=True)]
        r, b, n = (t[point] for t in tables)
        rows.append([*cells, f"{r:.4f}", f"{b:g}", f"{n:,.0f}"])
    return html_table([*varying, "cells per weight (r_avg)", "side bits per weight", "devices"],
                      rows, caption="What the weight coding costs the model.")


def tolerance_table(run: RunData, tolerance_pp: float = 1.0) -> str:
    """S3's noise tolerance of a sweep: along its last card axis, when that axis scales noise
    (unit ×), the largest value keeping accuracy within ``tolerance_pp`` of the digital model;
    one row per combination of the other axes. Nothing for other runs.

    A threshold is read off a grid, so it can move a whole grid step: with ≥ 2 seeds each
    seed's threshold is given with their mean, CI and the grid steps they span; with one, the
    table says so, and marks a threshold whose grid value or next one has a CI containing the
    floor (another model or other chips could move it a step)."""
    if run.attrs.get("kind") != "sweep" or "digital_accuracy" not in run.attrs:
        return ""
    dims = run.dims["accuracy"][:-1]
    card_axes = dims[:-1]  # the last of dims is time
    if not card_axes or run.units.get(card_axes[-1]) != "×":
        return ""
    noise = card_axes[-1]
    mean, low, high = (np.moveaxis(a, dims.index(noise), -1) for a in summarise(run))
    curves = per_seed_curves(run)
    others = [d for d in dims if d != noise]
    reference = float(run.attrs["digital_accuracy"])
    grid = np.asarray(run.axes[noise], float)
    rows = []
    for index in np.ndindex(mean.shape[:-1]):
        threshold = tolerance_threshold(grid, mean[index], reference, tolerance_pp)
        row = [*(format_axis_value(run, d, run.axes[d][i])
                 for d, i in zip(others, index, strict=True)),
               format_axis_value(run, noise, threshold) if np.isfinite(threshold) else "—"]
        if curves is not None:
            per_seed = np.moveaxis(curves, dims.index(noise), -2)[index]
            interval = threshold_over_seeds(grid, per_seed, reference, tolerance_pp)
            row.append(f"{interval.mean:.3g} [{interval.low:.3g}, {interval.high:.3g}] "
                       f"(n = {interval.detail}){'; ' + interval.note if interval.note else ''}")
        row.append(_edge_text(run, noise, grid, threshold, low[index], high[index],
                              reference, tolerance_pp))
        rows.append(row)
    header = [*others, f"largest {noise} within {tolerance_pp:g} pp",
              *(["over seeds: mean [95 % CI]"] if curves is not None else []),
              "CI contains the floor at"]
    seeds = ("" if curves is not None else " A threshold from one trained model can move a "
             "grid step with another.")
    return html_table(header, rows, caption=(
        f"Noise tolerance: the largest {noise} of the grid up to which the mean accuracy stays "
        f"within {tolerance_pp:g} pp of the digital model's {100 * reference:.2f} % (— : not "
        f"even the smallest); {ci_basis(run)}.{seeds} The last column names the grid values "
        "next to the threshold whose accuracy CI contains the floor: there the verdict depends "
        "on one grid step."))


def _edge_text(run: RunData, noise: str, grid: np.ndarray, threshold: float, low: np.ndarray,
               high: np.ndarray, reference: float, tolerance_pp: float) -> str:
    """The grid values at and after ``threshold`` whose CI contains the floor, or "—"."""
    edge = knife_edge(low, high, reference, tolerance_pp)
    at = int(np.flatnonzero(grid == threshold)[0]) if np.isfinite(threshold) else -1
    near = [i for i in (at, at + 1) if 0 <= i < grid.size and edge[i]]
    return ", ".join(format_axis_value(run, noise, grid[i]) for i in near) or "—"


def seconds_table(run: RunData) -> str:
    """Mean seconds per value of the first axis, and the ratio to the first row."""
    seconds = run.data["seconds"].reshape(run.data["seconds"].shape[0], -1)
    means = np.nanmean(seconds, axis=1)
    first = run.dims["seconds"][0]
    rows = [[str(label), f"{mean:.1f} s", f"{mean / means[0]:.2f}×"]
            for label, mean in zip(run.axes[first], means, strict=True)]
    return html_table([first, "mean time", f"vs {run.axes[first][0]}"], rows)


def _context(run: RunData) -> str:
    """What the numbers are of: 'Card pcm; 1000 test samples.', or nothing."""
    parts = []
    if "card" in run.attrs:
        parts.append(f"card {run.attrs['card']}")
    if "test_samples" in run.attrs:
        parts.append(f"{run.attrs['test_samples']} test samples")
    text = "; ".join(parts)
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def generic_section(run: RunData, results: Results, out_dir: Path) -> str:
    """Heading, summary, figure and tables of a run, with its cost when the file holds it."""
    parts = [heading(run.name, run.attrs.get("title", run.name)),
             paragraph(run.attrs.get("summary", "")), paragraph(_context(run), note=True),
             figure_html(accuracy_figure(run, out_dir), run.name)]
    if "accuracy" in run.data:
        parts += [accuracy_table(run), tolerance_table(run), coding_cost_table(run)]
    elif "seconds" in run.data:
        parts.append(seconds_table(run))
    parts.append(cost_html(run, cost_run_of(results, run)))
    return "\n".join(p for p in parts if p)
