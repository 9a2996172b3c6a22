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

With ``objective`` the budget optimises cost instead (:mod:`.budget_energy`): per layer, the
bits of least energy per inference within the tolerance, on a card with a ``[cost]`` section::

    [budget]
    objective = "energy"                # minimise energy per inference (J), from [cost]
    choose = ["adc.bits"]               # chosen per layer: "adc.bits" and/or "dac.bits"
    bits = [4, 5, 6, 7, 8]              # values a layer may take, ≤ the card's bits; or a
                                        # table knob → values; default: card's bits down to 2
    tolerance_pp = 1.0                  # below the card's accuracy at its own bits
    time_s = 86400
    instances = 8                       # chips per seed; every design on seeds × instances
    seeds = [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analogsim.errors import SpecError
from analogsim.experiments.budget import DEFAULT_KNOBS, Knob, card_knobs, make_knob
from analogsim.experiments.budget_energy import CHOICES, OBJECTIVES, bits_knob
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
    objective: str | None = None  # "energy": the knobs are chosen per layer to minimise it


def parse_budget_spec(data: dict[str, Any], text: str, source: str) -> BudgetSpec:
    """Validate the TOML of a spec of kind ``budget`` (already parsed into ``data``)."""
    check_keys(data, {"experiment", "data", "model", "training", "chip", "budget"}, source)
    experiment = table(data, "experiment", source)
    budget = table(data, "budget", source, required=False)
    where = f"{source}: [budget]"
    check_keys(budget, {"tolerance_pp", "time_s", "instances", "seeds", "knobs", "grids",
                        "objective", "choose", "bits"}, where)
    chip = chip_setup(data, source)
    tolerance = budget.get("tolerance_pp", 1.0)
    time_s = budget.get("time_s", 86400.0)
    for key, value in (("tolerance_pp", tolerance), ("time_s", time_s)):
        if not is_number(value) or not value > 0:
            raise SpecError(f"{where}: {key} must be a number > 0, got {value!r}")
    if not is_valid_time(time_s):
        raise SpecError(f"{where}: time_s must be {TIME_RANGE}, got {time_s!r}")
    seeds = seed_list(budget.get("seeds", [0]), f"{where}.seeds")
    objective = budget.get("objective")
    if objective is not None or "choose" in budget or "bits" in budget:
        knobs = cost_knobs(budget, chip, where)
    else:
        knobs = noise_knobs(budget, chip, float(time_s), where)
    return BudgetSpec(
        name=str(experiment.get("name", Path(source).stem)),
        description=str(experiment.get("description", "")),
        setup=model_setup(data, source, one_model=True), chip=chip, knobs=tuple(knobs),
        tolerance_pp=float(tolerance), time_s=float(time_s),
        instances=positive_int(budget.get("instances", 8), f"{where}.instances"),
        seeds=seeds, text=text, objective=objective)


def cost_knobs(budget: dict[str, Any], chip: ChipSetup, where: str) -> list[Knob]:
    """The knobs of a cost budget (``objective``, ``choose``, ``bits``), checked against the
    card: it must have a ``[cost]`` section to price the designs."""
    objective = budget.get("objective")
    if objective not in OBJECTIVES:
        raise SpecError(f"{where}: objective must be one of {list(OBJECTIVES)} (with choose "
                        f"and bits), got {objective!r}")
    extra = sorted({"knobs", "grids"} & set(budget))
    if extra:
        raise SpecError(f"{where}: {extra[0]} belongs to a noise budget; a budget with an "
                        "objective names what it chooses in choose and bits")
    card = chip.chip
    if card.cost is None:
        raise SpecError(f"{where}: objective = {objective!r} prices every design from the "
                        f"card's [cost] section, and card {card.name!r} has none; use a card "
                        "with one (e.g. 'pcm_hermes'; docs/cost.md)")
    if card.adc.bits is None:
        raise SpecError(f"{where}: card {card.name!r} has an ideal ADC (no adc.bits), which "
                        "[cost] cannot price (FOM · 2^bits); give the card adc.bits")
    choose = budget.get("choose", ["adc.bits"])
    if (not isinstance(choose, list) or not choose or len(set(choose)) != len(choose)
            or not all(name in CHOICES for name in choose)):
        raise SpecError(f"{where}: choose must be a non-empty list of distinct knobs among "
                        f"{list(CHOICES)}, got {choose!r}")
    bits = budget.get("bits")
    if isinstance(bits, dict):
        unknown = sorted(set(bits) - set(choose))
        if unknown:
            raise SpecError(f"{where}: bits names {unknown[0]!r}, which is not among choose "
                            f"{choose}")
    elif bits is not None and not isinstance(bits, list):
        raise SpecError(f"{where}: bits must be a list of integers or a table knob → list, "
                        f"got {bits!r}")
    knobs = []
    for name in choose:
        values = bits.get(name) if isinstance(bits, dict) else bits
        if values is not None and (not isinstance(values, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in values)):
            raise SpecError(f"{where}: bits of {name} must be a list of integers, got "
                            f"{values!r}")
        try:
            knobs.append(bits_knob(card, name, values))
        except SpecError as error:
            raise SpecError(f"{where}: {error}") from None
    return knobs


def noise_knobs(budget: dict[str, Any], chip: ChipSetup, time_s: float,
                where: str) -> list[Knob]:
    """The knobs of a noise budget (``knobs``, ``grids``)."""
    grids = budget.get("grids", {})
    if not isinstance(grids, dict):
        raise SpecError(f"{where}: grids must be a table knob → values, got {grids!r}")
    names = budget.get("knobs")
    if names is None:
        knobs = [make_knob(chip.chip, k.name, time_s,
                           number_list(grids[k.name], f"{where}.grids.{k.name}"))
                 if k.name in grids else k for k in card_knobs(chip.chip, time_s)]
    elif not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise SpecError(f"{where}: knobs must be a non-empty list of names such as "
                        f"{list(DEFAULT_KNOBS)}, got {names!r}")
    else:
        knobs = [make_knob(chip.chip, name, time_s,
                           number_list(grids[name], f"{where}.grids.{name}")
                           if name in grids else None) for name in names]
    unused = sorted(set(grids) - {k.name for k in knobs})
    if unused:
        raise SpecError(f"{where}: grids names {unused[0]!r}, which is not among the knobs "
                        f"{[k.name for k in knobs]}")
    if not knobs:
        raise SpecError(f"{where}: card {chip.chip.name!r} has none of the noise knobs "
                        f"{list(DEFAULT_KNOBS)}; name knobs it has")
    return knobs
