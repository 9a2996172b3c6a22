"""The cost of a run's models on its card, written beside their accuracy (card ``[cost]``).

A run whose card has a ``[cost]`` section also holds ``/runs/<run>_cost`` (attributes
``kind = "cost"`` and ``source_run = <run>``): what :func:`analogsim.cost` gives for one
inference, a batch of one test input, of each model the run measures, converted onto the card
as the run converts it (the card as the spec gives it, before a sweep's grid changes it) and
not programmed (the devices' target conductances). Axes ``model`` (one per trained model:
seed, or method and seed), ``layer`` (the analog layers) and ``part``
(:data:`ANALOG_PARTS`):

- energy_J[model, layer, part]: J per inference of each analog layer's array reads, DACs,
  ADCs and digital periphery;
- mvms, macs, tiles, devices, conversions, device_reads, latency_s (s), area_um2 (µm²)
  [model, layer];
- digital_macs_J, energy_total_J (J), latency_total_s (s), area_total_um2 (µm²),
  tops_per_watt (10¹² ops/J), tops (10¹² ops/s) [model]: the layers left digital and the
  totals of :class:`analogsim.cost.CostReport`.

A sweep adds its card grid's axes, and grid_energy_J (J), grid_latency_s (s) and
grid_tops_per_watt [model, axis…]: the totals at every grid point (the grid's cards), NaN
where the point's card cannot be priced (an ideal ADC, ``adc.bits = "none"``).

Attributes ``layer_kind`` and ``layer_card`` name each layer's class and card. A card without
``[cost]`` writes nothing; a model the card cannot price (a layer on a card without
``[cost]``, or with an ideal ADC) writes nothing and says why in the source run's attribute
``cost``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from analogsim.cards import Chip, load_chip
from analogsim.conversion import convert
from analogsim.cost import PARTS, CostReport, cost
from analogsim.experiments.card_grid import grid_points, layer_chips
from analogsim.experiments.sweep import SweepPlan, analog_copy, base_layer_chips
from analogsim.model_summary import analog_layers
from analogsim.results import ResultsWriter, Run

log = logging.getLogger(__name__)

#: the energy parts of an analog layer, as energy_J's ``part`` axis holds them
ANALOG_PARTS = PARTS[:4]
#: per-layer numbers: name → unit
LAYER_METRICS: dict[str, str] = {
    "mvms": "MVMs", "macs": "MACs", "tiles": "tiles", "devices": "devices",
    "conversions": "conversions", "device_reads": "reads", "latency_s": "s", "area_um2": "µm²"}
#: per-model totals: name → unit
TOTAL_METRICS: dict[str, str] = {
    "digital_macs_J": "J", "energy_total_J": "J", "latency_total_s": "s",
    "area_total_um2": "µm²", "tops_per_watt": "TOPS/W", "tops": "TOPS"}
#: per-model totals at each point of a sweep's grid: name → unit
GRID_METRICS: dict[str, str] = {"grid_energy_J": "J", "grid_latency_s": "s",
                                "grid_tops_per_watt": "TOPS/W"}


@dataclass(frozen=True)
class CostGrid:
    """A sweep's card grid, to price every point of it.

    Attributes:
        plan: the sweep's axes (and the rest of its plan).
        axes: axis name → its values as the sweep run stores them.
        units: axis name → unit.
    """

    plan: SweepPlan
    axes: Mapping[str, Sequence[Any]]
    units: Mapping[str, str]


def unpriceable(model: nn.Module) -> str | None:
    """Why :func:`analogsim.cost` cannot price the converted ``model``, or None if it can."""
    for name, layer in analog_layers(model):
        chip = layer.tile.chip
        if chip.cost is None:
            return f"layer {name!r} is on card {chip.name!r}, which has no [cost] section"
        if chip.adc.bits is None:
            return (f"layer {name!r} is on card {chip.name!r} with an ideal ADC (adc.bits "
                    "absent), which cost.adc_fom_J · 2^adc.bits cannot price")
    return None


def _layer_values(report: CostReport) -> dict[str, np.ndarray]:
    layers = report.layers
    values = {"energy_J": np.array([[x.energy_parts[p] for p in ANALOG_PARTS] for x in layers]),
              "mvms": [x.mvms for x in layers], "macs": [x.macs for x in layers],
              "tiles": [x.tile.tiles for x in layers], "devices": [x.tile.devices for x in layers],
              "conversions": [x.conversions for x in layers],
              "device_reads": [x.device_reads for x in layers],
              "latency_s": [x.latency_s for x in layers],
              "area_um2": [x.tile.area_um2 for x in layers]}
    return {k: np.asarray(v, dtype=float) for k, v in values.items()}


def _totals(report: CostReport) -> dict[str, float]:
    return {"digital_macs_J": report.energy_parts["digital_macs"],
            "energy_total_J": report.energy_J, "latency_total_s": report.latency_s,
            "area_total_um2": report.area_um2, "tops_per_watt": report.tops_per_watt,
            "tops": report.tops}


class CostRecord:
    """Writes ``/runs/<source>_cost`` one model at a time, when the card has ``[cost]``.

    Args:
        writer: the results file's writer.
        source: the run whose models are priced.
        card: the run's card (name, path or :class:`~analogsim.cards.Chip`).
        labels: one label per model, in the order :meth:`add` receives them.
        example_input: one inference (a batch of one test input).
        per_layer, exclude: as the run passes them to :func:`analogsim.convert`.
        grid: a sweep's card grid, priced point by point; None: the card alone.
    """

    def __init__(self, writer: ResultsWriter, source: str, card: Chip | str,
                 labels: Sequence[str], example_input: torch.Tensor,
                 per_layer: Mapping[str, Any] | None = None, exclude: Sequence[str] = (),
                 grid: CostGrid | None = None) -> None:
        self.writer, self.source, self.chip = writer, source, load_chip(card)
        self.labels, self.example_input = list(labels), example_input
        self.per_layer, self.exclude, self.grid = per_layer, exclude, grid
        self.run: Run | None = None
        self.name = f"{source}_cost"
        if self.name in writer.file["runs"]:  # resuming: the run as it was left
            self.run = Run(writer, writer.file["runs"][self.name])

    @property
    def active(self) -> bool:
        """Whether the card has ``[cost]`` (else :meth:`add` writes nothing)."""
        return self.chip.cost is not None

    def add(self, index: int, model: nn.Module) -> None:
        """Price model ``index`` (digital, not modified) and write its point."""
        if not self.active or (self.run is not None and self.run.is_done((index,))):
            return
        analog = convert(model, self.chip, per_layer=self.per_layer, exclude=self.exclude)
        reason = unpriceable(analog)
        if reason is not None:
            self.writer.file["runs"][self.source].attrs["cost"] = f"not priced: {reason}"
            log.warning("%s: the cost is not recorded: %s", self.source, reason)
            return
        report = cost(analog, self.example_input)
        if self.run is None:
            self.run = self._create(report)
        self.run.write_point((index,), **_layer_values(report), **_totals(report),
                             **self._grid_values(model))

    def _grid_values(self, model: nn.Module) -> dict[str, np.ndarray]:
        """grid_…[axis…] of ``model`` at every grid point (nothing without a grid)."""
        if self.grid is None:
            return {}
        axes = self.grid.plan.axes
        values = {m: np.full([len(a.values) for a in axes], np.nan) for m in GRID_METRICS}
        base = base_layer_chips(model, self.chip, self.per_layer, self.exclude)
        for point, settings in grid_points(axes):
            analog = analog_copy(model, layer_chips(base, axes, settings))
            if unpriceable(analog) is None:
                report = cost(analog, self.example_input)
                values["grid_energy_J"][point] = report.energy_J
                values["grid_latency_s"][point] = report.latency_s
                values["grid_tops_per_watt"][point] = report.tops_per_watt
        return values

    def _create(self, report: CostReport) -> Run:
        layers = [x.name for x in report.layers]
        per_layer = ("model", "layer")
        grid = self.grid
        return self.writer.create_run(
            self.name, axes={"model": self.labels, "layer": layers, "part": list(ANALOG_PARTS),
                             **(grid.axes if grid is not None else {})},
            metrics={"energy_J": ("model", "layer", "part"),
                     **dict.fromkeys(LAYER_METRICS, per_layer),
                     **dict.fromkeys(TOTAL_METRICS, ("model",)),
                     **(dict.fromkeys(GRID_METRICS, ("model", *grid.axes))
                        if grid is not None else {})},
            units={"energy_J": "J", **LAYER_METRICS, **TOTAL_METRICS, **GRID_METRICS,
                   **(grid.units if grid is not None else {})},
            attrs={"kind": "cost", "source_run": self.source, "card": self.chip.name,
                   "title": f"{self.source}: cost of one inference on the {self.chip.name} card",
                   "layer_kind": [x.kind for x in report.layers],
                   "layer_card": [x.card for x in report.layers],
                   "uncounted": "; ".join(report.uncounted) or "none",
                   "example_input": f"one test input, shape {tuple(self.example_input.shape)}"},
            point_axes=1)
