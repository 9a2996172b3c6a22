"""Grids of device cards: card fields set or scaled along axes, for every layer or some.

A :class:`CardAxis` names one card field (``"read_noise.scale"``, ``"adc.bits"``) and the
values it takes, either set as they are (``mode="set"``) or as factors of the card's own value
(``mode="scale"``), in every analog layer or only in some (``layers``, qualified names or glob
patterns). :func:`layer_chips` turns one point of a grid of axes into the chip of every analog
layer, ready for ``convert(model, chip, per_layer=...)``.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from analogsim.cards import Chip, load_chip
from analogsim.errors import CardError, SpecError

AxisMode = Literal["set", "scale"]


@dataclass(frozen=True)
class CardAxis:
    """One card field swept over values.

    Attributes:
        field: the card field, spelled as an override (``"read_noise.scale"``, ``"adc.bits"``,
            an aihwkit alias such as ``"read_noise_scale"``); or several fields that move
            together (``("programming.scale", "read_noise.scale")``: the device's noise).
        values: the values of the field (``mode="set"``; None removes an optional field, e.g.
            ``adc.bits`` = None is an ideal ADC) or factors of the card's value
            (``mode="scale"``).
        mode: ``"set"`` or ``"scale"``.
        layers: qualified layer names or glob patterns the axis applies to; empty: every
            analog layer.
        name: the axis name in results (default: the field, with ``@layers`` when restricted).
    """

    field: str | tuple[str, ...]
    values: tuple[Any, ...]
    mode: AxisMode = "set"
    layers: tuple[str, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        if self.mode not in ("set", "scale"):
            raise SpecError(f"axis {self.field!r}: mode must be 'set' or 'scale', got "
                            f"{self.mode!r}")
        if not self.values:
            raise SpecError(f"axis {self.field!r}: give at least one value")
        if self.mode == "scale" and not all(
                isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
                for v in self.values):
            raise SpecError(f"axis {self.field!r}: scale factors must be numbers ≥ 0, got "
                            f"{list(self.values)}")
        if not self.name:
            suffix = f"@{','.join(self.layers)}" if self.layers else ""
            object.__setattr__(self, "name", f"{'+'.join(self.fields)}{suffix}")

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field,) if isinstance(self.field, str) else tuple(self.field)

    @property
    def unit(self) -> str:
        """"×" for factors of the card's value, else empty (the card gives the field's unit)."""
        return "×" if self.mode == "scale" else ""

    def applies_to(self, layer: str) -> bool:
        return not self.layers or any(fnmatch.fnmatchcase(layer, p) for p in self.layers)


def _layer_override(axis: CardAxis, value: Any, chip: Chip) -> dict[str, Any]:
    if axis.mode == "set":
        return dict.fromkeys(axis.fields, value)
    overrides = {}
    for field in axis.fields:
        base = chip.value(field)
        if base is None:
            raise CardError(f"card {chip.name!r} leaves {field} unset, so it cannot be "
                            "scaled; use mode = \"set\"")
        overrides[field] = round(base * value) if isinstance(base, int) else base * value
    return overrides


def check_axes(axes: Sequence[CardAxis], layer_names: Sequence[str], chip: Chip) -> None:
    """Fail early, naming the axis, if an axis matches no layer or a value is not a valid card.

    Raises:
        SpecError: an axis's ``layers`` match none of ``layer_names``.
        CardError: a value the card does not accept (checked on every value of every axis).
    """
    names = [a.name for a in axes]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise SpecError(f"two axes are named {duplicate!r}; give one a name")
    for axis in axes:
        if axis.layers and not any(axis.applies_to(layer) for layer in layer_names):
            raise SpecError(f"axis {axis.name!r}: layers {list(axis.layers)} match no analog "
                            f"layer; the layers are {list(layer_names)}")
        for value in axis.values:
            try:
                chip.replace(**_layer_override(axis, value, chip))
            except CardError as error:
                raise CardError(f"axis {axis.name!r} = {value!r}: {error}") from None


def grid_points(axes: Sequence[CardAxis]) -> Iterator[tuple[tuple[int, ...], tuple[Any, ...]]]:
    """(index, values) of every point of the grid, the last axis fastest."""
    ranges = [range(len(a.values)) for a in axes]
    for index in itertools.product(*ranges):
        yield index, tuple(a.values[i] for a, i in zip(axes, index, strict=True))


def layer_chips(
    base: Mapping[str, Chip], axes: Sequence[CardAxis], values: Sequence[Any]
) -> dict[str, Chip]:
    """The chip of every layer at one grid point.

    Args:
        base: layer name → its chip before the sweep (the card, or a per-layer variant).
        axes: the swept axes.
        values: one value per axis.

    Returns:
        layer name → chip with every axis that applies to the layer set or scaled.
    """
    chips, built = {}, {}
    for layer, chip in base.items():
        overrides: dict[str, Any] = {}
        for axis, value in zip(axes, values, strict=True):
            if axis.applies_to(layer):
                overrides.update(_layer_override(axis, value, chip))
        key = (id(chip), repr(sorted(overrides.items())))  # layers often share one chip
        if key not in built:
            built[key] = load_chip(chip, **overrides) if overrides else chip
        chips[layer] = built[key]
    return chips
