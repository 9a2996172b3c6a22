"""The sections of a card that hold no law choice: identity, conductance range, faults,
converters, output noise, tile mapping, wire resistance, bit slicing, drift compensation,
weight coding and the optional cost figures.

The law sections (programming, drift, read noise) are in :mod:`analogsim.cards.laws`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from analogsim.cards.fields import number, spec


@dataclass(frozen=True)
class CardInfo:
    """Who the card is and where its numbers come from."""

    name: str = field(metadata=spec("short name used by load_chip"))
    description: str = field(default="", metadata=spec("one-line summary"))
    source: str = field(default="", metadata=spec("paper/table/figure the numbers come from"))


@dataclass(frozen=True)
class Conductance:
    """Conductance range of one device and how a weight is split over devices."""

    g_max_uS: float = number(25.0, "largest programmable conductance", "µS", 1e-6)
    g_min_uS: float = number(0.0, "smallest programmable conductance", "µS")
    pair: Literal["differential", "single"] = field(
        default="differential",
        metadata=spec(
            "differential: W ∝ g⁺ − g⁻ on two devices; single: one device around mid-range"
        ),
    )
    levels: int | None = field(
        default=None,
        metadata=spec(
            "distinct programmable conductances per device (absent: analog)", "", 2, 1 << 20
        ),
    )


@dataclass(frozen=True)
class PerReadNoise:
    """Noise drawn afresh on every MVM, referred to the devices; sampled in output space."""

    additive_std: float = number(0.0, "per-device std per read, in units of g_max − g_min")
    multiplicative_std: float = number(0.0, "per-device relative std per read")


@dataclass(frozen=True)
class Faults:
    """Devices stuck at one conductance from programming on (drawn once per chip instance)."""

    stuck_low_fraction: float = number(0.0, "fraction of devices stuck at g_min", "", 0.0, 1.0)
    stuck_high_fraction: float = number(0.0, "fraction of devices stuck at g_max", "", 0.0, 1.0)


@dataclass(frozen=True)
class Dac:
    """Input digital-to-analog converter (aihwkit inp_res / inp_bound)."""

    bits: int | None = field(
        default=None,
        metadata=spec("resolution: 2^bits − 2 steps over ±bound (absent: ideal)", "bit", 2, 32),
    )
    bound: float = number(1.0, "clipping range of the scaled input", "", 1e-9)
    input_scaling: Literal["abs_max", "calibrated", "none"] = field(
        default="abs_max",
        metadata=spec(
            "abs_max: each input vector is divided by its max |x| (aihwkit "
            "noise management ABS_MAX); calibrated: every input is divided by one fixed "
            "range per layer, set by analogsim.calibrate (in the layer's input units), and "
            "clipped to ±bound, with or without bits; none: inputs used as they are"
        ),
    )


@dataclass(frozen=True)
class Adc:
    """Output analog-to-digital converter, one per tile column (aihwkit out_res / out_bound)."""

    bits: int | None = field(
        default=None,
        metadata=spec("resolution: 2^bits − 2 steps over ±bound (absent: ideal)", "bit", 2, 32),
    )
    bound: float = number(12.0, "clipping range in units of a full-scale device current", "", 1e-9)


@dataclass(frozen=True)
class OutputNoise:
    """Gaussian noise added to every tile output before the ADC (aihwkit out_noise)."""

    std: float = number(0.0, "std in units of a full-scale device current")


@dataclass(frozen=True)
class TileMapping:
    """How a layer's weight matrix is cut into tiles and scaled onto conductances."""

    tile_rows: int = field(default=512, metadata=spec("inputs per tile", "", 1, 1 << 20))
    tile_cols: int = field(default=512, metadata=spec("outputs per tile", "", 1, 1 << 20))
    weight_scaling: Literal["tile", "column"] = field(
        default="tile",
        metadata=spec("max|W| of a whole tile, or of each column within a tile, maps to g_max"),
    )
    integer_products: bool | None = field(
        default=None,
        metadata=spec("multiply DAC codes of at most 8 bits as exact int8 products where it "
                      "pays (true), or in float32 only (false); absent: where the CPU has AMX "
                      "tiles. A simulation setting: results differ from float32 products in "
                      "the last bits"),
    )


