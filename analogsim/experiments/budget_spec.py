"""Specs of kind ``budget``: the per-layer noise budget of a model on a card.

::

    [experiment]
    name = "digits_mlp_pcm_budget"
    kind = "budget"

    [data]  /  [model]  /  [training]   # as for every spec; one model
    [chip]                              # as for kind sweep: card, overrides, per_layer

    [budget]
    tolerance_pp = 1.0                  # accuracy loss allowed, percentage points
    time_s = 86400                      # accuracy measured this long after programming (s)
    instances = 8                       # chip instances per evaluation
    seeds = [0, 1]                      # one budget per seed; two or more test the ranking
    knobs = ["read_noise.scale", "programming.scale", "drift_time", "adc.bits",
             "conductance.levels"]      # default: those of these the card has
    grids = { "adc.bits" = [9, 8, 7, 6, 5, 4, 3, 2] }   # optional: values tried per knob
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analogsim.errors import SpecError
from analogsim.experiments.budget import DEFAULT_KNOBS, Knob, card_knobs, make_knob
from analogsim.experiments.chip_spec import ChipSetup, chip_setup
from analogsim.experiments.spec_fields import (
    ModelSetup,
    check_keys,
    is_number,
    model_setup,
    number_list,
    positive_int,
    seed_list,
    table,
)
from analogsim.units import TIME_RANGE, is_valid_time


@dataclass(frozen=True)
class BudgetSpec:
    """A validated spec of kind ``budget``."""

    name: str
    description: str
    setup: ModelSetup
    chip: ChipSetup
    knobs: tuple[Knob, ...]
    tolerance_pp: float
    time_s: float
    instances: int
    seeds: tuple[int, ...]
    text: str


def parse_budget_spec(data: dict[str, Any], text: str, source: str) -> BudgetSpec:
    """Validate the TOML of a spec of kind ``budget`` (already parsed into ``data``)."""
    check_keys(data, {"experiment", "data", "model", "training", "chip", "budget"}, source)
    experiment = table(data, "experiment", source)
    budget = table(data, "budget", source, required=False)
    where = f"{source}: [budget]"
    check_keys(budget, {"tolerance_pp", "time_s", "instances", "seeds", "knobs", "grids"}, where)
    chip = chip_setup(data, source)
    tolerance = budget.get("tolerance_pp", 1.0)
    time_s = budget.get("time_s", 86400.0)
    for key, value in (("tolerance_pp", tolerance), ("time_s", time_s)):
        if not is_number(value) or not value > 0:
            raise SpecError(f"{where}: {key} must be a number > 0, got {value!r}")
    if not is_valid_time(time_s):
        raise SpecError(f"{where}: time_s must be {TIME_RANGE}, got {time_s!r}")
    seeds = seed_list(budget.get("seeds", [0]), f"{where}.seeds")
    grids = budget.get("grids", {})
    if not isinstance(grids, dict):
        raise SpecError(f"{where}: grids must be a table knob → values, got {grids!r}")
    names = budget.get("knobs")
    if names is None:
        knobs = [make_knob(chip.chip, k.name, float(time_s),
                           number_list(grids[k.name], f"{where}.grids.{k.name}"))
                 if k.name in grids else k for k in card_knobs(chip.chip, float(time_s))]
    elif not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise SpecError(f"{where}: knobs must be a non-empty list of names such as "
                        f"{list(DEFAULT_KNOBS)}, got {names!r}")
    else:
        knobs = [make_knob(chip.chip, name, float(time_s),
                           number_list(grids[name], f"{where}.grids.{name}")
                           if name in grids else None) for name in names]
    unused = sorted(set(grids) - {k.name for k in knobs})
    if unused:
        raise SpecError(f"{where}: grids names {unused[0]!r}, which is not among the knobs "
                        f"{[k.name for k in knobs]}")
    if not knobs:
        raise SpecError(f"{where}: card {chip.chip.name!r} has none of the noise knobs "
                        f"{list(DEFAULT_KNOBS)}; name knobs it has")
    return BudgetSpec(
        name=str(experiment.get("name", Path(source).stem)),
        description=str(experiment.get("description", "")),
        setup=model_setup(data, source, one_model=True), chip=chip, knobs=tuple(knobs),
        tolerance_pp=float(tolerance), time_s=float(time_s),
        instances=positive_int(budget.get("instances", 8), f"{where}.instances"),
        seeds=seeds, text=text)
