"""The worked cost example: a 256×256 MVM at 8-bit input on the ``pcm_hermes`` card.

Prices one MVM of a 256×256 weight matrix (one core of IBM's 64-core PCM chip, Le Gallo et
al., Nature Electronics 2023) with :func:`analogsim.cost`, beside the paper's figures
(2.48–9.76 TOPS/W, 16.1–63.1 TOPS), and how the result moves with the weights' distribution and
the ADC figure of merit. Weights: uniform in [−1, 1] (seed 0), or standard normal; the input:
one vector at full scale (every row driven for the whole read, the largest array energy).

Writes ``benchmarks/results/cost_example.json`` and, from it and the prose of
``benchmarks/templates/cost.md.in``, ``docs/cost.md``.

Run: ``python benchmarks/cost_example.py`` (a second); ``--docs-only`` rewrites the page from
the committed JSON. ``tests/test_cost.py`` checks that the JSON is what :func:`run` gives and
that the page is its render.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

import analogsim as asim
from analogsim.cards import Cost, chip_to_dict
from analogsim.cost import PARTS, si
from analogsim.tiles.cost import input_drive

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "cost_example.json"
PAGE = ROOT / "docs" / "cost.md"
#: the page's prose before the worked example: the model, its sources, what it leaves out
TEMPLATE = ROOT / "benchmarks" / "templates" / "cost.md.in"
#: the cost-budget section, rendered by benchmarks/budget_energy_example.py from its JSON
BUDGET_SECTION = ROOT / "benchmarks" / "results" / "budget_energy_digits.section.md"

CARD = "pcm_hermes"
SIZE = 256  # rows and columns of one core
CORES = 64
SEED = 0
#: Le Gallo et al. 2023, abstract: 8-bit input/output MVMs on all 64 cores
PAPER = {"one-phase": {"tops_per_watt": 9.76, "tops": 63.1},
         "four-phase": {"tops_per_watt": 2.48, "tops": 16.1}}
#: read phases per MVM of each mode: four phases are taken as four one-phase MVMs
PHASES = {"one-phase": 1, "four-phase": 4}
#: where each [cost] figure of the card comes from (its comments say the same at length)
TAGS = {
    "read_voltage_V": "ASSUMED: a PCM read bias below threshold switching; the abstracts give "
                      "none",
    "read_step_time_s": "PAPER: sign + 7-bit pulse width, 1 ns a step at the 1-GHz clock "
                        "[Khaddam-Aljameh 2022]: 127 ns at 8 bits",
    "dac_energy_J": "ASSUMED: one word line charged per MVM, about 0.16 pF at 0.8 V",
    "adc_fom_J": "DERIVED: median Walden FOM of the 86 Nyquist ADCs with 6 ≤ ENOB ≤ 9 at "
                 "ISSCC and VLSI 2010–2025 (Murmann's survey)",
    "adc_conversion_time_s": "DERIVED: 133 ns per MVM (63.1 TOPS over 64 cores) minus the "
                             "127-ns read",
    "columns_per_adc": "PAPER: 256 ADCs per 256-column core [Khaddam-Aljameh 2022]",
    "cell_area_um2": "DERIVED: 0.62 mm² per core (0.986 TOPS at 1.59 TOPS/mm²) over 131,072 "
                     "devices; the periphery's area folded in",
    "adc_area_um2": "folded into cell_area_um2",
    "digital_energy_per_output_J": "ASSUMED: a 16-bit float multiply and add, 1.5 pJ "
                                   "[Horowitz 2014, 45 nm]",
    "digital_mac_energy_J": "ASSUMED: an 8-bit integer multiply and add, 0.23 pJ "
                            "[Horowitz 2014, 45 nm]",
}
#: quartiles of the Walden FOM behind the card's median (devices/pcm_hermes.toml), J
ADC_FOM_QUARTILES = (19.8e-15, 119e-15)


def weight_matrix(kind: str) -> torch.Tensor:
    """(256, 256) weights: ``uniform`` in [−1, 1] or ``normal`` N(0, 1), from seed 0."""
    generator = torch.Generator().manual_seed(SEED)
    if kind == "uniform":
        return torch.rand(SIZE, SIZE, generator=generator) * 2 - 1
    return torch.randn(SIZE, SIZE, generator=generator)


def price(kind: str, **overrides: Any) -> dict[str, Any]:
    """One full-scale input vector through a 256×256 layer of ``kind`` weights."""
    chip = asim.load_chip(CARD, **overrides)
    layer = nn.Linear(SIZE, SIZE, bias=False)
    with torch.no_grad():
        layer.weight.copy_(weight_matrix(kind))
    report = asim.cost(asim.convert(nn.Sequential(layer), chip), torch.ones(1, SIZE))
    tile = report.layers[0].tile
    magnitude = layer.weight.detach().abs()
    return {"weights": kind, "overrides": overrides, "energy_J": report.energy_parts,
            "total_J": report.energy_J, "latency_s": report.latency_s,
            "area_um2": report.area_um2, "tops_per_watt": report.tops_per_watt,
            "tops_per_core": report.tops, "devices": tile.devices,
            "conductance_uS": tile.conductance_uS, "mean_conductance_uS":
            tile.conductance_uS / tile.devices,
            "mean_abs_over_max": float(magnitude.mean() / magnitude.max())}


def run() -> dict[str, Any]:
    """The example's numbers (deterministic; no timing)."""
    chip = asim.load_chip(CARD)
    base = price("uniform")
    modes = {mode: {"model_tops_per_watt": base["tops_per_watt"] / phases,
                    "model_tops": CORES * base["tops_per_core"] / phases,
                    "paper_tops_per_watt": PAPER[mode]["tops_per_watt"],
                    "paper_tops": PAPER[mode]["tops"]}
             for mode, phases in PHASES.items()}
    low, high = ADC_FOM_QUARTILES
    sensitivity = [price("normal"), price("uniform", **{"cost.adc_fom_J": low}),
                   price("uniform", **{"cost.adc_fom_J": high})]
    return {"card": CARD, "size": SIZE, "cores": CORES, "seed": SEED,
            "cost": chip_to_dict(chip)["cost"], "read_time_s": input_drive(chip, chip.cost)[0],
            "adc_bits": chip.adc.bits, "dac_bits": chip.dac.bits,
            "g_max_uS": chip.conductance.g_max_uS, "one_mvm": base, "modes": modes,
            "sensitivity": sensitivity}