@dataclass(frozen=True)
class Wires:
    """Resistance of the crossbar wires, which lowers the currents of large tiles (IR drop).

    Each physical tile (``tile_rows`` × ``tile_cols``, one crossbar per device of a pair) is
    a linear resistor network: rows driven at one end, columns read at virtual ground at the
    other. Its MVM sees the first-order effective conductances G / (1 + δ) of
    ``analogsim.physics.ir_drop``; docs/ir_drop.md gives the model and its error, and where
    a coded tile's cells sit. A card without ``[wires]``, or with a resistance of 0, has
    ideal wires: its MVM is untouched.
    """

    segment_resistance_ohm: float = number(
        0.0, "resistance of the wire segment between adjacent cells, along rows and along "
        "columns (also between the driver or the ADC and the nearest cell); 0: ideal wires, "
        "the MVM untouched. aihwkit's IR-drop model takes 0.15 Ω (ir_drop_rs)", "Ω", 0.0, 1e3)


@dataclass(frozen=True)
class Slicing:
    """Bit slicing: inputs applied over several cycles, weights split over several devices.

    Optional: a card without ``[slicing]`` (or with one that slices nothing) runs every input
    in one cycle and holds every weight on one device (pair). *Input slicing* splits the
    magnitude of each DAC code (``dac.bits`` − 1 bits, the sign is applied with every slice)
    into slices of ``input_bits_per_slice`` bits (the least significant slice holds the bits
    left over); each slice drives the rows at full scale for its largest digit, is read and
    converted on its own (its own per-read and output noise, its own ADC conversion), and the
    digital periphery shifts and adds the converted partial sums. *Weight slicing* quantises
    each weight's magnitude to ``weight_slices`` · ``bits_per_weight_slice`` bits and holds
    each slice of ``bits_per_weight_slice`` bits on its own differential pair of 2^bits
    levels, in its own copy of the tile's columns with its own ADCs; the converted slices are
    shifted and added digitally. Formulas and their output noise: docs/bit_slicing.md.
    """

    input_bits_per_slice: int | None = field(default=None, metadata=spec(
        "magnitude bits of the DAC code applied per cycle (1: bit-serial): ⌈(dac.bits − 1) / "
        "this⌉ cycles, each its own read and ADC conversion; needs dac.bits, at most "
        "dac.bits − 1; absent: the whole code in one cycle", "bit", 1, 31))
    weight_slices: int = field(default=1, metadata=spec(
        "device pairs each weight's magnitude is split over, each in its own columns with its "
        "own ADC conversion (1: no weight slicing); needs a differential pair; with [coding] "
        "each slice is coded as a weight", "", 1, 16))
    bits_per_weight_slice: int | None = field(default=None, metadata=spec(
        "magnitude bits held by each slice's pair: 2^bits levels per device (conductance.levels "
        "absent, or levels − 1 a multiple of 2^bits − 1); the weight's magnitude gets "
        "weight_slices · this bits (at most 24); required when weight_slices > 1", "bit", 1, 16))


@dataclass(frozen=True)
class DriftCompensation:
    """Digital rescaling of tile outputs after drift (aihwkit GlobalDriftCompensation)."""

    method: Literal["none", "global", "per_column"] = field(
        default="none", metadata=spec("one factor per tile, one per column, or none")
    )
    readout: Literal["identity", "ones"] = field(
        default="identity",
        metadata=spec(
            "read-out inputs: one-hot vectors (aihwkit code) or an all-ones vector (aihwkit docs)"
        ),
    )
    readout_noise: bool = field(
        default=True,
        metadata=spec("read-out goes through the noisy periphery (aihwkit) or is exact"),
    )


@dataclass(frozen=True)
class Coding:
    """How weights are coded into cells (S3 robust weight coding; METHODS.md §13).

    ``scheme`` is ``"none"`` or parts joined by ``+``: ``sign`` (sign as side information,
    |w| on the full range), ``adaptive_mapping`` (small weights get a larger α),
    ``redundancy`` (r_small / r_large cells per small / large weight, reads averaged).
    """

    scheme: str = field(default="none", metadata=spec(
        "none, or + joined parts of sign, adaptive_mapping, redundancy"))
    scope: Literal["tile", "layer", "global"] = field(default="tile", metadata=spec(
        "where m = max|w| (and T) are taken: each tile, the layer, or the whole model"))
    large_fraction: float = number(6998 / 11164352, "fraction of weights that are large "
                                 "(S3: 6,998 of 11,164,352)", "", 0.0, 1.0)
    threshold: float | None = field(default=None, metadata=spec(
        "T as a fraction of m; replaces large_fraction when set", "", 0.0, 1.0))
    large_range: Literal["full", "above_threshold"] = field(default="full", metadata=spec(
        "large weights map [0, m] or [T, m] onto the range (the latter needs sign)"))
    clamp_magnitude: bool = field(default=True, metadata=spec(
        "clamp a decoded magnitude at 0, so the sign stays protected"))
    r_small: int = field(default=1, metadata=spec("cells per small weight", "", 1, 1000))
    r_large: int = field(default=10, metadata=spec("cells per large weight", "", 1, 1000))


