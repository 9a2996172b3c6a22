"""The cost-budget example: per-layer ADC bits of least energy for the digits MLP on pcm_hermes.

Reads the results file of ``benchmarks/reproduce/budget_energy_digits.toml`` and writes, from
its ``budget_energy`` run alone:

- ``benchmarks/results/budget_energy_digits.json``: how the run was made and every design
  measured (:func:`analogsim.report.sections_budget_energy.energy_budget_summary`);
- ``docs/budget_energy_pareto.png``: the report's Pareto plot, drawn from that JSON;
- ``benchmarks/results/budget_energy_digits.section.md``: the docs section, rendered from that
  JSON, which ``benchmarks/cost_example.py`` puts at the end of docs/cost.md.

Run::

    OMP_NUM_THREADS=1 analogsim run benchmarks/reproduce/budget_energy_digits.toml \\
        -o results/budget_energy_digits.h5
    python benchmarks/budget_energy_example.py results/budget_energy_digits.h5
    python benchmarks/cost_example.py --docs-only

``--docs-only`` redraws the figure and the section from the committed JSON.
``tests/test_budget_energy.py`` checks that the section is the JSON's render.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import analogsim as asim
from analogsim.cards import chip_to_dict
from analogsim.report.plots_pareto import plot_pareto
from analogsim.report.sections_budget_energy import (
    energy_budget_summary,
    pareto_points,
    pareto_title,
)

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "benchmarks" / "reproduce" / "budget_energy_digits.toml"
RESULTS = ROOT / "benchmarks" / "results" / "budget_energy_digits.json"
SECTION = ROOT / "benchmarks" / "results" / "budget_energy_digits.section.md"
FIGURE = ROOT / "docs" / "budget_energy_pareto.png"


def summarize(path: str | Path) -> dict[str, Any]:
    """The JSON of the example: the run's summary, its spec and how it was made."""
    results = asim.load_results(path)
    attrs = results.attrs
    if "finished" not in attrs:
        raise SystemExit(f"{path}: the run has not finished; run the same command to resume it")
    started, finished = (datetime.fromisoformat(str(attrs[k])) for k in ("started", "finished"))
    spec = tomllib.loads(results.config["spec"])
    card_cost = chip_to_dict(asim.load_chip(spec["chip"]["card"]))["cost"]
    return {"spec": str(SPEC.relative_to(ROOT)), "name": spec["experiment"]["name"],
            "setting": {k: spec[k] for k in ("model", "training", "chip", "budget")},
            "card_cost": card_cost,
            "made": {"host": str(attrs.get("host", "")),
                     "git_commit": str(attrs.get("git_commit")),
                     "analogsim": str(attrs.get("analogsim_version")),
                     "torch": str(attrs.get("torch_version")),
                     "wall_seconds": round((finished - started).total_seconds())},
            **energy_budget_summary(results.runs["budget_energy"])}


def _nJ(joules: float) -> str:
    return f"{joules * 1e9:.3g} nJ"


def _accuracy(design: dict[str, Any]) -> str:
    a = design["accuracy"]
    return f"{100 * a['mean']:.2f} % [{100 * a['low']:.2f}, {100 * a['high']:.2f}]"


def _drop(design: dict[str, Any]) -> str:
    d = design["drop_pp"]
    return f"{d['mean']:.2f} pp [{d['low']:.2f}, {d['high']:.2f}]"


