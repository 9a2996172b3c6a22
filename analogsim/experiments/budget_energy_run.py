"""Kind ``budget`` with an ``objective``: the per-layer bits of least energy, into a results file.

The results file holds ``/runs/budget_energy``, one row per measured design (axis ``design``,
labelled by its bits, e.g. ``"adc.bits 6-5-6"``): bits[design, knob, layer] (bits),
energy_J[design] and layer_energy_J[design, layer] (J per inference, :func:`analogsim.cost`),
accuracy[design, chip] (fraction; chips seed-major, seeds × instances, the same chips for
every design), holds[design] and pareto[design] (1 or 0), and minimum[knob, layer] (the
fewest bits of each layer alone). Its attributes name the stage of each design
(``design_stage``), the card design, the uniform baseline and the chosen design (indices),
the greedy path, the floor and the chosen design's energy saving against the uniform
baseline (``saving``, a fraction).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from analogsim.cost import si
from analogsim.experiments.budget_energy import OBJECTIVES, EnergyBudget, find_energy_budget
from analogsim.experiments.budget_spec import BudgetSpec
from analogsim.experiments.trained_models import load_data, trained_model
from analogsim.results import ResultsWriter, spec_fingerprint
from analogsim.sampling import sampling_attrs
from analogsim.units import format_duration

log = logging.getLogger(__name__)

RUN = "budget_energy"


def design_label(budget: EnergyBudget, index: int) -> str:
    """'adc.bits 6-5-6' (one value per layer, in layer order; knobs joined by '; ')."""
    bits = budget.designs[index].bits
    return "; ".join(f"{knob.name} {'-'.join(map(str, row))}"
                     for knob, row in zip(budget.knobs, bits, strict=True))


def run_energy_budget(spec: BudgetSpec, results_path: str | Path,
                      progress: bool = False) -> Path:
    """Train (or load) the spec's model and find the bits of least energy per layer."""
    results_path = Path(results_path)
    data = load_data(spec.setup)
    with ResultsWriter(results_path, fingerprint=spec_fingerprint(spec.text)) as writer:
        writer.add_config("spec", spec.text)
        writer.add_config("card", spec.chip.chip.to_toml())
        if writer.finished(RUN):
            log.info("%s: the cost budget is there already", results_path)
            return results_path
        model, _ = trained_model(spec.setup, spec.setup.seeds[0], data, writer,
                                 results_path.with_suffix(".checkpoints"), progress=progress)
        budget = find_energy_budget(
            model, (data.x_test, data.y_test), spec.chip.chip, spec.knobs,
            tolerance_pp=spec.tolerance_pp, time_s=spec.time_s, instances=spec.instances,
            seeds=spec.seeds, per_layer=spec.chip.per_layer, exclude=spec.chip.exclude,
            progress=progress)
        write_energy_budget(writer, spec, budget, len(data.y_test))
        chosen, uniform = budget.designs[budget.chosen], budget.designs[budget.uniform]
        log.info("chosen design %s: %s per inference, %.1f %% below the uniform baseline %s "
                 "(%s)", design_label(budget, budget.chosen), si(chosen.energy_J, "J"),
                 100 * budget.saving, design_label(budget, budget.uniform),
                 si(uniform.energy_J, "J"))
    return results_path


def write_energy_budget(writer: ResultsWriter, spec: BudgetSpec, budget: EnergyBudget,
                        test_samples: int) -> None:
    """Write ``/runs/budget_energy`` (see the module docstring)."""
    designs = budget.designs
    chips = len(spec.seeds) * spec.instances
    card = spec.chip.chip.name
    run = writer.create_run(
        RUN, axes={"design": [design_label(budget, n) for n in range(len(designs))],
                   "knob": [k.name for k in budget.knobs], "layer": budget.layers,
                   "chip": range(chips)},
        metrics={"bits": ("design", "knob", "layer"), "energy_J": ("design",),
                 "layer_energy_J": ("design", "layer"), "accuracy": ("design", "chip"),
                 "holds": ("design",), "pareto": ("design",), "minimum": ("knob", "layer")},
        units={"bits": "bit", "energy_J": "J", "layer_energy_J": "J", "accuracy": "fraction",
               "minimum": "bit"},
        attrs={"kind": RUN, "objective": str(spec.objective),
               "objective_unit": OBJECTIVES[str(spec.objective)],
               "title": f"{spec.name}: per-layer {', '.join(k.name for k in budget.knobs)} of "
                        f"least {spec.objective} on the {card} card",
               "summary": spec.description
               or f"Accuracy measured {format_duration(spec.time_s)} after programming on "
                  f"{chips} chips; tolerance {spec.tolerance_pp:g} pp below the card's own "
                  "accuracy at its own bits.",
               "card": card, "tolerance_pp": spec.tolerance_pp, "time_s": spec.time_s,
               "instances": spec.instances, "chip_seeds": list(spec.seeds),
               "test_samples": test_samples, "baseline_accuracy": budget.baseline,
               "floor": budget.floor, "knob_card_value": [k.card_value for k in budget.knobs],
               "design_stage": [d.stage for d in designs], "card_design": 0,
               "uniform_design": budget.uniform, "chosen_design": budget.chosen,
               "greedy_path": list(budget.path), "saving": budget.saving,
               "notes": list(budget.notes) or [""],
               **sampling_attrs(seed=1, chip=chips)},
        point_axes=0)
    run.write_table("bits", np.array([d.bits for d in designs], dtype=float))
    run.write_table("energy_J", [d.energy_J for d in designs])
    run.write_table("layer_energy_J", [d.layer_energy_J for d in designs])
    run.write_table("accuracy", np.stack([d.accuracy for d in designs]))
    run.write_table("holds", [float(d.holds) for d in designs])
    run.write_table("pareto", budget.pareto.astype(float))
    run.write_table("minimum", budget.minimum)
    run.write_point(())
