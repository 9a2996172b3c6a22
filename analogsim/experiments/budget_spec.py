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
bits of least energy per inference within the tolerance, on a card with a ``[cost]`` section,
and optionally the tile size and redundancy of the whole model
(:mod:`.budget_energy_choices`)::

    [budget]
    objective = "energy"                # minimise energy per inference (J), from [cost]
    choose = ["adc.bits"]               # per layer: "adc.bits", "dac.bits"; for the whole
                                        # model: "mapping.tile_rows", "mapping.tile_cols",
                                        # "coding.r_small", "coding.r_large"
    bits = [4, 5, 6, 7, 8]              # values a layer may take, ≤ the card's bits; or a
                                        # table knob → values; default: card's bits down to 2
    values = { "mapping.tile_rows" = [64, 128] }   # required per model-wide knob chosen:
                                        # rows / columns per tile, cells per weight
    tolerance_pp = 1.0                  # below the card's accuracy at its own bits
    time_s = 86400
    instances = 8                       # chips per seed; every design on seeds × instances
    seeds = [0, 1]
    confirm_chips = 16                  # fresh chips the card, uniform and chosen designs are
                                        # measured on after the search (0: none); default:
                                        # as many as the search's, seeds × instances
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analogsim.cards import Chip
from analogsim.errors import SpecError
from analogsim.experiments.budget import DEFAULT_KNOBS, Knob, card_knobs, make_knob
from analogsim.experiments.budget_energy import OBJECTIVES
from analogsim.experiments.budget_energy_choices import (
    CHOICES,
    MODEL_WIDE,
    PER_LAYER,
    bits_knob,
    model_knob,
)
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
    #: Fresh chips a cost budget's card, uniform and chosen designs are re-measured on (0:
    #: none); None for a noise budget.
    confirm_chips: int | None = None


def parse_budget_spec(data: dict[str, Any], text: str, source: str) -> BudgetSpec:
    """Validate the TOML of a spec of kind ``budget`` (already parsed into ``data``)."""
    check_keys(data, {"experiment", "data", "model", "training", "chip", "budget"}, source)
    experiment = table(data, "experiment", source)
    budget = table(data, "budget", source, required=False)
    where = f"{source}: [budget]"
    check_keys(budget, {"tolerance_pp", "time_s", "instances", "seeds", "knobs", "grids",
                        "objective", "choose", "bits", "values", "confirm_chips"}, where)
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
    instances = positive_int(budget.get("instances", 8), f"{where}.instances")
    confirm = None
    if objective is not None or {"choose", "bits", "values", "confirm_chips"} & set(budget):
        knobs = cost_knobs(budget, chip, where)
        confirm = budget.get("confirm_chips", len(seeds) * instances)
        if (not isinstance(confirm, int) or isinstance(confirm, bool) or confirm < 0
                or confirm == 1):
            raise SpecError(f"{where}: confirm_chips must be 0 (no confirmation on fresh "
                            "chips) or an integer ≥ 2 (a CI over chips needs two), got "
                            f"{confirm!r}")
    else:
        knobs = noise_knobs(budget, chip, float(time_s), where)
    return BudgetSpec(
        name=str(experiment.get("name", Path(source).stem)),
        description=str(experiment.get("description", "")),
        setup=model_setup(data, source, one_model=True), chip=chip, knobs=tuple(knobs),
        tolerance_pp=float(tolerance), time_s=float(time_s),
        instances=instances, seeds=seeds, text=text, objective=objective,
        confirm_chips=confirm)


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
    per_layer = [name for name in choose if name in PER_LAYER]
    if not per_layer:
        raise SpecError(f"{where}: choose {choose} names no per-layer knob; a cost budget "
                        f"chooses at least one of {list(PER_LAYER)} per layer (the tile size "
                        "and redundancy only beside them)")
    bits = budget.get("bits")
    if isinstance(bits, dict):
        unknown = sorted(set(bits) - set(per_layer))
        if unknown:
            raise SpecError(f"{where}: bits names {unknown[0]!r}, which is not among the "
                            f"per-layer knobs of choose {per_layer}"
                            + (" (give a model-wide knob's values in values)"
                               if unknown[0] in MODEL_WIDE else ""))
    elif bits is not None and not isinstance(bits, list):
        raise SpecError(f"{where}: bits must be a list of integers or a table knob → list, "
                        f"got {bits!r}")
    knobs = []
    for name in per_layer:
        values = bits.get(name) if isinstance(bits, dict) else bits
        if values is not None and (not isinstance(values, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in values)):
            raise SpecError(f"{where}: bits of {name} must be a list of integers, got "
                            f"{values!r}")
        try:
            knobs.append(bits_knob(card, name, values))
        except SpecError as error:
            raise SpecError(f"{where}: {error}") from None
    return knobs + model_knobs(budget, card, [n for n in choose if n in MODEL_WIDE], where)


def model_knobs(budget: dict[str, Any], card: Chip, names: list[str], where: str
                ) -> list[Knob]:
    """The model-wide knobs ``names`` of a cost budget, over the values of its ``values``
    table (one list per knob, required)."""
    values = budget.get("values", {})
    if not isinstance(values, dict):
        raise SpecError(f"{where}: values must be a table model-wide knob → list of integers "
                        f"(e.g. {{ \"mapping.tile_rows\" = [64, 128] }}), got {values!r}")
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise SpecError(f"{where}: values names {unknown[0]!r}, which is not among the "
                        f"model-wide knobs of choose {names}"
                        + (" (give a per-layer knob's values in bits)"
                           if unknown[0] in PER_LAYER else ""))
    knobs = []
    for name in names:
        if name not in values:
            raise SpecError(f"{where}: choose names the model-wide knob {name!r}; give the "
                            f"values to try in values, e.g. values = {{ \"{name}\" = "
                            f"[{int(card.value(name))}, ...] }}")
        try:
            knobs.append(model_knob(card, name, values[name]))
        except SpecError as error:
            raise SpecError(f"{where}: values.{error}") from None
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
