"""Page section of a cost budget (a ``budget`` with an objective): the chosen per-layer bits,
their energy saving against the uniform baseline, the Pareto plot and the designs' table.

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
from analogsim.statistics import paired_difference


def _nJ(joules: float) -> str:
    return f"{1e9 * joules:.3g} nJ"


def _list(value: Any) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in np.atleast_1d(value)]


def energy_budget_summary(run: RunData) -> dict[str, Any]:
    """The run as plain data: its setting, every design (bits, energy, accuracy and its drop
    against the card design, each with its 95 % CI over chips), and the verdict (chosen,
    uniform baseline, saving)."""
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
        "notes": [str(x) for x in _list(attrs.get("notes", [])) if str(x)]}


def pareto_points(summary: dict[str, Any]) -> ParetoPoints:
    """The plot's input from :func:`energy_budget_summary`."""
    designs = summary["designs"]

    def column(key: str, field: str | None = None) -> np.ndarray:
        return np.array([d[key] if field is None else d[key][field] for d in designs], float)

    return ParetoPoints(
        labels=[d["label"] for d in designs], stages=[d["stage"] for d in designs],
        energy_J=column("energy_J"), mean=column("accuracy", "mean"),
        low=column("accuracy", "low"), high=column("accuracy", "high"),
        pareto=np.array([d["pareto"] for d in designs], bool),
        card=summary["card_design"], uniform=summary["uniform_design"],
        chosen=summary["chosen_design"], path=summary["greedy_path"],
        baseline=summary["baseline_accuracy"], floor=summary["floor"], ci=summary["ci"])


def pareto_title(summary: dict[str, Any]) -> str:
    return (f"Accuracy against energy per inference on card {summary['card']}: every design "
            f"measured (per-layer {', '.join(summary['knobs'])}), tolerance "
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
                              "card's bits. Energies per inference of the layer's tiles.")


def budget_energy_section(run: RunData, results: Results, out_dir: Path) -> str:
    """The verdict, the Pareto plot, the designs and the per-layer table."""
    summary = energy_budget_summary(run)
    figure = plot_pareto(pareto_points(summary), out_dir / f"{run.name}.png",
                         pareto_title(summary))
    return "\n".join(part for part in [
        heading(run.name, run.attrs.get("title", run.name)),
        paragraph(run.attrs.get("summary", "")),
        paragraph(verdict(summary)),
        *(paragraph(note, note=True) for note in summary["notes"]),
        paragraph("Search: the card design; each layer's bits lowered alone to its minimum; "
                  "uniform bits lowered together; then greedy steps, the largest energy saving "
                  "per accuracy cost first, each kept if the joint design holds. The chosen "
                  "design is the least energy among the designs that hold.", note=True),
        figure_html(figure, f"{run.name}: accuracy against energy per inference"),
        layers_table(summary), designs_table(summary)] if part)
