"""The device card applied to one tile: which physics law runs at programming and at drift.

This module reads a :class:`~analogsim.cards.Chip` and calls the pure functions of
:mod:`analogsim.physics`; it holds no state. Conductance tensors have the shape
(K, D, out, in): K chip instances, D devices per weight (2 for a pair, 1 single).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from analogsim.cards import (
    Chip,
    GaussianProgrammingNoise,
    PcmOneOverFReadNoise,
    PcmPowerLawDrift,
    PolynomialProgrammingNoise,
    RramRelaxation,
)
from analogsim.errors import StateError
from analogsim.physics import conductance, pcm, programming, rram


@dataclass
class ProgrammedDevices:
    """What programming leaves on a tile for K instances (all µS or dimensionless)."""

    g_target: torch.Tensor  # (D, out, in) µS, after level quantisation
    g_programmed: torch.Tensor  # (K, D, out, in) µS
    drift_exponents: torch.Tensor | None  # (K, D, out, in), PCM only
    faults: torch.Tensor | None  # (K, D, out, in) uint8, when the card has stuck-at rates
    read_noise_q: torch.Tensor | None = None  # (K, D, out, in) Q_s of 1/f noise, a cache


def target_conductances(chip: Chip, w_normalised: torch.Tensor) -> torch.Tensor:
    """Target conductances (D, out, in) µS for normalised weights, on the card's levels."""
    cond = chip.conductance
    g = conductance.weights_to_conductances(w_normalised, cond.g_min_uS, cond.g_max_uS, cond.pair)
    if cond.levels is not None:
        g = conductance.quantise_to_levels(g, cond.g_min_uS, cond.g_max_uS, cond.levels)
    return g


def _programming_std(chip: Chip, g_target: torch.Tensor) -> torch.Tensor:
    law = chip.programming
    if not isinstance(law, PolynomialProgrammingNoise):
        return torch.zeros_like(g_target)
    std = programming.polynomial_programming_std(
        g_target, law.coefficients_uS, chip.conductance.g_max_uS, law.reference_g_max_uS
    )
    return std * law.scale


def program_devices(
    chip: Chip, w_normalised: torch.Tensor, generators: Sequence[torch.Generator]
) -> ProgrammedDevices:
    """Program one chip instance per generator: programming error, drift exponents, faults.

    Args:
        chip: the card.
        w_normalised: (out, in) weights in units of the tile's max|W|.
        generators: one per instance; instance k draws only from ``generators[k]``, in the
            order programming error, drift exponents, faults.
    """
    return program_targets(chip, target_conductances(chip, w_normalised), generators)


def program_targets(
    chip: Chip, g_target: torch.Tensor, generators: Sequence[torch.Generator]
) -> ProgrammedDevices:
    """Program target conductances (D, out, in) µS on one chip instance per generator (what a
    lab's array does with exported targets); see :func:`program_devices`."""
    cond, law = chip.conductance, chip.programming
    generators = list(generators)
    targets = g_target.expand(len(generators), *g_target.shape)  # (K, D, out, in)
    if isinstance(law, PolynomialProgrammingNoise):
        g = programming.add_polynomial_programming_noise(
            targets, law.coefficients_uS, cond.g_max_uS, law.reference_g_max_uS, law.scale,
            generators,
        )
    elif isinstance(law, GaussianProgrammingNoise):
        g = programming.add_gaussian_programming_noise(
            targets, law.additive_std, law.multiplicative_std, cond.g_min_uS, cond.g_max_uS,
            generators,
        )
    else:
        g = targets.clone()
    exponents = None
    if isinstance(chip.drift, PcmPowerLawDrift):
        d = chip.drift
        mean, std = pcm.drift_exponent_moments(  # on the shared targets: same for every k
            g_target, cond.g_max_uS, d.mean_slope, d.mean_offset, (d.mean_min, d.mean_max),
            d.std_slope, d.std_offset, (d.std_min, d.std_max), d.g_rel_min,
        )
        exponents = pcm.draw_drift_exponents(mean.expand_as(targets), std.expand_as(targets),
                                             d.scale, generators)
    faults = None
    if chip.faults.stuck_low_fraction > 0 or chip.faults.stuck_high_fraction > 0:
        faults = conductance.draw_stuck_faults(
            g.shape, chip.faults.stuck_low_fraction, chip.faults.stuck_high_fraction, generators
        )
        g = conductance.apply_stuck_faults(g, faults, cond.g_min_uS, cond.g_max_uS)
    return ProgrammedDevices(g_target=g_target, g_programmed=g, drift_exponents=exponents,
                             faults=faults)


