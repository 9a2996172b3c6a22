"""Energy, time and area of one MVM on a tile: first-order formulas on numbers.

Each formula names its source; docs/cost.md derives them and lists what they leave out
(wires, buffers, data movement between tiles, control, leakage). Units: conductances in µS (as
everywhere in analogsim), voltages in V, times in s, energies in J, areas in µm².
"""

from __future__ import annotations

import math

#: 1 µS in S.
SIEMENS_PER_MICROSIEMENS = 1e-6


def cell_read_energy(conductance_uS: float, read_voltage_V: float, read_time_s: float) -> float:
    """Energy dissipated in devices of total conductance G read at V for t: E = G·V²·t (J).

    Joule heating of a conductance G under a constant voltage V: the power is V·I = G·V², so
    a read of duration t dissipates G·V²·t. ``conductance_uS`` may be the sum over many
    devices, giving their total. With pulse-width-coded inputs a row is driven for a fraction
    of ``read_time_s`` only; taking the whole of it is the full-scale input, the largest
    energy.
    """
    return conductance_uS * SIEMENS_PER_MICROSIEMENS * read_voltage_V**2 * read_time_s


def adc_conversion_energy(fom_J: float, bits: int) -> float:
    """Energy of one conversion of a ``bits``-bit ADC with Walden figure of merit ``fom_J``:
    E = FOM · 2^bits (J).

    The Walden figure of merit is FOM = P / (2^ENOB · f_s), in J per conversion step (R. H.
    Walden, IEEE J. Sel. Areas Commun. 17(4), 1999; the figure B. Murmann's ADC Performance
    Survey tabulates as FOMW). Solved for the energy per conversion P/f_s with ENOB taken as
    the nominal bits. ENOB is below the nominal bits in practice, so at a FOM measured on
    ENOB this overstates the energy by 2^(bits − ENOB). The 2^bits scaling holds where
    converters are not limited by thermal noise, below about 10 bits (Murmann's survey);
    above, energy grows as 4^bits.
    """
    return fom_J * 2.0**bits


def adcs_per_tile(tile_cols: int, columns_per_adc: int) -> int:
    """ADCs of a tile of ``tile_cols`` columns when ``columns_per_adc`` columns share one."""
    return math.ceil(tile_cols / columns_per_adc)


def conversion_rounds(columns: int, adcs: int) -> int:
    """Conversions each ADC of a tile makes in turn to read ``columns`` used columns."""
    return math.ceil(columns / adcs)


def tile_mvm_time(read_time_s: float, rounds: int, conversion_time_s: float) -> float:
    """Time of one MVM on a tile: the read, then ``rounds`` conversions in turn (s).

    A tile's ADCs convert in parallel; an ADC shared by several columns converts them one
    after the other. Read and conversion are taken not to overlap; an integrating ADC that
    converts during the read has a ``conversion_time_s`` of what follows the read only.
    """
    return read_time_s + rounds * conversion_time_s


def tile_area(rows: int, cols: int, devices_per_cell: int, cell_area_um2: float, adcs: int,
              adc_area_um2: float) -> float:
    """Area of one tile: its devices and its ADCs (µm²); A = rows·cols·D·A_cell + n·A_ADC."""
    return rows * cols * devices_per_cell * cell_area_um2 + adcs * adc_area_um2
