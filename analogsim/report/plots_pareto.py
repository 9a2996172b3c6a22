"""Figure of a cost budget: accuracy against energy per inference over the designs measured,
the Pareto front, the chosen design and the uniform baseline marked, and those re-measured on
fresh chips beside them."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from analogsim.report.layout import panel_grid, save, suptitle

#: Colour of each stage of the search (budget_energy's module docstring names them).
STAGE_COLOURS = {"card": "black", "setting": "tab:brown", "alone": "tab:gray",
                 "uniform": "tab:blue", "greedy": "tab:orange"}
STAGE_NAMES = {"card": "card design", "setting": "another tile size / redundancy",
               "alone": "one layer lowered alone", "uniform": "uniform bits",
               "greedy": "greedy step"}
_FRONT, _CHOSEN, _FRESH = "tab:green", "tab:red", "tab:purple"


@dataclass(frozen=True)
class ParetoPoints:
    """The designs of a cost budget as plain numbers (from a results file or a JSON summary).

    Attributes:
        labels: each design's bits, e.g. "adc.bits 6-5-6".
        stages: how the search came to each ("card", "alone", "uniform", "greedy").
        energy_J: energy per inference, J.
        mean, low, high: mean accuracy and its 95 % CI bounds (fractions).
        pareto: whether each design is on the Pareto front.
        card, uniform, chosen: indices of the card design, the uniform baseline, the chosen.
        path: indices of the greedy search's steps, from the card design.
        baseline, floor: the card design's mean accuracy and the least a design may have
            (fractions).
        ci: what the CIs are over ("95 % CI over chips, n = …").
        fresh: indices of the designs re-measured on fresh chips (none: not re-measured).
        fresh_mean, fresh_low, fresh_high: their mean accuracy and 95 % CI bounds there
            (fractions).
        fresh_ci: what those CIs are over.
    """

    labels: Sequence[str]
    stages: Sequence[str]
    energy_J: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    pareto: np.ndarray
    card: int
    uniform: int
    chosen: int
    path: Sequence[int]
    baseline: float
    floor: float
    ci: str
    fresh: Sequence[int] = field(default=())
    fresh_mean: np.ndarray = field(default_factory=lambda: np.empty(0))
    fresh_low: np.ndarray = field(default_factory=lambda: np.empty(0))
    fresh_high: np.ndarray = field(default_factory=lambda: np.empty(0))
    fresh_ci: str = ""


def _bits(label: str) -> str:
    """A design's label, short: 'adc.bits 6-5-6' → '6-5-6'; 'adc.bits 6-5-6; dac.bits 8-8-8;
    mapping.tile_rows 64' → 'adc 6-5-6, dac 8-8-8, tile_rows 64'."""
    parts = [part.partition(" ") for part in label.split("; ")]
    if len(parts) == 1 and parts[0][0].endswith("bits"):
        return parts[0][2]
    return ", ".join(f"{name.rpartition('.')[2] if not name.endswith('bits') else name[:3]} "
                     f"{value}" for name, _, value in parts)


