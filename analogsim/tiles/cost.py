"""What one input vector through a layer's tiles costs: energy, time, area (card ``[cost]``).

One input vector of a layer is one MVM on each of its tiles (row chunks × column groups,
:mod:`.layout`). :func:`tile_cost` prices it from the card's ``[cost]`` figures with the
formulas of :mod:`analogsim.physics.energy`:

- array: E = ΣG·V²·t over every device of the layer, ΣG the sum of the target conductances
  (the programmed targets when the tile is programmed, else those the layer's weights map
  to): what programming aims for, before programming noise and drift (drift lowers G, so
  the figure is the energy right after programming);
- DAC: one conversion per row per column group (each column group is a tile with its own
  DACs driving the same inputs), at ``dac_energy_J`` whatever ``dac.bits``, or
  ``dac_step_energy_J`` · 2^bits (a capacitive DAC);
- read time: ``read_time_s`` whatever ``dac.bits``, or (2^(bits−1) − 1) ·
  ``read_step_time_s`` (pulse-width-coded inputs: a full-scale pulse); the array energy and
  the MVM time follow it;
- ADC: one conversion per output per row chunk (each row chunk's partial outputs are
  converted, then added digitally), FOM·2^bits each;
- digital periphery: one operation per converted output (scaling, bias, drift compensation,
  adding partial sums);
- time: the layer's tiles run in parallel, so the slowest tile's read plus its conversions
  in turn (ADCs shared by several columns convert them one after the other);
- area: whole tiles (a partly filled tile counts in full) plus the devices coding adds.

Bit slicing (:mod:`.slicing`, docs/bit_slicing.md) multiplies: n input cycles each read
the whole array (n × the array energy, device reads and time) and convert every output
(n × the ADC conversions and digital operations). A cycle converts a sign and an s-bit digit:
with the step forms its DAC has s + 1 bits and its pulse 2^s − 1 steps (the least
significant cycle's digit may hold fewer bits: an upper bound); with the fixed forms it costs
``dac_energy_J`` and ``read_time_s``, the card's full DAC and read (an upper bound for a
slice DAC of fewer bits). m weight slices each hold a copy of the tiles (m × the tiles,
devices, ADCs and area; DAC conversions, ADC conversions and digital operations), run in
parallel with the others.

Coding (:mod:`.coding`) adds devices: the copies of redundancy are extra cells in the
columns of the weights they copy (their currents add on the column, so they add reads and
area, not ADCs), and each side-information bit is one device read in every MVM, at g_max
for a 1 (a negative sign, a large weight) and g_min for a 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from analogsim.cards import Chip, Cost
from analogsim.errors import CardError
from analogsim.physics import energy
from analogsim.physics.periphery import code_limit
from analogsim.tiles import coding, device_model
from analogsim.tiles.programmed import devices_per_weight, unpack_targets
from analogsim.tiles.slicing import Slices, cycle_count, sliced_weights, weight_slice_count
from analogsim.tiles.tile import AnalogTile


@dataclass(frozen=True)
class TileCost:
    """One input vector through a layer's tiles (one MVM on each tile), priced.

    Attributes:
        tiles: physical tiles, row chunks × column groups (× weight slices).
        rows, outputs: size of the weight matrix (out, rows).
        devices: devices holding the layer: cells × devices per cell, plus one per
            side-information bit of a coding.
        extra_devices: of those, the devices beyond one cell per weight (coding's copies
            and side bits).
        adcs: ADCs of the layer's tiles.
        conductance_uS: sum of the target conductances of all those devices, µS.
        array_J, dac_J, digital_J: energy of the array reads, the DACs and the digital
            periphery per input vector, J.
        adc_J: energy of the ADC conversions per input vector, J; None for an ideal ADC
            (``adc.bits`` absent: the FOM·2^bits model needs a resolution).
        mvm_time_s: time of one input vector: the slowest of the layer's tiles, s.
        area_um2: area of the layer's tiles and of its extra devices, µm².
        conversions: ADC conversions per input vector: outputs × row chunks × input cycles
            × weight slices.
        device_reads: device reads per input vector: devices × input cycles.
    """

    tiles: int
    rows: int
    outputs: int
    devices: int
    extra_devices: int
    adcs: int
    conductance_uS: float
    array_J: float
    dac_J: float
    adc_J: float | None
    digital_J: float
    mvm_time_s: float
    area_um2: float
    conversions: int
    device_reads: int

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one input vector: rows × outputs."""
        return self.rows * self.outputs

    @property
    def energy_J(self) -> float | None:
        """Energy of one input vector, J (None with an ideal ADC)."""
        if self.adc_J is None:
            return None
        return self.array_J + self.dac_J + self.adc_J + self.digital_J


def card_cost(chip: Chip, where: str) -> Cost:
    """The ``[cost]`` section of ``chip``.

    Raises:
        CardError: the card has none; the message names the card and ``where`` it was
            needed.
    """
    if chip.cost is None:
        raise CardError(
            f"card {chip.name!r} has no [cost] section, so {where} cannot be priced: give "
            "the card one (energies, times and areas with their sources; docs/cost.md), or "
            "use a card that has one, e.g. 'pcm_hermes'")
    return chip.cost


