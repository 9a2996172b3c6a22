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


def capacitive_dac_energy(unit_energy_J: float, bits: int) -> float:
    """Energy of one conversion of a ``bits``-bit capacitive (charge-redistribution) DAC:
    E = E_u · 2^bits (J), with E_u ≈ C_u·V_ref² the energy of one unit capacitor.

    A binary-weighted capacitor array of ``bits`` bits holds 2^bits unit capacitors C_u; the
    energy a conversion draws from the reference V_ref is a code-dependent fraction of
    2^bits·C_u·V_ref² (M. Saberi, R. Lotfi, K. Mafinezhad, W. A. Serdijn, "Analysis of power
    consumption and linearity in capacitive digital-to-analog converters used in successive
    approximation ADCs", IEEE Trans. Circuits Syst. I 58(8), 1736 (2011)); E_u absorbs that
    fraction, as the Walden FOM does for an ADC (:func:`adc_conversion_energy`). The unit
    capacitor is taken fixed: a DAC whose C_u grows with bits for matching (C_u ∝ 4^bits)
    costs more at high resolution.
    """
    return unit_energy_J * 2.0**bits


def pulse_width_read_time(step_time_s: float, steps: int) -> float:
    """Duration of a full-scale pulse-width-coded input of ``steps`` steps: t = steps · t_step
    (s). A b-bit signed input (sign and b − 1 magnitude bits) is at most 2^(b−1) − 1 steps
    long; HERMES drives 8-bit inputs as sign + 7-bit pulse width, one step per period of its
    1-GHz clock (R. Khaddam-Aljameh et al., IEEE JSSC 57(4), 2022), 127 ns at full scale.
    """
    return steps * step_time_s


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