# ------------------------------------------------------------------------ the page


def _e(joules: float) -> str:
    return f"{joules * 1e9:.3g} nJ"


def _value(value: float, unit: str) -> str:
    """A card figure with its unit, SI-prefixed for joules and seconds."""
    return si(value, unit) if unit in ("J", "s") and value else f"{value:g} {unit}".rstrip()


def _parts_table(one: dict[str, Any], data: dict[str, Any]) -> list[str]:
    c = data["cost"]
    n, bits = data["size"], data["adc_bits"]
    formulas = {
        "array": f"ΣG·V²·t = {one['conductance_uS'] * 1e-6:.4g} S × ({c['read_voltage_V']:g} V)² × "
                 f"{data['read_time_s'] * 1e9:g} ns",
        "dac": f"{n} rows × 1 column group × {c['dac_energy_J'] * 1e12:g} pJ",
        "adc": f"{n} outputs × 1 row chunk × {c['adc_fom_J'] * 1e15:g} fJ × 2^{bits}",
        "digital_periphery": f"{n} outputs × 1 row chunk × "
                             f"{c['digital_energy_per_output_J'] * 1e12:g} pJ",
    }
    names = {"array": "array reads", "dac": "DACs", "adc": "ADCs",
             "digital_periphery": "digital periphery"}
    lines = ["| part | formula, with the card's figures | energy | share |", "|---|---|---|---|"]
    for part in PARTS[:4]:
        value = one["energy_J"][part]
        lines.append(f"| {names[part]} | {formulas[part]} | {_e(value)} | "
                     f"{100 * value / one['total_J']:.1f} % |")
    lines.append(f"| **total** | | **{_e(one['total_J'])}** | |")
    return lines