@dataclass(frozen=True, kw_only=True)
class Cost:
    """Energy, time and area figures that price a converted model (``asim.cost``).

    Optional: a card without ``[cost]`` reports accuracy only. With it, every key is required
    but two pairs, of which a card gives exactly one key each: the read time, fixed
    (``read_time_s``) or per pulse-width step (``read_step_time_s``), and the DAC energy,
    fixed (``dac_energy_J``) or per unit capacitor (``dac_step_energy_J``); the step forms
    follow ``dac.bits``. ``source`` says where the figures come from (which are from a paper,
    which assumed). The formulas, and what they leave out (wires, buffers, data movement
    between tiles, control), are in docs/cost.md.
    """

    source: str = field(metadata=spec(
        "where the figures come from: paper, table or figure per figure, or why assumed"))
    read_voltage_V: float = field(metadata=spec(
        "voltage across a device while it is read; cell read energy G·V²·t", "V", 0.0, 10.0))
    read_time_s: float | None = field(default=None, metadata=spec(
        "time the read voltage is applied per MVM (the full-scale input pulse), whatever "
        "dac.bits (amplitude-coded inputs); also the array part of a tile's MVM time. Give "
        "this or read_step_time_s", "s", 0.0, 1e-3))
    read_step_time_s: float | None = field(default=None, metadata=spec(
        "pulse-width-coded inputs: the duration of one input step; the full-scale read is "
        "(2^(dac.bits−1) − 1) steps, so read time, array energy and MVM time follow dac.bits "
        "(HERMES: 1 ns a step, Khaddam-Aljameh et al., IEEE JSSC 57(4), 2022). Give this or "
        "read_time_s", "s", 0.0, 1e-3))
    dac_energy_J: float | None = field(default=None, metadata=spec(
        "energy of one input conversion, whatever dac.bits: one DAC driving one tile row for "
        "one MVM. Give this or dac_step_energy_J", "J", 0.0, 1e-6))
    dac_step_energy_J: float | None = field(default=None, metadata=spec(
        "capacitive (charge-redistribution) DAC: energy per unit capacitor, about C_u·V_ref²; "
        "one conversion costs dac_step_energy_J · 2^dac.bits, the binary-weighted array's 2^bits "
        "unit capacitors charged from the reference (M. Saberi et al., IEEE TCAS-I 58(8), "
        "2011). Give this or dac_energy_J", "J", 0.0, 1e-6))
    adc_fom_J: float = field(metadata=spec(
        "Walden figure of merit, energy per conversion step: one conversion costs "
        "adc_fom_J · 2^adc.bits (B. Murmann, ADC Performance Survey)", "J", 0.0, 1e-6))
    adc_conversion_time_s: float = field(metadata=spec(
        "time of one ADC conversion after the read; a shared ADC converts its columns in "
        "turn", "s", 0.0, 1e-3))
    columns_per_adc: int = field(metadata=spec(
        "columns sharing one ADC (1: an ADC per column); a tile of tile_cols columns has "
        "⌈tile_cols / columns_per_adc⌉ ADCs", "", 1, 1 << 20))
    cell_area_um2: float = field(metadata=spec(
        "area of one device with its access transistors", "µm²", 0.0, 1e4))
    adc_area_um2: float = field(metadata=spec("area of one ADC", "µm²", 0.0, 1e6))
    digital_energy_per_output_J: float = field(metadata=spec(
        "digital periphery per tile output per MVM: scaling, bias, drift compensation, "
        "adding partial sums", "J", 0.0, 1e-6))
    digital_mac_energy_J: float = field(metadata=spec(
        "one multiply-accumulate of a layer that stays digital", "J", 0.0, 1e-6))