def _plot_fresh(axes, points: ParetoPoints, energy: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The designs re-measured on fresh chips: hollow purple circles with their 95 % CI,
    just right of the design's search point, joined to it by a dotted line; the values
    (%) drawn."""
    if not len(points.fresh):
        return np.empty(0)
    index = np.asarray(points.fresh, int)
    shift = 0.012 * float(np.nanmax(energy))  # beside the search's bar, not on it
    x = energy[index] + shift
    fresh = [100 * np.asarray(a, float) for a in (points.fresh_mean, points.fresh_low,
                                                   points.fresh_high)]
    error = np.where(np.isfinite(fresh[1]), np.abs([fresh[0] - fresh[1], fresh[2] - fresh[0]]),
                     0.0)
    for xi, e, m, f in zip(x, energy[index], mean[index], fresh[0], strict=True):
        axes.plot([e, xi], [m, f], color=_FRESH, linestyle=":", linewidth=1, zorder=2)
    axes.errorbar(x, fresh[0], yerr=error, fmt="o", mfc="white", mec=_FRESH, ecolor=_FRESH,
                  markersize=6, elinewidth=1.4, capsize=3, zorder=5)
    return np.concatenate([fresh[1][np.isfinite(fresh[1])], fresh[0], fresh[2]])


def plot_pareto(points: ParetoPoints, path: Path, title: str) -> Path:
    """Accuracy (%, 95 % CI bars) against energy per inference (nJ) of every design, coloured
    by stage; the Pareto front a step line, the greedy path dashed; the chosen design (red
    star), the uniform baseline (blue square) and the card design (black diamond) labelled
    with their bits; the card design's accuracy dashed and the floor dotted; the designs
    re-measured on fresh chips as hollow purple circles with their CIs beside them."""
    figure, (axes,) = panel_grid(1, 1, (7.2, 4.6))
    energy = np.asarray(points.energy_J, float) * 1e9  # nJ
    mean, low, high = (100 * np.asarray(a, float) for a in (points.mean, points.low,
                                                             points.high))
    error = np.abs([mean - low, high - mean])
    error = np.where(np.isfinite(error), error, 0.0)
    colours = [STAGE_COLOURS.get(stage, "tab:purple") for stage in points.stages]
    axes.errorbar(energy, mean, yerr=error, fmt="none", ecolor="0.75", elinewidth=1,
                  capsize=2, zorder=1)
    axes.scatter(energy, mean, c=colours, s=22, zorder=3)
    front = np.flatnonzero(np.asarray(points.pareto, bool))
    front = front[np.argsort(energy[front])]
    axes.step(energy[front], mean[front], where="post", color=_FRONT, linewidth=1.5, zorder=2)
    steps = list(points.path)
    axes.plot(energy[steps], mean[steps], color=STAGE_COLOURS["greedy"], linestyle="--",
              linewidth=1, zorder=2)
    axes.axhline(100 * points.baseline, color="black", linestyle="--", linewidth=1)
    axes.axhline(100 * points.floor, color=_CHOSEN, linestyle=":", linewidth=1.2)
    middle = 0.54 * float(np.nanmax(energy))  # labels left of it read rightwards
    for index, marker, colour, name, offset in (
            (points.chosen, "*", _CHOSEN, "chosen", (12, -24)),
            (points.uniform, "s", STAGE_COLOURS["uniform"], "uniform", (10, 10)),
            (points.card, "D", STAGE_COLOURS["card"], "card", (10, 10))):
        align = "left" if energy[index] < middle else "right"
        offset = offset if align == "left" else (-abs(offset[0]), offset[1])
        axes.scatter(energy[index], mean[index], marker=marker, s=170 if marker == "*" else 80,
                     facecolor=colour if marker == "*" else "none", edgecolor=colour,
                     linewidth=1.6, zorder=4)
        axes.annotate(f"{name} {_bits(points.labels[index])}: {energy[index]:.3g} nJ",
                      (energy[index], mean[index]), xytext=offset, textcoords="offset points",
                      ha=align, fontsize="small", color=colour, fontweight="bold")
    fresh = _plot_fresh(axes, points, energy, mean)
    shown = np.concatenate([np.where(np.isfinite(low), low, mean), [100 * points.floor],
                            fresh])
    top = np.nanmax(np.concatenate([high, mean, fresh]))
    span = max(float(top - np.nanmin(shown)), 1.0)
    axes.set_ylim(np.nanmin(shown) - 0.05 * span, top + 0.1 * span)
    axes.set_xlim(0, 1.08 * float(np.nanmax(energy)))
    axes.set_xlabel("energy per inference [nJ]")
    axes.set_ylabel("accuracy [%]")
    axes.grid(True, alpha=0.3)
    suptitle(figure, title)
    stages = [s for s in STAGE_COLOURS if s in points.stages or s != "setting"]
    handles = [Line2D([], [], marker="o", color=STAGE_COLOURS[s], linestyle="none")
               for s in stages]
    handles += [Line2D([], [], color=_FRONT, linewidth=1.5),
                Line2D([], [], color=STAGE_COLOURS["greedy"], linestyle="--"),
                Line2D([], [], color="black", linestyle="--"),
                Line2D([], [], color=_CHOSEN, linestyle=":")]
    labels = [*(STAGE_NAMES[s] for s in stages), "Pareto front", "greedy path",
              "card design's accuracy", "floor (card − tolerance)"]
    if len(points.fresh):
        handles.append(Line2D([], [], marker="o", mfc="white", mec=_FRESH, color=_FRESH))
        labels.append("on fresh chips")
    figure.legend(handles, labels, loc="outside lower center", ncols=4, fontsize="small")
    note = textwrap.fill(f"bars: {points.ci}", 120)
    if len(points.fresh):
        note += "\n" + textwrap.fill(f"purple, on fresh chips: {points.fresh_ci}", 120)
    axes.text(0.01, 0.01, note, transform=axes.transAxes, fontsize="x-small", color="0.4",
              va="bottom")
    return save(figure, path)
