"""The device card applied to one tile: which physics law runs at programming and at drift.

This module reads a :class:`~analogsim.cards.Chip` and calls the pure functions of
:mod:`analogsim.physics`; it holds no state. Conductance tensors have the shape
(K, D, out, in): K chip instances, D devices per weight (2 for a pair, 1 single).

Programming and aging run on blocks of instances of at most :data:`BLOCK_DEVICES` devices (one
instance of a large layer, all K of a small one) and write into the (K, ...) result, so their
temporaries are those of one block of one layer. Instance k draws from ``generators[k]``
alone, in the order a draw over all K at once takes, and the arithmetic is elementwise IEEE
(transcendental functions run on one instance at a time, as before), so the values are those
of the all-at-once formulas bit for bit (``tests/test_programmed_memory.py``). What a tile
keeps per instance: the conductances (float32), the drift exponents (float16, see
:func:`exponent_dtype`) and the stuck-device map (uint8); ``docs/memory.md`` has the bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from analogsim.cards import (
    Chip,
    GaussianProgrammingNoise,
    NoProgrammingNoise,
    PcmOneOverFReadNoise,
    PcmPowerLawDrift,
    PolynomialProgrammingNoise,
    RramRelaxation,
)
from analogsim.errors import StateError
from analogsim.physics import conductance, pcm, programming, rram

#: Storage type of PCM drift exponents. float16 rounds ν to 2⁻¹¹ of itself (11 significant
#: bits); the drifted conductance g·exp(−ν ln(t/t0)) then moves by at most
#: g · max_x(x e^(−x)) · 2⁻¹¹ = g · e⁻¹ · 2⁻¹¹ ≈ 1.8e−4 · g at any time, against a 1/f read
#: noise of ≥ 4 % of g at 1 h on the pcm card. Measured (docs/memory.md): at most 1.9e−4 of
#: max|W| per weight after a year; the digits MLPs' accuracies over 20 chips move by one test
#: sample on 3 of their 120 (chip, time) points, by none on the others.
EXPONENT_STORAGE = torch.float16
#: Largest drift exponent float16 holds; a card whose exponents can exceed it (drift.scale
#: above ~10⁵) keeps them in float32.
EXPONENT_STORAGE_MAX = float(torch.finfo(EXPONENT_STORAGE).max)
#: A tile keeps 1/f read noise's Q_s (K, D, out, in) between drifts while one instance of it
#: has at most this many devices (4 MiB of float32); a larger layer recomputes it at every
#: drift (one power per device), with the same values, instead of holding 4 bytes per device.
READ_NOISE_CACHE_DEVICES = 2**20
#: Devices per block of instances that programming and aging process at once (4 MiB of
#: float32 per temporary): a block of one instance when an instance has more.
BLOCK_DEVICES = 2**20


@dataclass
class ProgrammedDevices:
    """What programming leaves on a tile for K instances (all µS or dimensionless)."""

    # (D, out, in) µS, after level quantisation; may be empty for aging when the card's drift
    # does not read it (drift_reads_targets)
    g_target: torch.Tensor
    # (K, D, out, in) µS; a view of g_target expanded over K when programming is exact
    g_programmed: torch.Tensor
    drift_exponents: torch.Tensor | None  # (K, D, out, in), PCM only; exponent_dtype(chip)
    faults: torch.Tensor | None  # (K, D, out, in) uint8, when the card has stuck-at rates
    read_noise_q: torch.Tensor | None = None  # (K, D, out, in) Q_s of 1/f noise, a cache


def exponent_dtype(chip: Chip) -> torch.dtype:
    """float16 (:data:`EXPONENT_STORAGE`) for the drift exponents of ``chip``, or float32 when
    they could exceed float16's range: ν = |μ + σ z|·scale with |z| < 10 (torch's normals
    stay below 9)."""
    d = chip.drift
    if not isinstance(d, PcmPowerLawDrift):
        return torch.float32
    largest = d.scale * (max(abs(d.mean_min), abs(d.mean_max)) + 10 * max(d.std_min, d.std_max))
    return EXPONENT_STORAGE if largest < EXPONENT_STORAGE_MAX else torch.float32


def drift_reads_targets(chip: Chip) -> bool:
    """Whether aging reads the target conductances (RRAM relaxation's spread around them)."""
    return isinstance(chip.drift, RramRelaxation)


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
    return std.mul_(law.scale)


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


def instance_blocks(instances: int, devices_per_instance: int) -> list[slice]:
    """Consecutive blocks of ``instances`` with at most :data:`BLOCK_DEVICES` devices each
    (at least one instance per block)."""
    size = max(1, BLOCK_DEVICES // max(devices_per_instance, 1))
    return [slice(a, min(a + size, instances)) for a in range(0, instances, size)]


def program_targets(
    chip: Chip, g_target: torch.Tensor, generators: Sequence[torch.Generator]
) -> ProgrammedDevices:
    """Program target conductances (D, out, in) µS on one chip instance per generator (what a
    lab's array does with exported targets); see :func:`program_devices`.

    Runs on blocks of instances (:func:`instance_blocks`). Without programming error and
    stuck devices every instance holds the targets: ``g_programmed`` is then a view of them,
    with no copy per instance.
    """
    cond, drift, faults_card = chip.conductance, chip.drift, chip.faults
    generators = list(generators)
    shape = (len(generators), *g_target.shape)  # (K, D, out, in)
    blocks = instance_blocks(len(generators), g_target.numel())
    stuck = faults_card.stuck_low_fraction > 0 or faults_card.stuck_high_fraction > 0
    exact = isinstance(chip.programming, NoProgrammingNoise) and not stuck
    # One pass per draw (programming error, exponents, faults): each generator still draws in
    # that order, and one pass's temporaries are gone before the next allocates.
    g = g_target.expand(shape) if exact else torch.empty(shape, dtype=g_target.dtype)
    if not exact:
        for block in blocks:
            g[block] = _programming_error(chip, g_target, generators[block])
    exponents = faults = None
    if isinstance(drift, PcmPowerLawDrift):
        mean, std = pcm.drift_exponent_moments(  # on the shared targets: same for every k
            g_target, cond.g_max_uS, drift.mean_slope, drift.mean_offset,
            (drift.mean_min, drift.mean_max), drift.std_slope, drift.std_offset,
            (drift.std_min, drift.std_max), drift.g_rel_min,
        )
        exponents = torch.empty(shape, dtype=exponent_dtype(chip))
        for block in blocks:
            block_shape = (block.stop - block.start, *g_target.shape)
            exponents[block] = pcm.draw_drift_exponents(
                mean.expand(block_shape), std.expand(block_shape), drift.scale,
                generators[block])
        del mean, std
    if stuck:
        faults = torch.empty(shape, dtype=torch.uint8)
        for block in blocks:
            faults[block] = conductance.draw_stuck_faults(
                (block.stop - block.start, *g_target.shape), faults_card.stuck_low_fraction,
                faults_card.stuck_high_fraction, generators[block])
            g[block] = conductance.apply_stuck_faults(g[block], faults[block], cond.g_min_uS,
                                                      cond.g_max_uS)
    return ProgrammedDevices(g_target=g_target, g_programmed=g, drift_exponents=exponents,
                             faults=faults)


def _programming_error(chip: Chip, g_target: torch.Tensor,
                       generators: list[torch.Generator]) -> torch.Tensor:
    """Conductances (B, D, out, in) µS of one block of instances after programming error."""
    cond, law = chip.conductance, chip.programming
    targets = g_target.expand(len(generators), *g_target.shape)
    if isinstance(law, PolynomialProgrammingNoise):
        return programming.add_polynomial_programming_noise(
            targets, law.coefficients_uS, cond.g_max_uS, law.reference_g_max_uS, law.scale,
            generators)
    if isinstance(law, GaussianProgrammingNoise):
        return programming.add_gaussian_programming_noise(
            targets, law.additive_std, law.multiplicative_std, cond.g_min_uS, cond.g_max_uS,
            generators)
    return targets.clone()


def age_devices(
    chip: Chip,
    devices: ProgrammedDevices,
    t_inference: float,
    generators: Sequence[torch.Generator],
) -> torch.Tensor:
    """Conductances (K, D, out, in) µS at ``t_inference`` s after programming.

    Applies drift or relaxation, then the accumulated read noise at that time, then re-forces
    stuck devices, on blocks of instances (:func:`instance_blocks`). Instance k draws only from
    ``generators[k]``. Returns the programmed conductances themselves when nothing applies.
    """
    cond, drift, read = chip.conductance, chip.drift, chip.read_noise
    generators = list(generators)
    g = devices.g_programmed
    if isinstance(drift, PcmPowerLawDrift) and devices.drift_exponents is None:
        raise StateError("this tile was programmed without drift exponents (a card "
                         "without pcm_power_law drift); program it again")
    power_law = isinstance(drift, PcmPowerLawDrift) and t_inference > 0
    relaxation = isinstance(drift, RramRelaxation)
    one_over_f = isinstance(read, PcmOneOverFReadNoise)
    if not (power_law or relaxation or one_over_f or devices.faults is not None):
        return g
    if relaxation:
        if not devices.g_target.numel():
            raise StateError("aging by relaxation needs the target conductances")
        variance = rram.relaxation_variance(
            devices.g_target, t_inference, drift.times_s, drift.coefficients_uS,
            cond.g_max_uS, drift.reference_g_max_uS,
        ).mul_(drift.scale**2)
        extra_std = rram.relaxation_std(variance, _programming_std(chip, devices.g_target))
        del variance
    if one_over_f:
        factor = pcm.read_noise_time_factor(t_inference, read.t0_s, read.t_read_s)
        if devices.read_noise_q is None and g[0].numel() <= READ_NOISE_CACHE_DEVICES:
            devices.read_noise_q = relative_read_noise(chip, g)
    blocks = instance_blocks(g.shape[0], g[0].numel())
    aged = torch.empty(g.shape, dtype=g.dtype) if len(blocks) > 1 else None
    for block in blocks:
        block_generators = generators[block]
        g_b = g[block]
        if power_law:
            g_b = _power_law_drift(g_b, devices.drift_exponents[block],
                                   math.log((t_inference + drift.t0_s) / drift.t0_s))
        elif relaxation:
            g_b = rram.add_relaxation(g_b, extra_std, block_generators)
        if one_over_f:
            # |g(t)| · Q_s · factor, in that order (|g Q| = |g| Q: Q ≥ 0)
            std = (torch.mul(devices.read_noise_q[block], g_b) if devices.read_noise_q
                   is not None else relative_read_noise(chip, g[block]).mul_(g_b))
            std.abs_().mul_(factor)
            g_b = pcm.add_read_noise(g_b, std, read.scale, block_generators)
            del std
        if devices.faults is not None:
            g_b = conductance.apply_stuck_faults(g_b, devices.faults[block], cond.g_min_uS,
                                                 cond.g_max_uS)
        if aged is None:
            return g_b
        aged[block] = g_b
    return aged


def _power_law_drift(g: torch.Tensor, exponents: torch.Tensor, log_ratio: float
                     ) -> torch.Tensor:
    """g · exp(−ν ln(t/t0)) for a block of instances (B, D, out, in), ``log_ratio`` =
    ln(t/t0): :func:`analogsim.physics.pcm.apply_power_law_drift`'s formula, evaluated in
    place on a float32 copy of the stored exponents (which float32 holds exactly), the
    exponential one instance at a time (see :func:`_each_instance`)."""
    drifted = exponents.to(g.dtype, copy=True).mul_(-log_ratio)
    for instance in drifted:
        torch.exp(instance, out=instance)
    return drifted.mul_(g)


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

    Fixed from programming on; a tile keeps it between drifts up to
    :data:`READ_NOISE_CACHE_DEVICES` devices per instance.
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
    return (g * (gain / (cond.g_max_uS - cond.g_min_uS))).square_().sum(dim=-3)


def additive_per_read_variance(chip: Chip) -> float:
    """σ_a² of per-read noise per normalised weight: D devices, each σ·gain."""
    cond = chip.conductance
    devices = 2 if cond.pair == "differential" else 1
    gain = conductance.weight_noise_gain(cond.pair)
    return devices * (gain * chip.per_read_noise.additive_std) ** 2
