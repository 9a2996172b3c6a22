"""Figure of a noise budget: per knob, the harshest value each analog layer tolerates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analogsim.report.formatting import format_number
from analogsim.report.layout import panel_grid, save, suptitle
from analogsim.report.scales import style_value_axis
from analogsim.results import RunData

_ALONE, _JOINT, _SENSITIVE = "tab:blue", "tab:orange", "tab:red"


@dataclass(frozen=True)
class Knob:
    """One knob of a budget run, from its per-knob attributes.

    Attributes:
        name: the knob ("read_noise.scale", "adc.bits", …).
        unit: "×" (factor of the card value), "s", "bit" or "levels".
        harsher: "up" (a larger value is harsher) or "down" (fewer is harsher).
        card_value: the card's own value, in ``unit``; NaN if the card leaves it unset.
    """

    name: str
    unit: str
    harsher: str
    card_value: float

    @property
    def direction(self) -> str:
        """Which way a limit is more tolerant, for axis labels."""
        return "higher = more tolerant" if self.harsher == "up" else "lower = more tolerant"


def budget_knobs(run: RunData) -> list[Knob]:
    """The knobs of a budget run, in axis order."""
    attrs = run.attrs
    return [Knob(str(name), str(unit), str(harsher), float(value)) for name, unit, harsher, value
            in zip(run.axes["knob"], attrs["knob_units"], attrs["knob_harsher"],
                   attrs["knob_card_value"], strict=True)]


def limit_summary(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over seeds (the last axis), NaN seeds ignored; NaN if none."""
    values = np.asarray(values, dtype=float)
    measured = np.isfinite(values).any(axis=-1)
    safe = np.where(measured[..., None], values, 0.0)  # no all-NaN rows for nanmean & co.
    summary = (np.nanmean(safe, axis=-1), np.nanmin(safe, axis=-1), np.nanmax(safe, axis=-1))
    return tuple(np.where(measured, s, np.nan) for s in summary)


def plot_budget(run: RunData, path: Path) -> Path:
    """One panel per knob: per layer the tolerated limit alone (mean over seeds, min–max as
    error bars) and jointly (hatched), the card's value dashed, the most sensitive layer red.
    Scales (×) and times (s) on log axes; bits and levels on integer axes."""
    knobs = budget_knobs(run)
    layers = np.asarray(run.axes["layer"])
    sensitive = run.attrs.get("most_sensitive_layer", "")
    figure, panels = panel_grid(len(knobs), 3, (max(3.6, 0.75 * len(layers) + 1.6), 3.2),
                                sharex=False, sharey=False)
    where = np.arange(len(layers))
    for k, (knob, axes) in enumerate(zip(knobs, panels, strict=True)):
        shown = [knob.card_value]
        alone = [_SENSITIVE if layer == sensitive else _ALONE for layer in layers]
        for offset, metric, style in ((-0.2, "limit", {"color": alone}),
                                      (0.2, "joint_limit", {"color": "white", "hatch": "///",
                                                            "edgecolor": _JOINT})):
            mean, low, high = limit_summary(run.data[metric][k])
            axes.bar(where + offset, mean, 0.4, yerr=np.abs([mean - low, high - mean]),
                     capsize=2, ecolor="black", **style)
            shown += [*low, *high]
            if metric == "limit" and "censored" in run.data:  # the whole grid passed
                for x, top, censored in zip(where + offset, high, run.data["censored"][k].any(
                        axis=-1), strict=True):
                    if censored and np.isfinite(top):
                        axes.annotate("≥", (x, top), ha="center", va="bottom", fontsize="small")
        if np.isfinite(knob.card_value):
            axes.axhline(knob.card_value, color="black", linestyle="--", linewidth=1)
        style_value_axis(axes, "y", np.asarray(shown), knob.unit, ticks_at_values=False)
        style_value_axis(axes, "x", layers, "")
        for label in axes.get_xticklabels():
            if label.get_text() == sensitive:
                label.set_color(_SENSITIVE)
                label.set_fontweight("bold")
        unit = f" [{knob.unit}]" if knob.unit not in ("", "s") else ""
        axes.set_ylabel(f"tolerated value{unit}\n({knob.direction})", fontsize="small")
        axes.set_title(knob.name, fontsize="medium")
        axes.set_xlabel("analog layer", fontsize="small")
        axes.grid(True, axis="y", which="major", alpha=0.3)
    suptitle(figure, f"Noise budget of card {run.attrs.get('card', '?')}: the harshest value "
             f"each layer tolerates within {format_number(run.attrs.get('tolerance_pp', 1))} pp "
             "of the baseline accuracy")
    figure.legend(
        [Patch(color=_ALONE), Patch(facecolor="white", edgecolor=_JOINT, hatch="///"),
         Line2D([], [], color="black", linestyle="--"), Patch(color=_SENSITIVE)],
        ["layer alone (mean; bars: min–max over seeds; ≥: the whole grid passed)",
         "joint: all layers at once",
         "the card's value", f"most sensitive layer ({sensitive})"],
        loc="outside lower center", ncols=4 if len(knobs) > 2 else 2, fontsize="small")
    return save(figure, path)
