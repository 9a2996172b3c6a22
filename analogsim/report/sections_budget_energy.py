"""Page section of a cost budget (a ``budget`` with an objective): the chosen per-layer bits
(and model-wide tile size, redundancy), their energy saving against the uniform baseline, the
designs re-measured on fresh chips, the Pareto plot and the designs' table.

:func:`energy_budget_summary` turns the run into plain data (for JSON: the docs' example and
``benchmarks/reproduce/summarize.py``), and :func:`pareto_points` turns that into the plot's
input, so a figure drawn from a committed summary is the one the report draws.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from analogsim.report.formatting import format_difference, format_percent_interval
from analogsim.report.markup import figure_html, heading, html_table, paragraph
from analogsim.report.plots_pareto import ParetoPoints, plot_pareto
from analogsim.report.summaries import ci_basis, intervals
from analogsim.results import Results, RunData
from analogsim.statistics import Interval, interval_over_units, paired_difference


def _nJ(joules: float) -> str:
    return f"{1e9 * joules:.3g} nJ"


def _list(value: Any) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in np.atleast_1d(value)]


def _interval(interval: Interval, scale: float = 1.0) -> dict[str, float]:
    return {k: scale * getattr(interval, k) for k in ("mean", "low", "high")}


def confirmation_summary(run: RunData) -> dict[str, Any] | None:
    """The designs measured on fresh chips (``confirm_accuracy``), with 95 % CIs over those
    chips and their drop against the card design paired by chip; None when the run has none
    (``confirm_chips = 0``, or a file written before the confirmation existed)."""
    if "confirm_accuracy" not in run.data:
        return None
    attrs, accuracy = run.attrs, np.asarray(run.data["confirm_accuracy"], float)
    indices = [int(i) for i in _list(attrs["confirm_designs"])]
    roles = [(int(attrs["card_design"]), "card design"),
             (int(attrs["uniform_design"]), "uniform baseline"),
             (int(attrs["chosen_design"]), "chosen")]  # one design may be two of them
    card = indices.index(int(attrs["card_design"]))
    designs, basis = [], ""
    for row, index in enumerate(indices):
        interval = interval_over_units(accuracy[row][None], ("seed", "chip"))
        drop = paired_difference(accuracy[card], accuracy[row], ("chip",))
        basis = (f"95 % CI over {interval.unit}, n = {interval.detail}"
                 + (f"; {interval.note}" if interval.note else ""))
        designs.append({"index": index, "role": ", ".join(
            name for i, name in roles if i == index),
            "accuracy": _interval(interval), "drop_pp": _interval(drop, 100)})
    return {"seeds": [int(x) for x in _list(attrs["confirm_seeds"])],
            "seed_chips": [int(x) for x in _list(attrs["confirm_seed_chips"])],
            "chips": int(attrs["confirm_chips"]), "floor": float(attrs["confirm_floor"]),
            "holds": bool(attrs["confirm_holds"]),
            "holds_confidently": bool(attrs["confirm_holds_confidently"]),
            "ci": basis, "designs": designs}


def energy_budget_summary(run: RunData) -> dict[str, Any]:
    """The run as plain data: its setting, every design (bits, model-wide setting, energy,
    accuracy and its drop against the card design, each with its 95 % CI over chips), the
    verdict (chosen, uniform baseline, saving) and the confirmation on fresh chips."""
    attrs = run.attrs
    cells = intervals(run, "accuracy")
    accuracy = run.data["accuracy"]
    card, uniform, chosen = (int(attrs[k]) for k in ("card_design", "uniform_design",
                                                     "chosen_design"))
    designs = []
    for n, label in enumerate(_list(run.axes["design"])):
        drop = paired_difference(accuracy[card], accuracy[n], ("chip",))
        designs.append({
            "label": str(label), "stage": str(_list(attrs["design_stage"])[n]),
            "bits": run.data["bits"][n].astype(int).tolist(),
            "setting": (run.data["setting"][n].astype(int).tolist()
                        if "setting" in run.data else []),
            "energy_J": float(run.data["energy_J"][n]),
            "layer_energy_J": run.data["layer_energy_J"][n].tolist(),
            "accuracy": {"mean": cells[n].mean, "low": cells[n].low, "high": cells[n].high},
            "drop_pp": {"mean": 100 * drop.mean, "low": 100 * drop.low,
                        "high": 100 * drop.high},
            "holds": bool(run.data["holds"][n]), "pareto": bool(run.data["pareto"][n])})
    return {
        "card": str(attrs["card"]), "objective": str(attrs["objective"]),
        "objective_unit": str(attrs["objective_unit"]),
        "knobs": [str(k) for k in _list(run.axes["knob"])],
        "model_knobs": [str(k) for k in _list(run.axes.get("model_knob", []))],
        "layers": [str(x) for x in _list(run.axes["layer"])],
        "tolerance_pp": float(attrs["tolerance_pp"]), "time_s": float(attrs["time_s"]),
        "chip_seeds": [int(s) for s in _list(attrs["chip_seeds"])],
        "instances": int(attrs["instances"]), "test_samples": int(attrs["test_samples"]),
        "baseline_accuracy": float(attrs["baseline_accuracy"]),
        "floor": float(attrs["floor"]), "ci": ci_basis(run),
        "minimum": run.data["minimum"].astype(int).tolist(),
        "designs": designs, "card_design": card, "uniform_design": uniform,
        "chosen_design": chosen, "greedy_path": [int(i) for i in _list(attrs["greedy_path"])],
        "saving": float(attrs["saving"]),
        "notes": [str(x) for x in _list(attrs.get("notes", [])) if str(x)],
        "confirmation": confirmation_summary(run)}


def pareto_points(summary: dict[str, Any]) -> ParetoPoints:
    """The plot's input from :func:`energy_budget_summary`."""
    designs, confirmation = summary["designs"], summary.get("confirmation")
    fresh = confirmation["designs"] if confirmation else []

    def column(key: str, field: str | None = None) -> np.ndarray:
        return np.array([d[key] if field is None else d[key][field] for d in designs], float)

    return ParetoPoints(
        labels=[d["label"] for d in designs], stages=[d["stage"] for d in designs],
        energy_J=column("energy_J"), mean=column("accuracy", "mean"),
        low=column("accuracy", "low"), high=column("accuracy", "high"),
        pareto=np.array([d["pareto"] for d in designs], bool),
        card=summary["card_design"], uniform=summary["uniform_design"],
        chosen=summary["chosen_design"], path=summary["greedy_path"],
        baseline=summary["baseline_accuracy"], floor=summary["floor"], ci=summary["ci"],
        fresh=[d["index"] for d in fresh],
        fresh_mean=np.array([d["accuracy"]["mean"] for d in fresh], float),
        fresh_low=np.array([d["accuracy"]["low"] for d in fresh], float),
        fresh_high=np.array([d["accuracy"]["high"] for d in fresh], float),
        fresh_ci=confirmation["ci"] if confirmation else "")