def age_devices(
    chip: Chip,
    devices: ProgrammedDevices,
    t_inference: float,
    generators: Sequence[torch.Generator],
) -> torch.Tensor:
    """Conductances (K, D, out, in) µS at ``t_inference`` s after programming.

    Applies drift or relaxation, then the accumulated read noise at that time, then re-forces
    stuck devices. Instance k draws only from ``generators[k]``.
    """
    cond, drift, read = chip.conductance, chip.drift, chip.read_noise
    generators = list(generators)
    g = devices.g_programmed
    if isinstance(drift, PcmPowerLawDrift):
        if devices.drift_exponents is None:
            raise StateError("this tile was programmed without drift exponents (a card "
                             "without pcm_power_law drift); program it again")
        g_drift = pcm.apply_power_law_drift(g, devices.drift_exponents, t_inference,
                                            drift.t0_s, exp=_each_instance(torch.exp))
    elif isinstance(drift, RramRelaxation):
        variance = rram.relaxation_variance(
            devices.g_target, t_inference, drift.times_s, drift.coefficients_uS,
            cond.g_max_uS, drift.reference_g_max_uS,
        ) * drift.scale**2
        g_drift = rram.apply_relaxation(g, variance, _programming_std(chip, devices.g_target),
                                        generators)
    else:
        g_drift = g
    if isinstance(read, PcmOneOverFReadNoise):
        if devices.read_noise_q is None:
            devices.read_noise_q = relative_read_noise(chip, g)
        factor = pcm.read_noise_time_factor(t_inference, read.t0_s, read.t_read_s)
        std = g_drift.abs() * devices.read_noise_q * factor
        g_drift = pcm.add_read_noise(g_drift, std, read.scale, generators)
    if devices.faults is not None:
        g_drift = conductance.apply_stuck_faults(g_drift, devices.faults, cond.g_min_uS,
                                                 cond.g_max_uS)
    return g_drift


def _each_instance(op: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``op`` (an elementwise torch function with ``out=``) run on each instance block of its
    first argument (K, ...) on its own.

    Transcendental functions go through this: their vectorised and scalar code paths may
    differ in the last bit, so one call over K instances could make instance k depend on K.
    Everything else (IEEE arithmetic, exact in both paths) runs on all K at once.
    """

    def blockwise(x: torch.Tensor, *args: Any) -> torch.Tensor:
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        for x_k, out_k in zip(x.contiguous(), out, strict=True):
            op(x_k, *args, out=out_k)
        return out

    return blockwise


def relative_read_noise(chip: Chip, g_programmed: torch.Tensor) -> torch.Tensor:
    """Q_s of the card's 1/f read noise for programmed conductances (K, D, out, in) µS.

    Fixed from programming on, so a tile computes it once and reuses it at every drift time.
    """
    read = chip.read_noise
    if not isinstance(read, PcmOneOverFReadNoise):
        raise StateError(f"the card's read noise law is {read.law!r}, not pcm_1_over_f")
    return pcm.relative_read_noise(g_programmed, chip.conductance.g_max_uS, read.q_coefficient,
                                   read.q_exponent, read.q_floor, read.q_max,
                                   power=_each_instance(torch.pow))


def read_weights(chip: Chip, g: torch.Tensor) -> torch.Tensor:
    """Normalised weights (K, out, in) read from conductances (K, D, out, in) µS."""
    cond = chip.conductance
    return conductance.conductances_to_weights(g, cond.g_min_uS, cond.g_max_uS, cond.pair)


def conductance_square_weights(chip: Chip, g: torch.Tensor) -> torch.Tensor:
    """Q_ij = Σ_d (gain · g_d / (g_max − g_min))², the weight of each input in the variance of
    conductance-proportional per-read noise; shape (K, out, in)."""
    cond = chip.conductance
    gain = conductance.weight_noise_gain(cond.pair)
    return ((g * (gain / (cond.g_max_uS - cond.g_min_uS))) ** 2).sum(dim=-3)


def additive_per_read_variance(chip: Chip) -> float:
    """σ_a² of per-read noise per normalised weight: D devices, each σ·gain."""
    cond = chip.conductance
    devices = 2 if cond.pair == "differential" else 1
    gain = conductance.weight_noise_gain(cond.pair)
    return devices * (gain * chip.per_read_noise.additive_std) ** 2
