"""Converters: the DAC in front of a tile, its input scaling, and the ADC behind it.

A tile works in converter codes: inputs are divided by (their scale ·) the DAC step and rounded
to integer codes, the MVM maps codes to ADC codes, and the ADC rounds and clips them. The scale
is max|x| of each input vector (``abs_max``), the layer's fixed calibrated range r
(``calibrated``, set by :func:`analogsim.calibrate`) or none. The constants here are derived
once from the card.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from analogsim.cards import Chip
from analogsim.errors import StateError
from analogsim.physics import periphery
from analogsim.tiles import integer_mvm


@dataclass(frozen=True)
class Converters:
    """The periphery's constants for one card.

    Attributes:
        input_step: DAC step in units of the scaled input (1 without a DAC).
        output_step: ADC step in units of a full-scale device current (1 without an ADC).
        dac_limit: largest |DAC code| (None without a DAC).
        adc_limit: largest |ADC code| (None without an ADC).
        dac_clips: whether the DAC can clip: not with abs-max scaling and a bound ≥ 1, where
            every |x| / max|x| ≤ 1 ≤ bound.
        ideal_dac_bound: ±bound that scaled inputs are clipped to without DAC bits: the card's
            bound with calibrated scaling (a fixed range clips what exceeds it), else None (no
            clipping, as before calibrated scaling existed).
        int8_codes: DAC codes fit int8, so the MVM may run as exact integer products.
        full_scale_input: the DAC level of a full-scale input (1, or just below it).
        input_scaling: ``"abs_max"`` (per input vector), ``"calibrated"`` (one fixed range
            per layer) or ``"none"``.
    """

    input_step: float
    output_step: float
    dac_limit: int | None
    adc_limit: int | None
    dac_clips: bool
    int8_codes: bool
    full_scale_input: float
    input_scaling: str
    ideal_dac_bound: float | None = None

    @classmethod
    def from_chip(cls, chip: Chip) -> Converters:
        """The converters of ``chip``'s [dac] and [adc] sections."""
        dac, adc = chip.dac, chip.adc
        dac_limit = None if dac.bits is None else periphery.code_limit(dac.bits)
        return cls(
            input_step=(1.0 if dac.bits is None
                        else periphery.quantisation_step(dac.bits, dac.bound)),
            output_step=(1.0 if adc.bits is None
                         else periphery.quantisation_step(adc.bits, adc.bound)),
            dac_limit=dac_limit,
            adc_limit=None if adc.bits is None else periphery.code_limit(adc.bits),
            dac_clips=not (dac.input_scaling == "abs_max" and dac.bound >= 1.0),
            int8_codes=dac_limit is not None and dac_limit <= integer_mvm.MAX_CODE,
            full_scale_input=float(periphery.quantise(torch.ones(()), dac.bits, dac.bound)),
            input_scaling=dac.input_scaling,
            ideal_dac_bound=(dac.bound if dac.bits is None and dac.input_scaling == "calibrated"
                             else None),
        )

    def input_scale(self, x: torch.Tensor, vector_dims: tuple[int, ...],
                    input_range: torch.Tensor | None = None) -> torch.Tensor | None:
        """The divisor of the inputs, in the layer's input units: max|x| of each input vector
        (spanning ``vector_dims``, kept as size-1 dimensions), the calibrated ``input_range``
        (a 0-d tensor, the same for every vector), or None without scaling."""
        if self.input_scaling == "abs_max":
            return periphery.abs_max_scale(x, vector_dims)
        if self.input_scaling == "calibrated":
            if input_range is None:
                raise StateError("calibrated input scaling has no input range: call "
                                 "asim.calibrate(model, data)")
            return input_range
        return None

    def dac_codes(self, x: torch.Tensor, input_scale: torch.Tensor | None) -> torch.Tensor:
        """DAC codes of the inputs (or the scaled inputs, without a DAC's bits: clipped to
        ±``ideal_dac_bound`` when it is set)."""
        if self.dac_limit is None:
            scaled = x if input_scale is None else x / input_scale
            if self.ideal_dac_bound is None:
                return scaled
            return periphery.quantise(scaled, None, self.ideal_dac_bound)
        divisor = self.input_step if input_scale is None else input_scale * self.input_step
        limit = self.dac_limit if self.dac_clips else None
        return periphery.round_and_clip(x / divisor, limit, in_place=True)

    def adc_codes(self, y: torch.Tensor, in_place: bool) -> torch.Tensor:
        """ADC codes of MVM outputs already in ADC units: rounded and clipped to ±adc_limit."""
        if self.adc_limit is None:
            return y
        return periphery.round_and_clip(y, self.adc_limit, in_place=in_place)