def stored_targets(tile: AnalogTile, weight: torch.Tensor,
                   reference: coding.CodingReference | None
                   ) -> tuple[torch.Tensor, coding.CodedWeights | None]:
    """(target conductances (D, out, rows) µS, or (D, 1, cells) coded; the coding or None).

    The programmed targets of a programmed tile, else those ``weight`` (out, rows) maps to.
    """
    chip = tile.chip
    if tile.is_programmed:
        coded = tile.stored_coding() if tile.coded else None
        return unpack_targets(chip, tile.g_target_packed), coded
    scale = tile.layout.weight_scales(weight)
    per_weight = tile.layout.expand_rows(scale).expand_as(weight)
    if tile.coded:
        coded = coding.encode_tile(weight, chip.coding, per_weight, reference,
                                   Slices.from_chip(chip))
        return device_model.target_conductances(chip, coded.cells.unsqueeze(0)), coded
    cells = sliced_weights(Slices.from_chip(chip), weight.detach().float() / per_weight)
    return device_model.target_conductances(chip, cells), None


def side_bit_conductance(coded: coding.CodedWeights, chip: Chip) -> tuple[int, float]:
    """(side-information bits, their devices' conductance sum µS): g_max for a 1, g_min
    for a 0; the bits are the sign (1: negative), one per weight (its m weight slices share
    it: rows o·m … o·m + m − 1 of the coded slice matrix), and the small/large split
    (1: large), one per coded weight or slice."""
    parts = coding.scheme_parts(chip.coding.scheme)
    ones, bits = 0, 0
    if coded.sign is not None:
        per_weight = coded.sign[::weight_slice_count(chip)]
        ones, bits = ones + int((per_weight < 0).sum()), bits + per_weight.numel()
    if parts & {"adaptive_mapping", "redundancy"}:
        ones, bits = ones + int(coded.large.sum()), bits + coded.weights
    cond = chip.conductance
    return bits, ones * cond.g_max_uS + (bits - ones) * cond.g_min_uS


def input_drive(chip: Chip, card: Cost) -> tuple[float, float]:
    """(read time of one input cycle s, energy of one DAC conversion J) on ``chip``.

    The fixed forms (``read_time_s``, ``dac_energy_J``) hold whatever ``dac.bits``. The step
    forms follow the bits one cycle's DAC converts: ``dac.bits``, or s + 1 with input slicing
    of s bits per cycle (a sign and an s-bit digit). A pulse-width-coded input of b bits is at
    most 2^(b−1) − 1 steps of ``read_step_time_s``; a capacitive DAC of b bits costs
    ``dac_step_energy_J`` · 2^b.
    """
    slices = Slices.from_chip(chip)
    bits = (chip.dac.bits if slices is None or slices.input_bits is None
            else slices.input_bits + 1)
    read = (card.read_time_s if card.read_step_time_s is None
            else energy.pulse_width_read_time(card.read_step_time_s, code_limit(bits)))
    dac = (card.dac_energy_J if card.dac_step_energy_J is None
           else energy.capacitive_dac_energy(card.dac_step_energy_J, bits))
    return read, dac


@torch.no_grad()
def tile_cost(tile: AnalogTile, weight: torch.Tensor, where: str,
              reference: coding.CodingReference | None = None) -> TileCost:
    """Price one input vector through ``tile`` (see the module docstring for the model).

    Args:
        tile: the layer's tile.
        weight: the layer's weight matrix (out, rows), for an unprogrammed tile's targets.
        where: how messages name the layer.
        reference: m and T of a model-wide coding scope
            (:func:`analogsim.tiles.coding.global_reference`).

    Raises:
        CardError: the tile's card has no ``[cost]`` section.
        StateError: an unprogrammed tile coded with ``coding.scope = "global"`` and no
            ``reference``.
    """
    chip = tile.chip
    card = card_cost(chip, where)
    layout = tile.layout
    per_cell = devices_per_weight(chip)
    targets, coded = stored_targets(tile, weight, reference)
    conductance_uS = float(targets.double().sum())
    weights = tile.out_features * tile.rows
    devices = targets.numel()
    if coded is not None:
        side_bits, g_bits = side_bit_conductance(coded, chip)
        devices, conductance_uS = devices + side_bits, conductance_uS + g_bits
    extra = devices - weights * per_cell
    cycles, slices = cycle_count(chip), weight_slice_count(chip)  # 1, 1 without [slicing]
    chunks, groups = len(layout.row_chunks), len(layout.column_groups)
    tiles = chunks * groups * slices  # a weight slice holds its own copy of the tiles
    mapping = chip.mapping
    adcs = energy.adcs_per_tile(mapping.tile_cols, card.columns_per_adc)
    # converted outputs: each row chunk's partial sums, in every cycle and weight slice
    outputs = tile.out_features * chunks * cycles * slices
    bits = chip.adc.bits
    read_time, dac_energy = input_drive(chip, card)
    mvm_time = cycles * max(energy.tile_mvm_time(
        read_time, energy.conversion_rounds(b - a, adcs), card.adc_conversion_time_s)
        for a, b in layout.column_groups)
    one_tile = energy.tile_area(mapping.tile_rows, mapping.tile_cols, per_cell,
                                card.cell_area_um2, adcs, card.adc_area_um2)
    outside_tiles = extra - (slices - 1) * weights * per_cell  # coding's copies and side bits
    return TileCost(
        tiles=tiles, rows=tile.rows, outputs=tile.out_features, devices=devices,
        extra_devices=extra, adcs=adcs * tiles, conductance_uS=conductance_uS,
        array_J=cycles * energy.cell_read_energy(conductance_uS, card.read_voltage_V,
                                                 read_time),
        dac_J=tile.rows * groups * slices * cycles * dac_energy,
        adc_J=None if bits is None else outputs * energy.adc_conversion_energy(card.adc_fom_J,
                                                                                bits),
        digital_J=outputs * card.digital_energy_per_output_J,
        mvm_time_s=mvm_time,
        area_um2=tiles * one_tile + outside_tiles * card.cell_area_um2,
        conversions=outputs, device_reads=devices * cycles)
