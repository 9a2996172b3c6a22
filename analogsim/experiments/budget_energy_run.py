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

With model-wide knobs (tile size, redundancy) it also holds setting[design, model_knob], each
design's value of each (units in the attribute ``model_knob_units``). With ``confirm_chips``
> 0 (:mod:`.budget_energy_confirm`) it holds confirm_accuracy[confirmed, fresh_chip]
(fraction; axis ``confirmed``: the card design, the uniform baseline and the chosen design,
each once; their indices in the attribute ``confirm_designs``), measured on fresh chips of the
program seeds ``confirm_seeds`` (``confirm_seed_chips`` chips each), and the verdict:
``confirm_floor`` (the card design's fresh mean − tolerance), ``confirm_holds`` and
``confirm_holds_confidently`` (1 or 0).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from analogsim.cost import si
from analogsim.experiments.budget_energy import OBJECTIVES, EnergyBudget, find_energy_budget
from analogsim.experiments.budget_energy_confirm import Confirmation, confirm_designs
from analogsim.experiments.budget_spec import BudgetSpec
from analogsim.experiments.trained_models import load_data, trained_model
from analogsim.results import ResultsWriter, spec_fingerprint
from analogsim.sampling import sampling_attrs
from analogsim.units import format_duration

log = logging.getLogger(__name__)

RUN = "budget_energy"


def design_label(budget: EnergyBudget, index: int) -> str:
    """'adc.bits 6-5-6' (one value per layer, in layer order; knobs joined by '; '), then
    one value per model-wide knob: 'adc.bits 6-5-6; mapping.tile_rows 128'."""
    design = budget.designs[index]
    return "; ".join([*(f"{knob.name} {'-'.join(map(str, row))}"
                        for knob, row in zip(budget.knobs, design.bits, strict=True)),
                      *(f"{knob.name} {value}" for knob, value in
                        zip(budget.model_knobs, design.setting, strict=True))])


def run_energy_budget(spec: BudgetSpec, results_path: str | Path,
                      progress: bool = False) -> Path:
    """Train (or load) the spec's model, find the bits of least energy per layer (and the
    model-wide setting, if chosen), then measure the card, uniform and chosen designs on
    ``spec.confirm_chips`` fresh chips (none when 0)."""
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
        confirmation = None
        if spec.confirm_chips:
            confirmation = confirm_designs(
                model, (data.x_test, data.y_test), spec.chip.chip, budget,
                chips=spec.confirm_chips, search_seeds=spec.seeds, instances=spec.instances,
                time_s=spec.time_s, per_layer=spec.chip.per_layer, exclude=spec.chip.exclude)
            drop = confirmation.drop(confirmation.chosen)
            log.info("on %d fresh chips the chosen design is %.2f pp [%.2f, %.2f] below the "
                     "card design: it %s the tolerance of %g pp", confirmation.chips,
                     100 * drop.mean, 100 * drop.low, 100 * drop.high,
                     "holds" if confirmation.holds else "does not hold", spec.tolerance_pp)
        write_energy_budget(writer, spec, budget, len(data.y_test), confirmation)
        chosen, uniform = budget.designs[budget.chosen], budget.designs[budget.uniform]
        log.info("chosen design %s: %s per inference, %.1f %% below the uniform baseline %s "
                 "(%s)", design_label(budget, budget.chosen), si(chosen.energy_J, "J"),
                 100 * budget.saving, design_label(budget, budget.uniform),
                 si(uniform.energy_J, "J"))
    return results_path


def _extra_axes(budget: EnergyBudget, confirmation: Confirmation | None
                ) -> tuple[dict, dict, dict, dict]:
    """(axes, metrics, units, attrs) of the model-wide knobs and the confirmation, if any."""
    axes: dict = {}
    metrics: dict = {}
    units: dict = {}
    attrs: dict = {}
    if budget.model_knobs:
        axes["model_knob"] = [k.name for k in budget.model_knobs]
        metrics["setting"] = ("design", "model_knob")
        attrs["model_knob_units"] = [k.unit for k in budget.model_knobs]
        attrs["model_knob_card_value"] = [k.card_value for k in budget.model_knobs]
    if confirmation is not None:
        axes["confirmed"] = [design_label(budget, n) for n in confirmation.designs]
        axes["fresh_chip"] = range(confirmation.chips)
        metrics["confirm_accuracy"] = ("confirmed", "fresh_chip")
        units["confirm_accuracy"] = "fraction"
        attrs.update(confirm_designs=list(confirmation.designs),
                     confirm_seeds=[s for s, _ in confirmation.seeds],
                     confirm_seed_chips=[n for _, n in confirmation.seeds],
                     confirm_chips=confirmation.chips, confirm_floor=confirmation.floor,
                     confirm_holds=int(confirmation.holds),
                     confirm_holds_confidently=int(confirmation.holds_confidently))
    return axes, metrics, units, attrs


def write_energy_budget(writer: ResultsWriter, spec: BudgetSpec, budget: EnergyBudget,
                        test_samples: int, confirmation: Confirmation | None = None) -> None:
    """Write ``/runs/budget_energy`` (see the module docstring)."""
    designs = budget.designs
    chips = len(spec.seeds) * spec.instances
    card = spec.chip.chip.name
    axes, metrics, units, attrs = _extra_axes(budget, confirmation)
    run = writer.create_run(
        RUN, axes={"design": [design_label(budget, n) for n in range(len(designs))],
                   "knob": [k.name for k in budget.knobs], "layer": budget.layers,
                   "chip": range(chips), **axes},
        metrics={"bits": ("design", "knob", "layer"), "energy_J": ("design",),
                 "layer_energy_J": ("design", "layer"), "accuracy": ("design", "chip"),
                 "holds": ("design",), "pareto": ("design",), "minimum": ("knob", "layer"),
                 **metrics},
        units={"bits": "bit", "energy_J": "J", "layer_energy_J": "J", "accuracy": "fraction",
               "minimum": "bit", **units},
        attrs={"kind": RUN, "objective": str(spec.objective),
               "objective_unit": OBJECTIVES[str(spec.objective)],
               "title": f"{spec.name}: per-layer {', '.join(k.name for k in budget.knobs)}"
                        + "".join(f", model-wide {k.name}" for k in budget.model_knobs)
                        + f" of least {spec.objective} on the {card} card",
               "summary": spec.description
               or f"Accuracy measured {format_duration(spec.time_s)} after programming on "
                  f"{chips} chips; tolerance {spec.tolerance_pp:g} pp below the card's own "
                  "accuracy at its own bits."
                  + (f" The card design, the uniform baseline and the chosen design measured "
                     f"again on {confirmation.chips} fresh chips." if confirmation else ""),
               "card": card, "tolerance_pp": spec.tolerance_pp, "time_s": spec.time_s,
               "instances": spec.instances, "chip_seeds": list(spec.seeds),
               "test_samples": test_samples, "baseline_accuracy": budget.baseline,
               "floor": budget.floor, "knob_card_value": [k.card_value for k in budget.knobs],
               "design_stage": [d.stage for d in designs], "card_design": 0,
               "uniform_design": budget.uniform, "chosen_design": budget.chosen,
               "greedy_path": list(budget.path), "saving": budget.saving,
               "notes": list(budget.notes) or [""],
               **sampling_attrs(seed=1, chip=chips), **attrs},
        point_axes=0)
    run.write_table("bits", np.array([d.bits for d in designs], dtype=float))
    run.write_table("energy_J", [d.energy_J for d in designs])
    run.write_table("layer_energy_J", [d.layer_energy_J for d in designs])
    run.write_table("accuracy", np.stack([d.accuracy for d in designs]))
    run.write_table("holds", [float(d.holds) for d in designs])
    run.write_table("pareto", budget.pareto.astype(float))
    run.write_table("minimum", budget.minimum)
    if budget.model_knobs:
        run.write_table("setting", np.array([d.setting for d in designs], dtype=float))
    if confirmation is not None:
        run.write_table("confirm_accuracy", confirmation.accuracy)
    run.write_point(())
