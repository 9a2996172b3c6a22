"""The cost table of a run whose card has ``[cost]``: energy per inference with its parts,
latency, area and efficiency, per analog layer and in total, read from the run's companion
``<run>_cost`` (written by :mod:`analogsim.experiments.cost_record`). Drawn in the section of
its source run; a file without it (a card without ``[cost]``, or an older file) shows nothing.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from analogsim.report.formatting import format_axis_value
from analogsim.report.markup import heading, html_table, paragraph
from analogsim.results import Results, RunData
from analogsim.units import format_si

#: the energy parts of an analog layer, as the run's ``part`` axis names them
_PART_NAMES = {"array": "array", "dac": "DAC", "adc": "ADC",
               "digital_periphery": "digital periphery"}


def cost_run_of(results: Results, run: RunData) -> RunData | None:
    """The cost run written beside ``run``, if the file has one."""
    return next((other for other in results.runs.values()
                 if other.attrs.get("kind") == "cost"
                 and other.attrs.get("source_run") == run.name), None)


def _mean(values: np.ndarray) -> np.ndarray:
    """Mean over the models (axis 0), NaN where no model is priced (an unfinished run)."""
    done = np.isfinite(values).any(axis=0)
    filled = np.where(np.isfinite(values), values, 0.0)
    counts = np.maximum(np.isfinite(values).sum(axis=0), 1)
    return np.where(done, filled.sum(axis=0) / counts, np.nan)


def _si(value: float, unit: str) -> str:
    return format_si(float(value), unit) if math.isfinite(value) else "—"


def _share(part: float, total: float) -> str:
    finite = math.isfinite(part) and math.isfinite(total) and total != 0
    return f"{100 * part / total:.1f} %" if finite else "—"


def _mm2(area_um2: float) -> str:
    return f"{area_um2 / 1e6:.3g} mm²" if math.isfinite(area_um2) else "—"


def _count(value: float) -> str:
    return f"{value:,.0f}" if math.isfinite(value) else "—"


def layers_table(cost_run: RunData) -> str:
    """One row per analog layer, then the layers left digital and the total: energy per
    inference and its parts' shares, latency and area; numbers are means over the models."""
    data, parts = cost_run.data, [str(p) for p in cost_run.axes["part"]]
    energy = _mean(data["energy_J"])  # (layer, part)
    kinds, cards = cost_run.attrs.get("layer_kind", []), cost_run.attrs.get("layer_card", [])
    rows = []
    for i, layer in enumerate(cost_run.axes["layer"]):
        total = float(np.sum(energy[i]))
        rows.append([str(layer), str(kinds[i]) if i < len(kinds) else "",
                     str(cards[i]) if i < len(cards) else "",
                     *(_count(_mean(data[m])[i]) for m in ("mvms", "tiles", "devices")),
                     _si(total, "J"), *(_share(energy[i, j], total) for j in range(len(parts))),
                     _si(_mean(data["latency_s"])[i], "s"), _mm2(_mean(data["area_um2"])[i])])
    digital = float(_mean(data["digital_macs_J"]))
    whole = float(_mean(data["energy_total_J"]))
    if digital > 0:
        rows.append(["layers left digital", "", "", "", "", "", _si(digital, "J"),
                     *([""] * len(parts)), "", ""])
    analog_parts = energy.sum(axis=0)
    rows.append(["total", "", "", "", "", "", _si(whole, "J"),
                 *(_share(analog_parts[j], whole) for j in range(len(parts))),
                 _si(float(_mean(data["latency_total_s"])), "s"),
                 _mm2(float(_mean(data["area_total_um2"])))])
    header = ["layer", "kind", "card", "MVMs/tile", "tiles", "devices", "energy",
              *(_PART_NAMES.get(p, p) for p in parts), "latency", "area"]
    return html_table(header, rows, caption=(
        "Energy per inference of each analog layer and the share of its array reads, DACs, "
        "ADCs and digital periphery; the total's shares are of the whole inference, "
        "digital layers included. Latency: the layers in sequence, a layer's tiles in "
        "parallel."))


