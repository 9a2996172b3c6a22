"""Figures of runs: accuracy against an axis with a 95 % CI band, or a heat map of a 2-D grid."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from analogsim.results import RunData
from analogsim.statistics import confidence_interval
from analogsim.units import format_duration

_TIME_TICKS = (1.0, 60.0, 3600.0, 86400.0, 2592000.0, 31536000.0)  # 1 s … 1 year


def summarise(run: RunData, metric: str = "accuracy") -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """Mean and 95 % CI bounds over the last (instance) axis; arrays shaped by the other axes."""
    data = run.data[metric]
    samples = int(run.attrs.get("test_samples", 1000))
    flat = data.reshape(-1, data.shape[-1])
    mean = np.full(flat.shape[0], np.nan)
    low, high = mean.copy(), mean.copy()
    for i, row in enumerate(flat):
        if np.isfinite(row).all():
            mean[i] = row.mean()
            low[i], high[i] = confidence_interval(row, samples)
    shape = data.shape[:-1]
    return mean.reshape(shape), low.reshape(shape), high.reshape(shape)


def _axis_label(run: RunData, axis: str) -> str:
    unit = run.units.get(axis, "")
    return f"{axis.replace('_', ' ')} [{unit}]" if unit else axis.replace("_", " ")


def _spans_decades(values: np.ndarray) -> bool:
    positive = values[values > 0]
    return values.dtype.kind in "fiu" and positive.size == values.size and (
        positive.max() / positive.min() >= 100)


def plot_curves(run: RunData, path: Path, metric: str = "accuracy") -> Path:
    """Metric (in %) against the run's x axis (the second-to-last axis), one line per value of
    a leading axis, with 95 % CI bands; log x when the axis spans decades."""
    mean, low, high = summarise(run, metric)
    dims = run.dims[metric][:-1]
    x_axis = dims[-1]
    x = np.asarray(run.axes[x_axis])
    if mean.ndim == 1:
        mean, low, high = mean[None], low[None], high[None]
        labels = [run.name]
    else:
        mean, low, high = (a.reshape(-1, a.shape[-1]) for a in (mean, low, high))
        lead = dims[0]
        labels = [str(v) if lead == "method" else f"{lead.replace('_', ' ')} = {v}"
                  for v in run.axes[lead]]
    numeric = x.dtype.kind in "fiu"
    positions = x if numeric else np.arange(len(x))
    many = len(labels) > 6
    figure, axes = plt.subplots(figsize=(9.5 if many else 7, 4.5), layout="constrained")
    colours = plt.get_cmap("tab20" if len(labels) > 10 else "tab10").colors
    for index, (m, lo, hi, label) in enumerate(zip(mean, low, high, labels, strict=True)):
        colour = colours[index % len(colours)]
        axes.plot(positions, 100 * m, marker="o", label=label, color=colour)
        axes.fill_between(positions, 100 * lo, 100 * hi, alpha=0.15 if many else 0.25,
                          color=colour)
    if numeric and _spans_decades(x):
        axes.set_xscale("log")
        if x_axis.startswith("time"):
            ticks = [t for t in _TIME_TICKS if x.min() <= t <= x.max()]
            axes.set_xticks(ticks, [format_duration(t) for t in ticks])
    if not numeric:
        axes.set_xticks(positions, [str(v) for v in x])
    reference = run.attrs.get("digital_accuracy")
    if reference is not None:
        axes.axhline(100 * reference, color="black", linestyle="--", linewidth=1,
                     label="digital model")
    axes.set_xlabel(_axis_label(run, x_axis) if not x_axis.startswith("time") else
                    "time after programming")
    over = "chip instances" if dims_last(run, metric) == "instance" else "replicates"
    axes.set_ylabel(f"{metric} [%]  (mean, 95 % CI over {over})")
    axes.set_title(run.attrs.get("title", run.name), fontsize="medium")
    axes.grid(True, which="major", alpha=0.3)
    if many:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    else:
        axes.legend()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def dims_last(run: RunData, metric: str) -> str:
    """The name of the metric's last (replicate) axis."""
    return run.dims[metric][-1]


def plot_heatmap(run: RunData, path: Path, metric: str = "accuracy") -> Path:
    """Mean metric (in %) over a 2-D grid of the two axes before the instance axis."""
    mean, _, _ = summarise(run, metric)
    rows, cols = run.dims[metric][-3], run.dims[metric][-2]
    mean = mean.reshape(-1, *mean.shape[-2:])[-1]
    figure, axes = plt.subplots(figsize=(7, 5), layout="constrained")
    image = axes.imshow(100 * mean, aspect="auto", origin="lower", cmap="viridis")
    axes.set_xticks(range(mean.shape[1]), [f"{v:g}" if isinstance(v, float) else str(v)
                                           for v in run.axes[cols]])
    axes.set_yticks(range(mean.shape[0]), [f"{v:g}" if isinstance(v, float) else str(v)
                                           for v in run.axes[rows]])
    axes.set_xlabel(_axis_label(run, cols))
    axes.set_ylabel(_axis_label(run, rows))
    figure.colorbar(image, label=f"mean {metric} [%]")
    axes.set_title(run.attrs.get("title", run.name))
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_training(runs: list[RunData], path: Path) -> Path:
    """Test accuracy and ‖∇L‖ of the update against epoch, one line per training run."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True,
                                         layout="constrained")
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
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
