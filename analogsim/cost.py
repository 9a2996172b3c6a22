"""``cost(model, example_input)``: energy, latency and area of one inference, per layer.

The cost side of the designer's loop (DESIGN step 11): the same converted model whose accuracy
:func:`analogsim.evaluate` measures is priced from the ``[cost]`` section of its cards. One
forward of ``example_input`` (one inference; pass a batch of one for per-sample figures) runs
digitally, with a forward hook on every analog tile and on every weight matrix left digital:

- an analog layer's tiles each see one MVM per input vector (a Linear on (B, T, in) inputs:
  B·T; a Conv2d: B × output positions; a grouped convolution runs one MVM per group, each
  counted as an MVM of the whole tile, an upper bound); :mod:`analogsim.tiles.cost` prices
  one input vector, and the layer costs MVMs × that;
- a layer left digital costs its multiply-accumulates at the card's ``digital_mac_energy_J``.

Latency model: the tiles of a layer run in parallel; its input vectors, and the layers, run
one after the other (no pipelining); digital layers take no time (their time is not modelled).
Ops are 2 per multiply-accumulate. docs/cost.md gives the formulas and what they leave out.

    report = asim.cost(amodel, x[:1])
    print(report)                     # one row per analog layer, then the totals
    report.energy_J, report.tops_per_watt, report.shares
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from analogsim.calibration import digital_tiles
from analogsim.errors import ArgumentTypeError, CardError, ConversionError
from analogsim.model_summary import DigitalLayer, analog_layers, digital_remainder
from analogsim.tiles import AnalogLayer
from analogsim.tiles.coding import global_reference
from analogsim.tiles.cost import TileCost, tile_cost
from analogsim.units import format_si as si  # re-exported: benchmarks and budgets use it

#: convolutions, whose output features sit in dimension 1 (elsewhere: the last dimension)
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: transposed convolutions: their products are not output features × weights
TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
#: the energy parts, in the order tables show them
PARTS = ("array", "dac", "adc", "digital_periphery", "digital_macs")


@dataclass(frozen=True)
class LayerCost:
    """One analog layer's cost per inference.

    Attributes:
        name: qualified name in the model.
        kind: the analog layer's class name.
        card: its device card's name.
        mvms: MVMs each of its tiles ran (input vectors).
        macs: multiply-accumulates it computed.
        tile: the cost of one input vector through its tiles.
    """

    name: str
    kind: str
    card: str
    mvms: int
    macs: int
    tile: TileCost

    @property
    def energy_parts(self) -> dict[str, float]:
        """J per inference: array reads, DACs, ADCs, digital periphery."""
        t = self.tile
        return {"array": self.mvms * t.array_J, "dac": self.mvms * t.dac_J,
                "adc": self.mvms * (t.adc_J or 0.0), "digital_periphery": self.mvms * t.digital_J}

    @property
    def energy_J(self) -> float:
        return sum(self.energy_parts.values())

    @property
    def latency_s(self) -> float:
        """Its MVMs one after the other, s."""
        return self.mvms * self.tile.mvm_time_s

    @property
    def conversions(self) -> int:
        """ADC conversions per inference (bit slicing multiplies them)."""
        return self.mvms * self.tile.conversions

    @property
    def device_reads(self) -> int:
        """Device reads per inference (input cycles multiply them)."""
        return self.mvms * self.tile.device_reads


@dataclass(frozen=True)
class DigitalCost:
    """A weight matrix left digital: its multiply-accumulates at the card's energy.

    Attributes:
        name, kind: the module's qualified name and class name.
        macs: multiply-accumulates it computed.
        mac_energy_J: J per multiply-accumulate (the cards' ``digital_mac_energy_J``).
    """

    name: str
    kind: str
    macs: int
    mac_energy_J: float

    @property
    def energy_J(self) -> float:
        return self.macs * self.mac_energy_J


@dataclass(frozen=True)
class CostReport:
    """Energy, latency and area of one inference; prints as a table.

    Attributes:
        layers: the analog layers, in module order.
        digital: the weight matrices left digital that the forward used.
        uncounted: digital modules whose products a hook cannot count, with the reason.
    """

    layers: tuple[LayerCost, ...]
    digital: tuple[DigitalCost, ...]
    uncounted: tuple[str, ...]

    @property
    def energy_parts(self) -> dict[str, float]:
        """J per inference of each part of :data:`PARTS`."""
        parts = dict.fromkeys(PARTS, 0.0)
        for layer in self.layers:
            for key, value in layer.energy_parts.items():
                parts[key] += value
        parts["digital_macs"] = sum(d.energy_J for d in self.digital)
        return parts

    @property
    def energy_J(self) -> float:
        """Energy of one inference, J."""
        return sum(self.energy_parts.values())

    @property
    def shares(self) -> dict[str, float]:
        """Each part's fraction of the energy (0 to 1)."""
        total = self.energy_J
        return {k: v / total if total else 0.0 for k, v in self.energy_parts.items()}

    @property
    def latency_s(self) -> float:
        """Analog layers one after the other, s."""
        return sum(layer.latency_s for layer in self.layers)

    @property
    def area_um2(self) -> float:
        return sum(layer.tile.area_um2 for layer in self.layers)

    @property
    def analog_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one inference, analog and digital."""
        return self.analog_macs + sum(d.macs for d in self.digital)

    @property
    def tops_per_watt(self) -> float:
        """Ops (2 per MAC, analog and digital) per energy, in 10¹² ops/J (TOPS/W)."""
        return 2 * self.macs / self.energy_J / 1e12 if self.energy_J else math.inf

    @property
    def tops(self) -> float:
        """Analog ops per latency, 10¹² ops/s (digital layers take no modelled time)."""
        return 2 * self.analog_macs / self.latency_s / 1e12 if self.latency_s else math.inf

    def as_dict(self) -> dict[str, Any]:
        """The numbers as plain data (for JSON)."""
        return {
            "layers": [{"name": x.name, "kind": x.kind, "card": x.card, "mvms": x.mvms,
                        "macs": x.macs, "tiles": x.tile.tiles, "devices": x.tile.devices,
                        "conversions": x.conversions, "device_reads": x.device_reads,
                        "energy_J": x.energy_parts, "latency_s": x.latency_s,
                        "area_um2": x.tile.area_um2} for x in self.layers],
            "digital": [{"name": d.name, "kind": d.kind, "macs": d.macs,
                         "energy_J": d.energy_J} for d in self.digital],
            "uncounted": list(self.uncounted),
            "energy_J": self.energy_parts, "latency_s": self.latency_s,
            "area_um2": self.area_um2, "macs": self.macs, "tops_per_watt": self.tops_per_watt,
            "tops": self.tops,
        }

    def __str__(self) -> str:
        header = ("layer", "card", "MVMs/tile", "tiles", "devices", "energy", "array", "DAC",
                  "ADC", "digital", "latency", "area")
        table = []
        for x in self.layers:
            parts, total = x.energy_parts, x.energy_J
            table.append((x.name, x.card, f"{x.mvms:,}", str(x.tile.tiles), f"{x.tile.devices:,}",
                          si(total, "J"), *(percent(parts[k], total) for k in PARTS[:4]),
                          si(x.latency_s, "s"), f"{x.tile.area_um2 / 1e6:.3g} mm²"))
        widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                 for line in [header, *table]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines += [f"digital: {d.name or '(model)'} ({d.kind}): {d.macs:,} MACs × "
                  f"{si(d.mac_energy_J, 'J')} = {si(d.energy_J, 'J')}" for d in self.digital]
        lines += [f"not counted: {text}" for text in self.uncounted]
        names = {"array": "array", "dac": "DAC", "adc": "ADC",
                 "digital_periphery": "digital periphery", "digital_macs": "digital MACs"}
        shares = ", ".join(f"{names[k]} {100 * v:.1f} %" for k, v in self.shares.items())
        lines += ["", f"per inference: {si(self.energy_J, 'J')} ({shares}); latency "
                      f"{si(self.latency_s, 's')} (layers in sequence, a layer's tiles in "
                      f"parallel); area {self.area_um2 / 1e6:.3g} mm²; {2 * self.macs:,} ops: "
                      f"{self.tops_per_watt:.3g} TOPS/W, {self.tops:.3g} TOPS"]
        return "\n".join(lines)


def percent(part: float, total: float) -> str:
    return f"{100 * part / total:.0f} %" if total else "–"


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Inside, every module of ``model`` is in eval mode; each gets its own mode back."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def count_forward(model: nn.Module, example_input: Any, layers: list[tuple[str, AnalogLayer]],
                  digital: tuple[DigitalLayer, ...]
                  ) -> tuple[dict[int, list[int]], dict[str, int], dict[str, str]]:
    """Run one digital forward of ``example_input`` with hooks.

    Returns:
        ({id(layer): [MVMs per tile, MACs]}, {digital name: MACs}, {digital name: why not
        counted}).
    """
    analog: dict[int, list[int]] = {id(layer): [0, 0] for _, layer in layers}
    macs: dict[str, int] = {d.name: 0 for d in digital}
    uncounted: dict[str, str] = {}

    def on_tile(layer: AnalogLayer) -> Any:
        def hook(tile: nn.Module, args: Any, output: torch.Tensor) -> None:
            vectors = output.numel() // tile.out_features
            analog[id(layer)][0] += vectors * getattr(layer, "groups", 1)
            analog[id(layer)][1] += output.numel() * tile.rows
        return hook

    def on_digital(entry: DigitalLayer, module: nn.Module) -> Any:
        def hook(_: nn.Module, args: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor) or isinstance(module, TRANSPOSED):
                uncounted[entry.name] = (f"{entry.name or '(model)'} ({entry.kind}): its "
                                         "products cannot be counted from its output")
                return
            features = output.shape[1] if isinstance(module, CONVOLUTIONS) else output.shape[-1]
            macs[entry.name] += output.numel() // features * entry.weights
        return hook

    handles = [layer.tile.register_forward_hook(on_tile(layer)) for _, layer in layers]
    for entry in digital:
        module = model.get_submodule(entry.name)
        handles.append(module.register_forward_hook(on_digital(entry, module)))
    try:
        with torch.no_grad(), eval_mode(model), digital_tiles(model):
            if isinstance(example_input, dict):
                model(**example_input)
            elif isinstance(example_input, tuple | list):
                model(*example_input)
            else:
                model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return analog, macs, uncounted


def cost(model: nn.Module, example_input: Any) -> CostReport:
    """Energy, latency and area of one inference of a converted model, per layer.

    Prices every analog layer from its card's ``[cost]`` section, and every weight matrix left
    digital at the cards' ``digital_mac_energy_J``, counting MVMs and multiply-accumulates
    with hooks on one forward of ``example_input`` (run digitally, in eval mode, without
    gradients: noise and programmed state do not change the counts). See the module
    docstring for the latency model and docs/cost.md for the formulas.

    Args:
        model: a model converted by :func:`analogsim.convert`, programmed or not.
        example_input: the input of one inference: a tensor, a tuple or list of positional
            arguments, or a dict of keyword arguments. Its batch is part of the inference.

    Returns:
        A :class:`CostReport`; ``print`` it for the table.

    Raises:
        ConversionError: the model has no analog layer.
        CardError: a layer's card has no ``[cost]`` section or an ideal ADC (``adc.bits``
            absent), or the cards disagree on ``digital_mac_energy_J`` where digital layers
            need it.
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"cost() takes a model (torch.nn.Module); got "
                                f"{type(model).__name__}")
    layers = [(name or layer.model_name or "(model)", layer)
              for name, layer in analog_layers(model)]
    if not layers:
        raise ConversionError("cost() needs a model converted with analogsim.convert; this one "
                              "has no analog layer")
    reference = global_reference([(layer.tile, layer.weight_matrix()) for _, layer in layers])
    priced = []
    for name, layer in layers:
        where = f"layer {name!r}"
        tile = tile_cost(layer.tile, layer.weight_matrix(), where, reference)
        if tile.adc_J is None:
            raise CardError(
                f"card {layer.chip.name!r}: [cost] prices an ADC conversion as "
                f"cost.adc_fom_J · 2^adc.bits, but adc.bits is absent (an ideal ADC); give "
                f"the card adc.bits to price {where}")
        priced.append((name, layer, tile))
    remainder = digital_remainder(model).products
    counts, digital_macs, uncounted = count_forward(model, example_input,
                                                    [(n, x) for n, x, _ in priced], remainder)
    rows = tuple(LayerCost(name, type(layer).__name__, layer.chip.name, *counts[id(layer)],
                           tile) for name, layer, tile in priced)
    used = {name: macs for name, macs in digital_macs.items() if macs}
    energies = {layer.chip.cost.digital_mac_energy_J for _, layer, _ in priced}
    if used and len(energies) > 1:
        raise CardError(f"the cards of this model give different cost.digital_mac_energy_J "
                        f"({sorted(energies)} J) and digital layers {sorted(used)} need one; "
                        "give the cards one value")
    mac_energy = energies.pop()
    digital = tuple(DigitalCost(d.name, d.kind, used[d.name], mac_energy)
                    for d in remainder if d.name in used)
    return CostReport(rows, digital, tuple(uncounted.values()))
