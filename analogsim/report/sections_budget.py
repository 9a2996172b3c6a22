"""Page section of a noise budget: which layer is most sensitive, the limits per layer and
knob, alone and jointly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from analogsim.report.formatting import format_number, format_percent_interval, format_quantity
from analogsim.report.markup import figure_html, heading, html_table, paragraph
from analogsim.report.plots_budget import budget_knobs, limit_summary, plot_budget
from analogsim.report.sections_cost import cost_html, cost_run_of
from analogsim.results import Results, RunData
from analogsim.statistics import ONE_SEED, confidence_interval, derived_over_seeds


def sensitivity_sentence(run: RunData) -> str:
    """'The most sensitive layer is fc2. Ranking, most sensitive first: fc2 > fc1 > fc3 (stable
    across seeds: <the run's ranking note>).'"""
    attrs = run.attrs
    stable = "stable" if attrs.get("ranking_stable") else "not stable"
    note = str(attrs.get("ranking_note", "")).strip().rstrip(".")
    return (f"The most sensitive layer is {attrs.get('most_sensitive_layer', '?')}. Ranking, "
            f"most sensitive first: {attrs.get('ranking', '?')} ({stable} across seeds"
            f"{': ' + note if note else ''}).")


def limits_table(run: RunData) -> str:
    """Layer × knob: the limit alone and jointly (means over seeds; with ≥ 2 seeds the 95 % CI
    over seeds of the limit alone), and the accuracy with every layer at its joint limit."""
    knobs = budget_knobs(run)
    seeds = run.data["limit"].shape[-1]
    alone = limit_summary(run.data["limit"])[0]  # [knob, layer]
    joint = limit_summary(run.data["joint_limit"])[0]
    censored = (run.data["censored"].any(axis=-1) if "censored" in run.data
                else np.zeros(alone.shape, bool))
    rows = [[str(layer), *(f"{'≥ ' if censored[k, j] else ''}"
                           f"{format_quantity(alone[k, j], knob.unit)}"
                           f"{_over_seeds(run.data['limit'][k, j], knob.unit)} (joint "
                           f"{format_quantity(joint[k, j], knob.unit)})"
                           for k, knob in enumerate(knobs))]
            for j, layer in enumerate(run.axes["layer"])]
    joint_accuracy = limit_summary(run.data["joint_accuracy"])[0]  # [knob]
    rows.append(["accuracy at the joint limits",
                 *(f"{100 * a:.2f} %" if np.isfinite(a) else "—" for a in joint_accuracy)])
    rows.append(["the card's value", *(format_quantity(knob.card_value, knob.unit)
                                       for knob in knobs)])
    header = ["layer", *(f"{knob.name} ({knob.direction})" for knob in knobs)]
    over = (f"Means over {seeds} seeds, [95 % CI over seeds] of a limit alone"
            if seeds > 1 else f"One seed ({ONE_SEED}; a limit read off a grid can move a grid "
            "step with another trained model)")
    return html_table(header, rows, caption=f"{over}; “—”: not reached or not "
                      "measured; “≥”: the layer passed every value tried. Joint: every layer "
                      "at once.")


def _over_seeds(per_seed: np.ndarray, unit: str) -> str:
    """' [1.2×, 2.5×]': the 95 % CI over seeds of a per-seed limit; nothing with one seed."""
    interval = derived_over_seeds(per_seed)
    if interval.n < 2:
        return ""
    return f" [{format_quantity(interval.low, unit)}, {format_quantity(interval.high, unit)}]"


def _baseline(run: RunData) -> tuple[float, float, float]:
    """Mean baseline accuracy over the seeds and its 95 % CI (Student t), NaN seeds dropped."""
    baseline = run.data["baseline_accuracy"]
    baseline = baseline[np.isfinite(baseline)]
    if baseline.size == 0:
        return math.nan, math.nan, math.nan
    return (float(baseline.mean()),
            *confidence_interval(baseline, int(run.attrs.get("test_samples", 1000))))


def budget_section(run: RunData, results: Results, out_dir: Path) -> str:
    """The sensitivity sentence, the baseline and tolerance, the limits figure and table, and
    the model's cost when the card has ``[cost]``."""
    attrs = run.attrs
    seeds = run.data["baseline_accuracy"].size
    return "\n".join(part for part in [
        heading(run.name, attrs.get("title", f"Noise budget of card {attrs.get('card', '?')}")),
        paragraph(attrs.get("summary", "")),
        paragraph(sensitivity_sentence(run)),
        paragraph(f"A layer's limit is the harshest value of a knob, that layer alone, that "
                  f"keeps the accuracy within {format_number(attrs.get('tolerance_pp', 1))} pp "
                  f"of the baseline (card {attrs.get('card', '?')} as it is: "
                  f"{format_percent_interval(*_baseline(run))} over {seeds} seeds); the joint "
                  "limits hold with every layer at its joint limit at once.", note=True),
        figure_html(plot_budget(run, out_dir / f"{run.name}.png"), run.name),
        limits_table(run),
        cost_html(run, cost_run_of(results, run)),
    ] if part)