def render_page(data: dict[str, Any]) -> str:
    """docs/cost.md from the JSON alone."""
    one, c = data["one_mvm"], data["cost"]
    normal = next(row for row in data["sensitivity"] if row["weights"] == "normal")
    ops = 2 * data["size"] ** 2
    lines = ["# Cost: energy, latency and area beside accuracy", "",
             "<!-- Generated by `python benchmarks/cost_example.py` from "
             "benchmarks/results/cost_example.json and benchmarks/templates/cost.md.in, "
             "then benchmarks/results/budget_energy_digits.section.md (from "
             "`benchmarks/budget_energy_example.py`; `--docs-only` rewrites the page from "
             "them). Do not edit by hand. -->", "",
             TEMPLATE.read_text(encoding="utf-8").rstrip("\n"), "",
             f"## Worked example: a {data['size']}×{data['size']} MVM on `{data['card']}`", "",
             "IBM's 64-core PCM chip (Le Gallo et al., *Nature Electronics* 6, 680 (2023); "
             "arXiv:2212.02872) reports, for 8-bit input/output MVMs on its 64 cores of "
             "256×256, 63.1 TOPS at 9.76 TOPS/W in its one-phase (low-precision) read mode and "
             "16.1 TOPS at 2.48 TOPS/W in its four-phase (high-precision) mode. The card "
             "[`devices/pcm_hermes.toml`](../devices/pcm_hermes.toml) tags each of its figures "
             "[PAPER], [DERIVED] (how is said) or [ASSUMED] (why is said): from the paper, "
             f"256×256 tiles and {data['dac_bits']}-bit DACs and ADCs, and a unit cell of four "
             "PCM devices, two per polarity, which the card takes as one device of twice the "
             f"pcm card's 25-µS range (g_max = {data['g_max_uS']:g} µS, assumed). Its "
             "`[cost]`:", "",
             "| figure | value | where from |", "|---|---|---|"]
    units = {f.name: f.metadata["unit"] for f in dataclasses.fields(Cost)}
    lines += [f"| `{key}` | {_value(value, units[key])} | {TAGS[key]} |"
              for key, value in c.items() if key != "source"]
    lines += [
        "", f"One MVM: weights uniform in [−1, 1] (seed {data['seed']}), so max\\|W\\| maps to "
        f"g_max = {data['g_max_uS']:g} µS and the mean target conductance is "
        f"{one['mean_conductance_uS']:.3g} µS per device ({one['devices']:,} devices: a "
        "differential pair per weight, each device of the card standing for the chip's two "
        "PCM devices of one polarity); one input vector at full scale, every row driven for "
        f"the whole {data['read_time_s'] * 1e9:g}-ns read. `asim.cost` gives:", "",
        *_parts_table(one, data), "",
        f"{ops:,} ops (2 per MAC) in {_e(one['total_J'])}: "
        f"**{one['tops_per_watt']:.3g} TOPS/W**; one MVM takes "
        f"{one['latency_s'] * 1e9:.3g} ns: {one['tops_per_core']:.3g} TOPS per core. The "
        "four-phase mode is taken as four one-phase MVMs (four reads, four conversions: "
        "an assumption, the abstract does not say how the phases divide the work), so a "
        "quarter of both:", "",
        "| read mode | model TOPS/W | paper TOPS/W | model ÷ paper | model TOPS (64 cores) | "
        "paper TOPS |", "|---|---|---|---|---|---|"]
    for mode, m in data["modes"].items():
        lines.append(f"| {mode} | {m['model_tops_per_watt']:.3g} | "
                     f"{m['paper_tops_per_watt']:g} | "
                     f"{m['model_tops_per_watt'] / m['paper_tops_per_watt']:.2f} | "
                     f"{m['model_tops']:.3g} | {m['paper_tops']:g} |")
    lines += [
        "", "The efficiency is a prediction: no energy figure of the card was fitted to the "
        "paper's. The throughput is not: the card's 6-ns conversion time is what is left of "
        "the 133 ns per MVM that 63.1 TOPS over 64 cores implies, so the one-phase TOPS "
        f"match by construction, and so does the area ({one['area_um2'] / 1e6:.3g} mm² per "
        "core, from the core's published 1.59 TOPS/mm²). The model is the more efficient "
        "because it leaves out what the chip spends on clocking, control, leakage, buffers "
        "and moving data (listed above); the paper's figures are measured on the whole chip.", "",
        "How the one-phase efficiency moves with what the example assumes:", "",
        "| weights | ADC FOM | array | ADC | total | TOPS/W |", "|---|---|---|---|---|---|"]
    for row in [one, *data["sensitivity"]]:
        fom = row["overrides"].get("cost.adc_fom_J", c["adc_fom_J"])
        lines.append(f"| {row['weights']} | {fom * 1e15:g} fJ | {_e(row['energy_J']['array'])} "
                     f"| {_e(row['energy_J']['adc'])} | {_e(row['total_J'])} | "
                     f"{row['tops_per_watt']:.3g} |")
    lines += [
        "", "The array energy follows the mean target conductance, so mean\\|w\\| / "
        f"max\\|w\\|: {one['mean_abs_over_max']:.3g} for the uniform weights, "
        f"{normal['mean_abs_over_max']:.3g} for the normal ones, whose largest of 65,536 draws "
        "sets the scale; trained layers are closer to the normal case. The ADC figures of "
        "merit are the quartiles of the survey sample whose median the card takes.", ""]
    if BUDGET_SECTION.exists():
        lines += [BUDGET_SECTION.read_text(encoding="utf-8")]
    return "\n".join(lines)




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs-only", action="store_true",
                        help="rewrite docs/cost.md from the committed JSON")
    args = parser.parse_args()
    if not args.docs_only:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(run(), indent=1) + "\n", encoding="utf-8")
    PAGE.write_text(render_page(json.loads(RESULTS.read_text(encoding="utf-8"))),
                    encoding="utf-8")
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
