"""What a cost budget chooses: converter bits per layer, tile size and redundancy per model.

A cost budget (:mod:`.budget_energy`) chooses two kinds of values:

- **per layer**, greedily: ``adc.bits`` and ``dac.bits``. A layer's converters are its own
  tiles' periphery, so each analog layer may take other bits (a per-layer card,
  :func:`analogsim.experiments.sweep.base_layer_chips`).
- **per model**, enumerated: ``mapping.tile_rows``, ``mapping.tile_cols`` (the crossbar size:
  a chip is built with one crossbar size for all its cores, so every layer is cut into tiles
  of the same size) and ``coding.r_small``, ``coding.r_large`` (the cells of redundancy
  coding: the ``[coding]`` section is one decoder for the chip, and layers coded with
  ``coding.scope = "global"`` must share one section,
  :func:`analogsim.tiles.coding.global_reference`). Every combination of their values (a
  *setting*) is searched for the per-layer bits; the card's own setting first. A combination
  with ``r_large < r_small`` is not a card and is left out. A model-wide value overrides the
  per-layer cards' own.

A tile size changes the number of row chunks and column groups, hence the ADC and DAC
conversions and the digital outputs, the max|W| each tile's conductances are scaled to (array
energy, noise) and the number of partial sums quantised by an ADC (one per row chunk: at few
ADC bits, smaller tiles lose accuracy); redundancy multiplies the devices read (array energy)
and averages their reads (noise std σ/√r).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from analogsim.cards import Chip, load_chip
from analogsim.errors import SpecError
from analogsim.experiments.budget import Knob
from analogsim.tiles.coding import scheme_parts

#: The knobs a cost budget chooses per layer (greedy search).
PER_LAYER = ("adc.bits", "dac.bits")
#: The knobs a cost budget chooses once for the whole model (every value combination).
MODEL_WIDE = ("mapping.tile_rows", "mapping.tile_cols", "coding.r_small", "coding.r_large")
CHOICES = PER_LAYER + MODEL_WIDE
#: Unit of each model-wide knob, and the largest value its card field takes.
MODEL_WIDE_UNITS = {"mapping.tile_rows": ("rows", 1 << 20), "mapping.tile_cols": ("columns",
                                                                                   1 << 20),
                    "coding.r_small": ("cells", 1000), "coding.r_large": ("cells", 1000)}

Setting = tuple[int, ...]  # one value per model-wide knob, in their order
Bits = tuple[tuple[int, ...], ...]  # bits[knob][layer], per-layer knobs only


def bits_knob(chip: Chip, name: str, values: Sequence[float] | None = None) -> Knob:
    """The per-layer knob ``name`` of ``chip`` over ``values``: the card's bits first, then
    the values below it, descending (default: every value down to 2).

    Raises:
        SpecError: ``name`` is not one of :data:`PER_LAYER`, the card's converter is ideal
            (no bits), or a value is not an integer from 1 to the card's bits.
    """
    if name not in PER_LAYER:
        raise SpecError(f"a cost budget chooses per layer one of {list(PER_LAYER)}; got "
                        f"{name!r}")
    card = chip.value(name)
    if card is None:
        raise SpecError(f"{name}: card {chip.name!r} has an ideal converter (no bits) to "
                        "choose from; give the card bits")
    values = range(card, 1, -1) if values is None else values
    bad = [v for v in values if float(v) != int(v) or not 1 <= v <= card]
    if bad or not values:
        raise SpecError(f"{name}: the values must be integers from 1 to card {chip.name!r}'s "
                        f"{name} = {card} (larger values only cost more than the card "
                        f"design the tolerance is measured against); got {list(values)}")
    grid = sorted({int(card), *(int(v) for v in values)}, reverse=True)
    return Knob(name, tuple(float(v) for v in grid), "bit", "down", float(card), False)


def model_knob(chip: Chip, name: str, values: Sequence[int]) -> Knob:
    """The model-wide knob ``name`` of ``chip`` over ``values``: the card's value first, then
    the others ascending (values on both sides of the card's are allowed: smaller tiles cost
    more conversions but may let the bits go lower).

    Raises:
        SpecError: ``name`` is not one of :data:`MODEL_WIDE`; a value is not an integer in
            the card field's range; or a redundancy knob on a card whose ``coding.scheme``
            has no ``redundancy`` part (its cells would be ignored).
    """
    if name not in MODEL_WIDE:
        raise SpecError(f"a cost budget chooses for the whole model one of {list(MODEL_WIDE)};"
                        f" got {name!r}")
    unit, largest = MODEL_WIDE_UNITS[name]
    if name.startswith("coding.") and "redundancy" not in scheme_parts(chip.coding.scheme):
        raise SpecError(f"{name}: card {chip.name!r} has coding.scheme = "
                        f"{chip.coding.scheme!r}, without the redundancy part that stores a "
                        "weight in r_small or r_large cells; set coding.scheme to include "
                        "'redundancy' in [chip] overrides, or do not choose " + name)
    if (not isinstance(values, Sequence) or not values or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= largest
            for v in values)):
        raise SpecError(f"{name}: the values must be a non-empty list of integers from 1 to "
                        f"{largest} ({unit}); got {values!r}")
    card = int(chip.value(name))
    grid = [card, *sorted({int(v) for v in values} - {card})]
    harsher = "up" if name.startswith("mapping.") else "down"  # larger tiles, fewer cells
    return Knob(name, tuple(float(v) for v in grid), unit, harsher, float(card), False)


def is_model_wide(knob: Knob) -> bool:
    """Whether ``knob`` is chosen once for the whole model."""
    return knob.name in MODEL_WIDE


def settings(chip: Chip, knobs: Sequence[Knob]) -> list[Setting]:
    """Every combination of the model-wide knobs' values, the card's first, but those with
    ``coding.r_large < coding.r_small`` (a knob not chosen at the card's value), which are no
    card. With no model-wide knob: one empty setting."""
    combos = [tuple(int(v) for v in combo) for combo in
              itertools.product(*(k.grid for k in knobs))]

    def cells(combo: Setting, name: str) -> int:
        values = setting_overrides(knobs, combo)
        return values[name] if name in values else int(chip.value(name))

    return [c for c in combos if cells(c, "coding.r_large") >= cells(c, "coding.r_small")]


def setting_overrides(knobs: Sequence[Knob], setting: Setting) -> dict[str, int]:
    """Card overrides of a setting: model-wide knob name → its value."""
    return {k.name: v for k, v in zip(knobs, setting, strict=True)}


def setting_text(knobs: Sequence[Knob], setting: Setting) -> str:
    """'mapping.tile_rows 512, coding.r_large 4'."""
    return ", ".join(f"{k.name} {v}" for k, v in zip(knobs, setting, strict=True))


def design_chips(base: Mapping[str, Chip], knobs: Sequence[Knob], bits: Bits,
                 model_knobs: Sequence[Knob] = (), setting: Setting = ()) -> dict[str, Chip]:
    """Layer → its chip with a design's per-layer ``bits`` (bits[knob][layer]) and model-wide
    ``setting`` (which overrides the per-layer chips' own values)."""
    common = setting_overrides(model_knobs, setting)
    return {layer: load_chip(chip, **common,
                             **{k.name: bits[i][j] for i, k in enumerate(knobs)})
            for j, (layer, chip) in enumerate(base.items())}