def models_table(cost_run: RunData) -> str:
    """One row per model (seed, or method and seed), when the run priced more than one."""
    data = cost_run.data
    if len(cost_run.axes["model"]) < 2:
        return ""
    array = [str(p) for p in cost_run.axes["part"]].index("array")
    rows = []
    for i, model in enumerate(cost_run.axes["model"]):
        whole = float(data["energy_total_J"][i])
        rows.append([str(model), _si(whole, "J"),
                     _share(float(np.sum(data["energy_J"][i, :, array])), whole),
                     _si(float(data["latency_total_s"][i]), "s"),
                     f"{data['tops_per_watt'][i]:.3g}", f"{data['tops'][i]:.3g}"])
    return html_table(["model", "energy per inference", "array", "latency", "TOPS/W", "TOPS"],
                      rows, caption="Each trained model priced on its own: the array energy "
                                    "follows its weights (their target conductances).")


def grid_table(cost_run: RunData) -> str:
    """A sweep's totals at every point of its card grid (mean over the models); nothing for
    other runs."""
    if "grid_energy_J" not in cost_run.data:
        return ""
    dims = cost_run.dims["grid_energy_J"][1:]
    energy, latency, efficiency = (_mean(cost_run.data[m]) for m in (
        "grid_energy_J", "grid_latency_s", "grid_tops_per_watt"))
    rows = []
    for point in np.ndindex(energy.shape):
        cells = [format_axis_value(cost_run, d, cost_run.axes[d][i])
                 for d, i in zip(dims, point, strict=True)]
        tops_w = float(efficiency[point])
        rows.append([*cells, _si(float(energy[point]), "J"), _si(float(latency[point]), "s"),
                     f"{tops_w:.3g}" if math.isfinite(tops_w) else "—"])
    return html_table([*dims, "energy per inference", "latency", "TOPS/W"], rows, caption=(
        "At each point of the grid, on its cards: the totals of one inference (mean over the "
        "models). — : the point's card cannot be priced (an ideal ADC)."))


def cost_html(run: RunData, cost_run: RunData | None) -> str:
    """The cost part of ``run``'s section: the tables, or the reason the run is not priced,
    or nothing."""
    if cost_run is None:
        reason = run.attrs.get("cost")
        return paragraph(f"Cost: {reason}.", note=True) if reason else ""
    data = cost_run.data
    n = len(cost_run.axes["model"])
    over = f"mean over {n} trained models" if n > 1 else "one trained model"
    totals = (f"Per inference ({over}): {_si(float(_mean(data['energy_total_J'])), 'J')}, "
              f"latency {_si(float(_mean(data['latency_total_s'])), 's')}, area "
              f"{_mm2(float(_mean(data['area_total_um2'])))}; "
              f"{float(_mean(data['tops_per_watt'])):.3g} TOPS/W, "
              f"{float(_mean(data['tops'])):.3g} TOPS.")
    grid = (", before the grid changes it (the last table prices each grid point on its "
            "cards)" if "grid_energy_J" in data else "")
    how = (f"Priced by asim.cost from the [cost] section of the card "
           f"{cost_run.attrs.get('card', '?')} as the spec gives it{grid}, for "
           f"{cost_run.attrs.get('example_input', 'one input')}, the devices at their target "
           "conductances (right after programming). docs/cost.md gives the formulas and what "
           "they leave out.")
    uncounted = str(cost_run.attrs.get("uncounted", "none"))
    parts = ["<h3>Cost per inference</h3>", paragraph(totals), layers_table(cost_run),
             models_table(cost_run), grid_table(cost_run), paragraph(how, note=True),
             paragraph(f"Not counted: {uncounted}." if uncounted != "none" else "", note=True)]
    return "\n".join(p for p in parts if p)


def cost_section(run: RunData, results: Results, out_dir: Path) -> str:
    """A cost run whose source run the file does not hold: its own section."""
    return "\n".join([heading(run.name, run.attrs.get("title", run.name)),
                      cost_html(run, run)])
