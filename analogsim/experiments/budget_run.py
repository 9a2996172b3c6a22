"""Kind ``budget``: per-layer and joint noise budgets, per seed, and how stable the ranking is.

The results file holds:

- ``/runs/budget``: limit[knob, layer, seed] and joint_limit[knob, layer, seed] (each in the
  knob's unit), censored[knob, layer, seed] (1: the whole grid passed, the limit is a lower
  bound), joint_accuracy[knob, seed] and baseline_accuracy[seed] (fractions); attributes
  name the most sensitive layer, the ranking and whether the seeds agree on it;
- ``/runs/budget_curve_<knob>``: the evidence of the first seed, accuracy[layer, value,
  instance] along the knob's grid;
- ``/runs/budget_cost``, when the card has a ``[cost]`` section: the model's energy, latency
  and area on the card (:mod:`.cost_record`).

A spec with an ``objective`` (a cost budget) runs :func:`.budget_energy_run.run_energy_budget`
instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from analogsim.experiments.budget import Budget, find_budget
from analogsim.experiments.budget_energy_run import run_energy_budget
from analogsim.experiments.budget_spec import BudgetSpec
from analogsim.experiments.cost_record import CostRecord
from analogsim.experiments.trained_models import load_data, trained_model
from analogsim.results import ResultsWriter, spec_fingerprint
from analogsim.sampling import sampling_attrs
from analogsim.units import format_duration

log = logging.getLogger(__name__)


def ranking_verdict(budgets: list[Budget], seeds: tuple[int, ...]) -> tuple[list[str], bool, str]:
    """The ranking of the first seed, whether every seed gives it, and a sentence saying so."""
    rankings = [b.sensitivity_ranking() for b in budgets]
    first = rankings[0]
    if len(rankings) == 1:
        return first, True, ("one seed only: run with more seeds to see whether the ranking "
                             "holds")
    if all(r == first for r in rankings):
        return first, True, (f"seeds {', '.join(map(str, seeds))} give the same ranking "
                             f"{' > '.join(first)}")
    moved = sorted({layer for r in rankings for i, layer in enumerate(r) if first[i] != layer})
    same_top = all(r[0] == first[0] for r in rankings)
    per_seed = "; ".join(f"seed {s}: {' > '.join(r)}" for s, r in zip(seeds, rankings,
                                                                       strict=True))
    return first, same_top, (
        f"the seeds order layers {', '.join(moved)} differently ({per_seed}): their "
        "sensitivities are within the Monte-Carlo noise of this budget"
        + (f"; {first[0]} is the most sensitive in every seed" if same_top else
           "; which layer is the most sensitive is within noise"))


def run_budget(spec: BudgetSpec, results_path: str | Path, progress: bool = False) -> Path:
    """Train (or load) the spec's model and find its budget for every seed (or, with an
    objective, the per-layer bits of least cost)."""
    if spec.objective is not None:
        return run_energy_budget(spec, results_path, progress=progress)
    results_path = Path(results_path)
    data = load_data(spec.setup)
    knobs = spec.knobs
    with ResultsWriter(results_path, fingerprint=spec_fingerprint(spec.text)) as writer:
        writer.add_config("spec", spec.text)
        writer.add_config("card", spec.chip.chip.to_toml())
        if writer.finished("budget"):
            log.info("%s: the budget is there already", results_path)
            return results_path
        model, _ = trained_model(spec.setup, spec.setup.seeds[0], data, writer,
                                 results_path.with_suffix(".checkpoints"), progress=progress)
        budgets = [find_budget(model, (data.x_test, data.y_test), spec.chip.chip, knobs=knobs,
                               tolerance_pp=spec.tolerance_pp, time_s=spec.time_s,
                               instances=spec.instances, seed=seed,
                               per_layer=spec.chip.per_layer, exclude=spec.chip.exclude,
                               progress=progress)
                   for seed in spec.seeds]
        layers = budgets[0].layers
        ranking, stable, note = ranking_verdict(budgets, spec.seeds)
        run = writer.create_run(
            "budget", axes={"knob": [k.name for k in knobs], "layer": layers,
                            "seed": spec.seeds},
            metrics={"limit": ("knob", "layer", "seed"), "joint_limit": ("knob", "layer", "seed"),
                     "censored": ("knob", "layer", "seed"),
                     "joint_accuracy": ("knob", "seed"), "baseline_accuracy": ("seed",)},
            units={"joint_accuracy": "fraction", "baseline_accuracy": "fraction"},
            attrs={"kind": "budget", "title": f"{spec.name}: noise budget per layer on the "
                                              f"{spec.chip.chip.name} card",
                   "summary": spec.description
                   or f"Accuracy measured {format_duration(spec.time_s)} after programming, "
                      f"mean of {spec.instances} chip instances; tolerance "
                      f"{spec.tolerance_pp:g} pp below the card's own accuracy.",
                   "card": spec.chip.chip.name, "tolerance_pp": spec.tolerance_pp,
                   "time_s": spec.time_s, "instances": spec.instances,
                   "test_samples": len(data.y_test),
                   "knob_units": [k.unit for k in knobs],
                   "knob_harsher": [k.harsher for k in knobs],
                   "knob_card_value": [k.card_value for k in knobs],
                   "most_sensitive_layer": ranking[0], "ranking": " > ".join(ranking),
                   "ranking_stable": int(stable), "ranking_note": note},
            point_axes=0)
        run.write_table("limit", np.stack([b.limits for b in budgets], axis=-1))
        run.write_table("joint_limit", np.stack([b.joint_limits for b in budgets], axis=-1))
        run.write_table("censored", np.stack([b.censored for b in budgets], axis=-1))
        run.write_table("joint_accuracy", np.stack([b.joint_accuracy for b in budgets], -1))
        run.write_point((), baseline_accuracy=[b.baseline for b in budgets])
        CostRecord(writer, "budget", spec.chip.chip, [f"seed {spec.setup.seeds[0]}"],
                   data.x_test[:1], spec.chip.per_layer, spec.chip.exclude).add(0, model)
        for i, knob in enumerate(knobs):
            curve = writer.create_run(
                f"budget_curve_{knob.name}",
                axes={"layer": layers, knob.name: knob.grid,
                      "instance": range(spec.instances)},
                units={knob.name: knob.unit, "accuracy": "fraction"},
                attrs={"kind": "budget_curve", "knob": knob.name,
                       "title": f"accuracy against {knob.name}, one layer at a time "
                                f"(seed {spec.seeds[0]})",
                       "tolerance_pp": spec.tolerance_pp,
                       "baseline_accuracy": budgets[0].baseline,
                       "test_samples": len(data.y_test),
                       **sampling_attrs(seed=1, instance=spec.instances)},
                point_axes=1)
            for j in range(len(layers)):
                curve.write_point((j,), accuracy=budgets[0].curves[i][j])
        log.info("most sensitive layer: %s (%s)", ranking[0], note)
    return results_path
