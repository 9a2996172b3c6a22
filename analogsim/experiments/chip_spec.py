"""Specs that evaluate a model on a card: the ``[chip]`` section and kind ``sweep``.

A spec of kind ``sweep``::

    [experiment]
    name = "digits_pcm_sweep"
    kind = "sweep"

    [data]                          # as for every spec (see spec_fields.model_setup)
    dataset = "digits"
    [model]
    name = "mlp"                    # trained by [training], or checkpoint = "weights.pt"
    [training]
    epochs = 30
    seeds = [0, 1, 2]               # one model each, every one on the same chip instances

    [chip]
    card = "pcm"                    # a shipped card or a .toml path (relative: to the spec)
    overrides = { "adc.bits" = 8 }  # optional: fields changed for every layer
    per_layer = { "0" = { "dac.bits" = 6 } }   # optional: layer name/glob → overrides
    exclude = ["5"]                 # optional: layers kept digital

    [sweep]
    instances = 20                  # chip instances, evaluated at once
    seed = 0                        # programming, drift and read seed
    times_s = [1, 3600, 86400]      # drift times after programming (s)

    [[sweep.axes]]                  # any number; the grid is their product
    field = "read_noise.scale"      # a card field, as for load_chip overrides, or a list
                                    #   of fields that move together
    values = [0.5, 1, 2, 4]         # or { logspace = [-1, 1, 9] } / { linspace = [a, b, n] }
    mode = "scale"                  # "set" (default) or "scale": factors of the card value
    layers = ["0"]                  # optional: only these layers (names or globs)

``values`` of a ``set`` axis may hold "none" to unset an optional field (``adc.bits`` = none
is an ideal ADC).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analogsim import models
from analogsim.cards import Chip, load_chip
from analogsim.errors import CardError, SpecError, UsageError
from analogsim.experiments.card_grid import CardAxis, check_axes
from analogsim.experiments.spec_fields import (
    ModelSetup,
    check_keys,
    is_number,
    model_setup,
    number_list,
    positive_int,
    table,
    time_list,
)
from analogsim.experiments.sweep import SweepPlan, base_layer_chips


@dataclass(frozen=True)
class ChipSetup:
    """The card of an experiment: loaded, with overrides for every layer and per layer.

    Attributes:
        chip: the card after ``overrides``.
        per_layer: layer name or glob → overrides of that layer's fields.
        exclude: layer names or globs kept digital.
    """

    chip: Chip
    per_layer: dict[str, dict[str, Any]]
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepSpec:
    """A validated spec of kind ``sweep``."""

    name: str
    description: str
    setup: ModelSetup
    chip: ChipSetup
    plan: SweepPlan
    text: str


def _overrides(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(f"{where} must be a table of card fields, got {value!r}")
    return dict(value)


def chip_setup(data: dict[str, Any], source: str) -> ChipSetup:
    """Validate ``[chip]``: the card loads with its overrides, per-layer overrides too."""
    section = table(data, "chip", source)
    where = f"{source}: [chip]"
    check_keys(section, {"card", "overrides", "per_layer", "exclude"}, where)
    if "card" not in section:
        raise SpecError(f"{where}: give the card, e.g. card = \"pcm\"")
    card = str(section["card"])
    if card.endswith(".toml") and not Path(card).is_absolute():
        card = str(Path(source).parent / card)  # a card file next to the spec
    exclude = section.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(n, str) for n in exclude):
        raise SpecError(f"{where}.exclude must be a list of layer names or globs, got "
                        f"{exclude!r}")
    try:
        chip = load_chip(card,
                         **_overrides(section.get("overrides", {}), f"{where}.overrides"))
        per_layer = {}
        for pattern, overrides in _overrides(section.get("per_layer", {}),
                                             f"{where}.per_layer").items():
            per_layer[pattern] = _overrides(overrides, f"{where}.per_layer.{pattern}")
            chip.replace(**per_layer[pattern])
    except CardError as error:
        raise CardError(f"{where}: {error}") from None
    return ChipSetup(chip, per_layer, tuple(exclude))


def _axis_values(value: Any, where: str) -> tuple[Any, ...]:
    if isinstance(value, dict):
        return number_list(value, where)
    values = value if isinstance(value, list) else [value]
    if not values or not all(is_number(v) or isinstance(v, str | bool) for v in values):
        raise SpecError(f"{where} must be a non-empty list of values, got {value!r}")
    return tuple(None if isinstance(v, str) and v.lower() == "none" else v for v in values)


def card_axes(entries: Any, where: str) -> tuple[CardAxis, ...]:
    """Validate a list of axis tables (``field``, ``values``, ``mode``, ``layers``, ``name``)."""
    if not isinstance(entries, list):
        raise SpecError(f"{where} must be a list of tables [[...axes]], got {entries!r}")
    axes = []
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise SpecError(f"{at} must be a table, got {entry!r}")
        check_keys(entry, {"field", "values", "mode", "layers", "name"}, at)
        field = entry.get("field")
        if isinstance(field, list) and field and all(isinstance(f, str) for f in field):
            field = tuple(field)
        elif not isinstance(field, str) or "values" not in entry:
            raise SpecError(f"{at} needs field = \"section.field\" (or a list of fields that "
                            f"move together) and values = [...], got field = {field!r}")
        layers = entry.get("layers", [])
        if not isinstance(layers, list) or not all(isinstance(n, str) for n in layers):
            raise SpecError(f"{at}.layers must be a list of layer names, got {layers!r}")
        axes.append(CardAxis(field=field,
                             values=_axis_values(entry["values"], f"{at}.values"),
                             mode=entry.get("mode", "set"), layers=tuple(layers),
                             name=str(entry.get("name", ""))))
    return tuple(axes)


def parse_sweep_spec(data: dict[str, Any], text: str, source: str) -> SweepSpec:
    """Validate the TOML of a spec of kind ``sweep`` (already parsed into ``data``)."""
    check_keys(data, {"experiment", "data", "model", "training", "chip", "sweep"}, source)
    experiment = table(data, "experiment", source)
    sweep = table(data, "sweep", source)
    where = f"{source}: [sweep]"
    check_keys(sweep, {"instances", "seed", "times_s", "axes"}, where)
    seed = sweep.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(f"{where}: seed must be a non-negative integer, got {seed!r}")
    axes = card_axes(sweep.get("axes", []), f"{where}.axes")
    times_s = time_list(sweep.get("times_s", [0.0]), f"{where}.times_s")
    instances = positive_int(sweep.get("instances", 8), f"{where}.instances")
    try:
        plan = SweepPlan(axes=axes, times_s=times_s, instances=instances, seed=seed)
    except UsageError as error:
        raise SpecError(f"{where}: {error}") from None
    setup, chip = model_setup(data, source), chip_setup(data, source)
    untrained = models.create(setup.model, **setup.model_options)
    # before any training: a bad axis, per_layer or exclude pattern fails now
    check_axes(plan.axes, list(base_layer_chips(untrained, chip.chip, chip.per_layer,
                                                chip.exclude)), chip.chip)
    return SweepSpec(
        name=str(experiment.get("name", Path(source).stem)),
        description=str(experiment.get("description", "")), setup=setup, chip=chip,
        plan=plan, text=text)