def pareto_title(summary: dict[str, Any]) -> str:
    wide = "".join(f", {k}" for k in summary.get("model_knobs", []))
    return (f"Accuracy against energy per inference on card {summary['card']}: every design "
            f"measured (per-layer {', '.join(summary['knobs'])}{wide}), tolerance "
            f"{summary['tolerance_pp']:g} pp")


def verdict(summary: dict[str, Any]) -> str:
    """'Chosen design adc.bits 6-5-6 (layers 1, 3, 5): 0.839 nJ per inference, 8.4 % below
    the uniform baseline …'."""
    designs = summary["designs"]
    chosen, uniform, card = (designs[summary[k]] for k in ("chosen_design", "uniform_design",
                                                           "card_design"))
    drop = chosen["drop_pp"]
    return (f"Chosen design {chosen['label']} (layers {', '.join(summary['layers'])}): "
            f"{_nJ(chosen['energy_J'])} per inference, {100 * summary['saving']:.1f} % below "
            f"the uniform baseline {uniform['label']} ({_nJ(uniform['energy_J'])}) and "
            f"{100 * (1 - chosen['energy_J'] / card['energy_J']):.0f} % below the card design "
            f"{card['label']} ({_nJ(card['energy_J'])}). Its accuracy "
            f"{format_percent_interval(**chosen['accuracy'])} is {drop['mean']:.2f} pp "
            f"[{drop['low']:.2f}, {drop['high']:.2f}] below the card design's "
            f"{100 * summary['baseline_accuracy']:.2f} % (tolerance "
            f"{summary['tolerance_pp']:g} pp: floor {100 * summary['floor']:.2f} %), measured "
            "on the chips it was chosen on."
            + (" The upper end of that CI is past the tolerance: the design holds on these "
               "chips' mean, not with 95 % confidence." if drop["high"] > summary["tolerance_pp"]
               else ""))


def confirmation_text(summary: dict[str, Any]) -> str:
    """Whether the chosen design still holds on fresh chips, in one or two sentences."""
    confirmation = summary.get("confirmation")
    if not confirmation:
        return ("Not re-measured on fresh chips (confirm_chips = 0): the chosen design's "
                "accuracy is that of the chips it was chosen on, biased upwards by the "
                "selection.")
    designs = summary["designs"]
    rows = {d["index"]: d for d in confirmation["designs"]}
    chosen, card = rows[summary["chosen_design"]], rows[summary["card_design"]]
    drop, seeds = chosen["drop_pp"], confirmation["seeds"]
    seed_text = (f"seed {seeds[0]}" if len(seeds) == 1
                 else f"seeds {seeds[0]}–{seeds[-1]}")
    text = (f"Re-measured on {confirmation['chips']} fresh chips (program {seed_text}, never "
            "used in the search; the same test samples): the chosen design "
            f"{designs[summary['chosen_design']]['label']} reaches "
            f"{format_percent_interval(**chosen['accuracy'])}, {drop['mean']:.2f} pp "
            f"[{drop['low']:.2f}, {drop['high']:.2f}] below the card design's "
            f"{100 * card['accuracy']['mean']:.2f} % on the same chips (paired by chip). ")
    if not confirmation["holds"]:
        return text + (f"It does not hold the tolerance of {summary['tolerance_pp']:g} pp on "
                       f"fresh chips (floor {100 * confirmation['floor']:.2f} %): its accuracy "
                       "on the search's chips was biased upwards by the selection.")
    return text + (f"It holds the tolerance of {summary['tolerance_pp']:g} pp there (floor "
                   f"{100 * confirmation['floor']:.2f} %)"
                   + (", with 95 % confidence." if confirmation["holds_confidently"] else
                      ", on the mean; the upper end of the drop's CI is past the tolerance, "
                      "so not with 95 % confidence."))