def _fresh(data: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Design index → its row on fresh chips (none when the run has no confirmation)."""
    confirmation = data.get("confirmation") or {"designs": []}
    return {row["index"]: row for row in confirmation["designs"]}


def _confirmation_sentence(data: dict[str, Any]) -> str:
    """Whether the chosen design still holds on the fresh chips."""
    confirmation = data.get("confirmation")
    if not confirmation:
        return ("It was not re-measured on fresh chips, so its accuracy is biased upwards by "
                "the selection.")
    row = _fresh(data)[data["chosen_design"]]
    seeds = confirmation["seeds"]
    verdict = ("it still holds the tolerance, with 95 % confidence"
               if confirmation["holds_confidently"] else
               "it still holds the tolerance on the mean, though not with 95 % confidence"
               if confirmation["holds"] else
               "it does not hold the tolerance there: its margin on the search's chips was "
               "selection")
    return (f"**On {confirmation['chips']} fresh chips** (program seeds {seeds[0]}–{seeds[-1]},"
            f" never used in the search) it is {_drop(row)} below the card design measured "
            f"on the same chips: {verdict}.")


def _what_the_bits_move(knobs: list[str], card: str, cost: dict[str, Any]) -> list[str]:
    """What the chosen knobs change in the card's cost model (its ``[cost]`` keys), and so
    where the saving can come from."""
    parts = []
    if "adc.bits" in knobs:
        parts.append("the ADC bits set each conversion's energy (FOM · 2^bits)")
    if "dac.bits" in knobs:
        moved = [f"the length of {card}'s pulse-width input ((2^(bits−1) − 1) steps), and with "
                 "it the array reads' energy and the MVM's time"] if "read_step_time_s" in cost \
            else []
        moved += ["each input conversion's energy (a capacitive DAC's 2^bits unit "
                  "capacitors)"] if "dac_step_energy_J" in cost else []
        parts.append("the DAC bits set " + (" and ".join(moved) if moved else
                                            "nothing in this card's cost (fixed read and DAC)"))
    return [f"What the chosen bits move: {'; '.join(parts)}. The digital periphery, the same "
            "in every design, bounds what any choice of bits can save."]


def render_section(data: dict[str, Any]) -> str:
    """The docs section from the JSON alone."""
    designs, layers = data["designs"], data["layers"]
    card, uniform, chosen = (designs[data[k]] for k in ("card_design", "uniform_design",
                                                        "chosen_design"))
    budget, training = data["setting"]["budget"], data["setting"]["training"]
    hidden = data["setting"]["model"]["options"]["hidden"]
    chips = len(data["chip_seeds"]) * data["instances"]
    knobs = data["knobs"]
    lines = [
        "## Budgets that optimise energy", "",
        "A `budget` spec with an `objective` chooses, per analog layer, the bits of least "
        "energy per inference whose accuracy stays within `tolerance_pp` of the card's own "
        "accuracy at its own bits (the *card design*); [experiments.md](experiments.md#cost-"
        "budgets) gives the spec and the search: each layer's bits lowered alone to its "
        "minimum, every layer at one common value lowered together (the *uniform baseline*: "
        "the fewest common bits that hold), then greedy steps, the largest energy saving per "
        "accuracy cost first, each kept if the joint design holds. Every design is priced by "
        "`asim.cost` and measured on the same chips. The report draws accuracy against energy "
        "per inference over every design measured, marks the Pareto front, the chosen design "
        "and the uniform baseline. The chosen design's accuracy on the chips it was chosen on "
        "is biased upwards (the search keeps the designs that happened to hold there), so it, "
        "the card design and the uniform baseline are measured again on fresh chips, never "
        "used in the search.", "",
        f"**Example** ([`{data['spec']}`](../{data['spec']})): the digits MLP "
        f"(64-{'-'.join(map(str, hidden))}-10, {training['epochs']} epochs) on "
        f"`{data['card']}`, {' and '.join(knobs)} chosen per layer from {budget['bits']}, "
        "accuracy "
        f"{data['time_s'] / 86400:g} day after programming on {data['test_samples']} test "
        f"digits, {len(data['chip_seeds'])} seeds × {data['instances']} instances = {chips} "
        f"chips, tolerance {data['tolerance_pp']:g} pp below the card design's "
        f"{100 * data['baseline_accuracy']:.2f} %. {len(designs)} designs measured"
        + (f", then the card design, the uniform baseline and the chosen design on "
           f"{data['confirmation']['chips']} fresh chips" if data.get("confirmation") else "")
        + f", in {data['made']['wall_seconds']} s, training included.", "",
        f"| design | {', '.join(knobs)} of layers {', '.join(layers)} | energy per inference "
        "| accuracy [95 % CI] | below the card design [95 % CI] | fresh chips: accuracy [95 % "
        "CI] | fresh chips: below the card design [95 % CI] |", "|---|---|---|---|---|---|---|"]
    fresh = _fresh(data)
    for name, design in (("card design", card), ("uniform baseline", uniform),
                         ("**chosen**", chosen)):
        bits = "; ".join("-".join(map(str, per_layer)) for per_layer in design["bits"])
        row = fresh.get(designs.index(design))
        lines.append(f"| {name} | {bits} | {_nJ(design['energy_J'])} | {_accuracy(design)} | "
                     f"{_drop(design) if design is not card else '—'} | "
                     f"{_accuracy(row) if row else 'not measured'} | "
                     f"{_drop(row) if row and design is not card else '—'} |")
    saving_card = 1 - chosen["energy_J"] / card["energy_J"]
    lines += [
        "", f"**The chosen per-layer bits use {100 * data['saving']:.1f} % less energy per "
        f"inference than the uniform baseline** ({_nJ(chosen['energy_J'])} against "
        f"{_nJ(uniform['energy_J'])}; {100 * saving_card:.0f} % less than the card design), "
        f"within the tolerance on the {chips} chips they were chosen on. "
        f"{_confirmation_sentence(data)} Per layer:", "",
        "| layer | " + " | ".join(f"{k}: fewest alone | {k}: chosen | {k}: uniform"
                                  for k in knobs) + " | energy, chosen | energy, uniform |",
        "|---" * (3 * len(knobs) + 3) + "|"]
    for j, layer in enumerate(layers):
        per_knob = [f"{data['minimum'][i][j]} | {chosen['bits'][i][j]} | {uniform['bits'][i][j]}"
                    for i in range(len(knobs))]
        lines.append(f"| {layer} | {' | '.join(per_knob)} | {_nJ(chosen['layer_energy_J'][j])} "
                     f"| {_nJ(uniform['layer_energy_J'][j])} |")
    lines += ["", *_what_the_bits_move(knobs, data["card"], data["card_cost"]), "",
        "![Accuracy against energy per inference of every design measured](budget_energy_pareto"
        ".png)", "",
        f"The bars are the {data['ci']}; every design is measured on the same chips, so the "
        "differences to the card design are paired by chip."
        + (" The hollow purple circles, beside the card design, the uniform baseline and the "
           "chosen design, are those designs on the fresh chips, with their "
           f"{data['confirmation']['ci']}." if data.get("confirmation") else "")
        + " What the figure does not say: every accuracy is of one trained model, on the "
        "same test digits the search used.", ""]
    return "\n".join(lines)


def write_docs(data: dict[str, Any]) -> None:
    """The figure and the section from the JSON."""
    plot_pareto(pareto_points(data), FIGURE, pareto_title(data))
    SECTION.write_text(render_section(data), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", help="the results file of the spec")
    parser.add_argument("--docs-only", action="store_true",
                        help="redraw the figure and the section from the committed JSON")
    args = parser.parse_args()
    if not args.docs_only:
        if args.results is None:
            parser.error("give the results file, or --docs-only")
        RESULTS.write_text(json.dumps(summarize(args.results), indent=1) + "\n",
                           encoding="utf-8")
    write_docs(json.loads(RESULTS.read_text(encoding="utf-8")))
    print(f"wrote {FIGURE} and {SECTION}; run python benchmarks/cost_example.py --docs-only "
          "to put the section into docs/cost.md")


if __name__ == "__main__":
    main()
