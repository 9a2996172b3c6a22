"""Figure of a cost budget: accuracy against energy per inference over the designs measured,
the Pareto front, the chosen design and the uniform baseline marked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from analogsim.report.layout import panel_grid, save, suptitle

#: Colour of each stage of the search (budget_energy's module docstring names them).
STAGE_COLOURS = {"card": "black", "alone": "tab:gray", "uniform": "tab:blue",
                 "greedy": "tab:orange"}
_FRONT, _CHOSEN = "tab:green", "tab:red"


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


def _bits(label: str) -> str:
    """'adc.bits 6-5-6' → '6-5-6' (one knob); several knobs as they are."""
    name, _, bits = label.partition(" ")
    return bits if ";" not in label and name.endswith("bits") else label


def plot_pareto(points: ParetoPoints, path: Path, title: str) -> Path:
    """Accuracy (%, 95 % CI bars) against energy per inference (nJ) of every design, coloured
    by stage; the Pareto front a step line, the greedy path dashed; the chosen design (red
    star), the uniform baseline (blue square) and the card design (black diamond) labelled
    with their bits; the card design's accuracy dashed and the floor dotted."""
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
    for index, marker, colour, name, offset, align in (
            (points.chosen, "*", _CHOSEN, "chosen", (12, -24), "left"),
            (points.uniform, "s", STAGE_COLOURS["uniform"], "uniform", (-10, 10), "right"),
            (points.card, "D", STAGE_COLOURS["card"], "card", (-10, 10), "right")):
        axes.scatter(energy[index], mean[index], marker=marker, s=170 if marker == "*" else 80,
                     facecolor=colour if marker == "*" else "none", edgecolor=colour,
                     linewidth=1.6, zorder=4)
        axes.annotate(f"{name} {_bits(points.labels[index])}: {energy[index]:.3g} nJ",
                      (energy[index], mean[index]), xytext=offset, textcoords="offset points",
                      ha=align, fontsize="small", color=colour, fontweight="bold")
    shown = np.concatenate([np.where(np.isfinite(low), low, mean), [100 * points.floor]])
    span = max(float(np.nanmax(high) - np.nanmin(shown)), 1.0)
    axes.set_ylim(np.nanmin(shown) - 0.05 * span, np.nanmax(high) + 0.1 * span)
    axes.set_xlim(0, 1.08 * float(np.nanmax(energy)))
    axes.set_xlabel("energy per inference [nJ]")
    axes.set_ylabel("accuracy [%]")
    axes.grid(True, alpha=0.3)
    suptitle(figure, title)
    handles = [Line2D([], [], marker="o", color=c, linestyle="none") for c in
               STAGE_COLOURS.values()]
    handles += [Line2D([], [], color=_FRONT, linewidth=1.5),
                Line2D([], [], color=STAGE_COLOURS["greedy"], linestyle="--"),
                Line2D([], [], color="black", linestyle="--"),
                Line2D([], [], color=_CHOSEN, linestyle=":")]
    labels = ["card design", "one layer lowered alone", "uniform bits", "greedy step",
              "Pareto front", "greedy path", "card design's accuracy",
              "floor (card − tolerance)"]
    figure.legend(handles, labels, loc="outside lower center", ncols=4, fontsize="small")
    axes.text(0.01, 0.01, f"bars: {points.ci}", transform=axes.transAxes, fontsize="x-small",
              color="0.4", va="bottom")
    return save(figure, path)