def confirmation_table(summary: dict[str, Any]) -> str:
    """The designs re-measured on fresh chips: accuracy on the search's chips and on the
    fresh ones, and the drop against the card design on the fresh ones."""
    confirmation = summary.get("confirmation")
    if not confirmation:
        return ""
    rows = []
    for row in confirmation["designs"]:
        design, drop = summary["designs"][row["index"]], row["drop_pp"]
        rows.append([design["label"], row["role"], _nJ(design["energy_J"]),
                     format_percent_interval(**design["accuracy"]),
                     format_percent_interval(**row["accuracy"]),
                     format_difference(-drop["mean"] / 100, -drop["high"] / 100,
                                       -drop["low"] / 100)
                     if row["index"] != summary["card_design"] else "—"])
    return html_table(
        ["design", "", "energy per inference", "accuracy, search's chips [95 % CI]",
         "accuracy, fresh chips [95 % CI]", "vs card design, fresh chips [95 % CI]"], rows,
        caption=f"Fresh chips: program seeds {confirmation['seeds']} "
                f"({confirmation['seed_chips']} chips each), none used in the search; "
                f"{confirmation['ci']}. The difference is paired by chip.")


def designs_table(summary: dict[str, Any]) -> str:
    """One row per design: stage, energy, accuracy and drop (95 % CIs), holds, on the front."""
    marks = {summary["card_design"]: "card", summary["uniform_design"]: "uniform baseline",
             summary["chosen_design"]: "chosen"}
    rows = []
    for n, d in enumerate(summary["designs"]):
        drop = d["drop_pp"]
        rows.append([d["label"], d["stage"], _nJ(d["energy_J"]),
                     format_percent_interval(**d["accuracy"]),
                     format_difference(-drop["mean"] / 100, -drop["high"] / 100,
                                       -drop["low"] / 100) if n != summary["card_design"]
                     else "—", "yes" if d["holds"] else "no", "yes" if d["pareto"] else "",
                     marks.get(n, "")])
    return html_table(
        ["design (bits per layer)", "stage", "energy per inference", "accuracy [95 % CI]",
         "vs card design [95 % CI]", "holds", "Pareto front", ""], rows,
        caption=f"Every design measured, in the order of the search; {summary['ci']}. The "
                "difference to the card design is paired by chip (the same chips at every "
                "design). Holds: mean accuracy at or above the floor.")


def layers_table(summary: dict[str, Any]) -> str:
    """Per layer: the fewest bits alone, the chosen and uniform bits, and their energies."""
    designs = summary["designs"]
    chosen, uniform = designs[summary["chosen_design"]], designs[summary["uniform_design"]]
    rows = []
    for j, layer in enumerate(summary["layers"]):
        bits = [f"{summary['minimum'][k][j]} / {chosen['bits'][k][j]} / "
                f"{uniform['bits'][k][j]}" for k in range(len(summary["knobs"]))]
        rows.append([layer, *bits, _nJ(chosen["layer_energy_J"][j]),
                     _nJ(uniform["layer_energy_J"][j])])
    return html_table(["layer", *(f"{k}: alone / chosen / uniform" for k in summary["knobs"]),
                       "energy, chosen", "energy, uniform"], rows,
                      caption="Alone: the fewest bits of the layer with the others at the "
                              "card's bits (in the chosen design's tile size and redundancy, "
                              "when the budget chooses them). Energies per inference of the "
                              "layer's tiles.")


def budget_energy_section(run: RunData, results: Results, out_dir: Path) -> str:
    """The verdict, the Pareto plot, the designs and the per-layer table."""
    summary = energy_budget_summary(run)
    figure = plot_pareto(pareto_points(summary), out_dir / f"{run.name}.png",
                         pareto_title(summary))
    return "\n".join(part for part in [
        heading(run.name, run.attrs.get("title", run.name)),
        paragraph(run.attrs.get("summary", "")),
        paragraph(verdict(summary)),
        paragraph(confirmation_text(summary)),
        *(paragraph(note, note=True) for note in summary["notes"]),
        paragraph("Search: the card design; each layer's bits lowered alone to its minimum; "
                  "uniform bits lowered together; then greedy steps, the largest energy saving "
                  "per accuracy cost first, each kept if the joint design holds"
                  + (f"; all this in each setting of {', '.join(summary['model_knobs'])}, "
                     "chosen for the whole model" if summary.get("model_knobs") else "")
                  + ". The chosen design is the least energy among the designs that hold.",
                  note=True),
        figure_html(figure, f"{run.name}: accuracy against energy per inference"),
        confirmation_table(summary), layers_table(summary), designs_table(summary)] if part)
