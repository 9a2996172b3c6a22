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
keeps per instance: the conductances (float16 where the card's programming error dwarfs
float16's rounding, else float32: :func:`conductance_dtype`) and the stuck-device map (uint8).
PCM drift exponents are not stored: each instance draws them from a stream of its own
(:data:`~analogsim.seeding.Purpose.DRIFT_EXPONENTS`), so aging redraws the same exponents,
in float32, from the targets and that stream's seed (:func:`drift_exponents`); small layers
keep them between drifts as a cache (:data:`CACHE_DEVICES`).
``docs/memory.md`` has the bytes.
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
from analogsim.seeding import Purpose, derive_seed

#: Compact storage type of programmed conductances. float16 keeps 11 significant bits: a
#: conductance below 2·g_max is rounded by at most half its spacing u = 2^(⌊log2(2 g_max)⌋ − 10)
#: µS, an error of std u/√12 (uniform), which adds to the programming error's variance.
CONDUCTANCE_STORAGE = torch.float16
#: A card keeps its programmed conductances in float16 when the rounding's std u/√12 is at
#: most this fraction of the smallest programming-error std over its target range (so the
#: rounding adds at most 0.25 % to any device's error variance); else in float32. The pcm
#: card: u/√12 = 0.009 µS against σ ≥ 0.26 µS (3.4 %): float16.
CONDUCTANCE_ROUNDING_FRACTION = 0.05
#: A tile keeps 1/f read noise's Q_s and the PCM drift exponents (K, D, out, in) between
#: drifts while one instance of it has at most this many devices (4 MiB of float32 each); a
#: larger layer recomputes them at every drift (a power, and a normal draw around moments of
#: the targets, per device), with the same values, instead of holding 8 bytes per device.
CACHE_DEVICES = 2**20
#: Devices per block of instances that programming and aging process at once (4 MiB of
#: float32 per temporary): a block of one instance when an instance has more.
BLOCK_DEVICES = 2**20


@dataclass
class ProgrammedDevices:
    """What programming leaves on a tile for K instances (all µS or dimensionless)."""

    # (D, out, in) µS, after level quantisation; may be empty for aging when the card's drift
    # does not read it (drift_reads_targets)
    g_target: torch.Tensor
    # (K, D, out, in) µS in conductance_dtype(chip); a view of g_target expanded over K when
    # programming is exact
    g_programmed: torch.Tensor
    faults: torch.Tensor | None  # (K, D, out, in) uint8, when the card has stuck-at rates
    # per instance, the seed of its drift exponents' stream (exponent_seeds), PCM drift only
    exponent_seeds: tuple[int, ...] | None = None
    read_noise_q: torch.Tensor | None = None  # (K, D, out, in) Q_s of 1/f noise, a cache
    # (K, D, out, in) exponents to use instead of drawing them: a cache (see CACHE_DEVICES),
    # or those of a tile state saved when tiles stored them all (float16)
    drift_exponents: torch.Tensor | None = None


def exponent_seeds(seed: int, layer_index: int, instance_ids: Sequence[int]) -> tuple[int, ...]:
    """The seeds of the drift-exponent streams of instances ``instance_ids`` of a layer
    programmed with ``seed``: (seed, DRIFT_EXPONENTS, layer, k)."""
    return tuple(derive_seed(seed, Purpose.DRIFT_EXPONENTS, layer_index, k)
                 for k in instance_ids)


def conductance_dtype(chip: Chip) -> torch.dtype:
    """float16 (:data:`CONDUCTANCE_STORAGE`) for the programmed conductances of ``chip`` when
    its programming error dwarfs float16's rounding (:data:`CONDUCTANCE_ROUNDING_FRACTION`),
    else float32 (no programming error, stuck devices with an exact error-free rest, a small
    error somewhere in the target range, g_max beyond float16)."""
    cond = chip.conductance
    if 2 * cond.g_max_uS >= torch.finfo(CONDUCTANCE_STORAGE).max:
        return torch.float32
    spacing = 2.0 ** (math.floor(math.log2(2 * cond.g_max_uS)) - 10)  # µS, float16's ulp there
    targets = torch.linspace(cond.g_min_uS, cond.g_max_uS, 1025)
    smallest = float(programming_error_std(chip, targets).min())
    if smallest * CONDUCTANCE_ROUNDING_FRACTION >= spacing / math.sqrt(12):
        return CONDUCTANCE_STORAGE
    return torch.float32


def drift_reads_targets(chip: Chip) -> bool:
    """Whether aging reads the target conductances: RRAM relaxation's spread around them, or
    PCM drift exponents drawn around moments of them."""
    return isinstance(chip.drift, RramRelaxation | PcmPowerLawDrift)


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


def programming_error_std(chip: Chip, g_target: torch.Tensor) -> torch.Tensor:
    """The std (µS) of the programming error at target conductances (µS), of either law."""
    law, cond = chip.programming, chip.conductance
    if isinstance(law, GaussianProgrammingNoise):  # two independent normals
        additive = law.additive_std * (cond.g_max_uS - cond.g_min_uS)
        return torch.hypot(torch.full_like(g_target, additive), g_target * law.multiplicative_std)
    return _programming_std(chip, g_target)


def program_devices(
    chip: Chip, w_normalised: torch.Tensor, generators: Sequence[torch.Generator],
    exponent_seeds: Sequence[int] | None = None,
) -> ProgrammedDevices:
    """Program one chip instance per generator: programming error, then stuck devices.

    Args:
        chip: the card.
        w_normalised: (out, in) weights in units of the tile's max|W|.
        generators: one per instance; instance k draws only from ``generators[k]``, in the
            order programming error, faults.
        exponent_seeds: per instance, the seed of its drift exponents' stream
            (:func:`exponent_seeds`); needed for a card with PCM drift.
    """
    return program_targets(chip, target_conductances(chip, w_normalised), generators,
                           exponent_seeds)


def instance_blocks(instances: int, devices_per_instance: int) -> list[slice]:
    """Consecutive blocks of ``instances`` with at most :data:`BLOCK_DEVICES` devices each
    (at least one instance per block)."""
    size = max(1, BLOCK_DEVICES // max(devices_per_instance, 1))
    return [slice(a, min(a + size, instances)) for a in range(0, instances, size)]


def program_targets(
    chip: Chip, g_target: torch.Tensor, generators: Sequence[torch.Generator],
    exponent_seeds: Sequence[int] | None = None,
) -> ProgrammedDevices:
    """Program target conductances (D, out, in) µS on one chip instance per generator (what a
    lab's array does with exported targets); see :func:`program_devices`.

    Runs on blocks of instances (:func:`instance_blocks`). Without programming error and
    stuck devices every instance holds the targets: ``g_programmed`` is then a view of them,
    with no copy per instance; otherwise it is stored in :func:`conductance_dtype`.

    Raises:
        StateError: a card with PCM drift and no ``exponent_seeds`` (one per instance).
    """
    cond, faults_card = chip.conductance, chip.faults
    generators = list(generators)
    if isinstance(chip.drift, PcmPowerLawDrift) and (
            exponent_seeds is None or len(exponent_seeds) != len(generators)):
        raise StateError(f"programming {len(generators)} instances on a card with PCM drift "
                         "needs one drift-exponent seed per instance (exponent_seeds)")
    shape = (len(generators), *g_target.shape)  # (K, D, out, in)
    blocks = instance_blocks(len(generators), g_target.numel())
    stuck = faults_card.stuck_low_fraction > 0 or faults_card.stuck_high_fraction > 0
    exact = isinstance(chip.programming, NoProgrammingNoise) and not stuck
    # One pass per draw (programming error, faults): each generator still draws in that
    # order, and one pass's temporaries are gone before the next allocates.
    g = g_target.expand(shape) if exact else torch.empty(shape, dtype=conductance_dtype(chip))
    if not exact:
        for block in blocks:
            g[block] = _programming_error(chip, g_target, generators[block])
    faults = None
    if stuck:
        faults = torch.empty(shape, dtype=torch.uint8)
        for block in blocks:
            faults[block] = conductance.draw_stuck_faults(
                (block.stop - block.start, *g_target.shape), faults_card.stuck_low_fraction,
                faults_card.stuck_high_fraction, generators[block])
            g[block] = conductance.apply_stuck_faults(g[block], faults[block], cond.g_min_uS,
                                                      cond.g_max_uS)
    seeds = tuple(exponent_seeds) if isinstance(chip.drift, PcmPowerLawDrift) else None
    return ProgrammedDevices(g_target=g_target, g_programmed=g, faults=faults,
                             exponent_seeds=seeds)


def drift_exponents(chip: Chip, g_target: torch.Tensor, seeds: Sequence[int]) -> torch.Tensor:
    """The drift exponents ν (B, D, out, in) of instances whose streams have ``seeds``, for
    target conductances (D, out, in) µS: ν = |μ_ν(g_T) + σ_ν(g_T)·z|·scale, z ~ N(0, 1) in
    that order from each instance's stream (:func:`analogsim.physics.pcm.draw_drift_exponents`).
    The same seeds give the same exponents, so aging redraws them instead of storing them."""
    drift = chip.drift
    mean, std = pcm.drift_exponent_moments(
        g_target, chip.conductance.g_max_uS, drift.mean_slope, drift.mean_offset,
        (drift.mean_min, drift.mean_max), drift.std_slope, drift.std_offset,
        (drift.std_min, drift.std_max), drift.g_rel_min,
    )
    shape = (len(seeds), *g_target.shape)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    return pcm.draw_drift_exponents(mean.expand(shape), std.expand(shape), drift.scale,
                                    generators)


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
    """Conductances (K, D, out, in) µS, float32, at ``t_inference`` s after programming.

    Applies drift (exponents redrawn from their streams, :func:`drift_exponents`, unless the
    devices carry stored ones) or relaxation, then the accumulated read noise at that time,
    then re-forces stuck devices, on blocks of instances (:func:`instance_blocks`). Instance k
    draws only from ``generators[k]``. Returns the programmed conductances themselves (in
    float32) when nothing applies.
    """
    cond, drift, read = chip.conductance, chip.drift, chip.read_noise
    generators = list(generators)
    g = devices.g_programmed
    power_law = isinstance(drift, PcmPowerLawDrift) and t_inference > 0
    if power_law and devices.drift_exponents is None and (
            devices.exponent_seeds is None or not devices.g_target.numel()):
        raise StateError("this tile was programmed without drift exponents (a card "
                         "without pcm_power_law drift); program it again")
    relaxation = isinstance(drift, RramRelaxation)
    one_over_f = isinstance(read, PcmOneOverFReadNoise)
    if not (power_law or relaxation or one_over_f or devices.faults is not None):
        return g.float()
    if relaxation:
        if not devices.g_target.numel():
            raise StateError("aging by relaxation needs the target conductances")
        variance = rram.relaxation_variance(
            devices.g_target, t_inference, drift.times_s, drift.coefficients_uS,
            cond.g_max_uS, drift.reference_g_max_uS,
        ).mul_(drift.scale**2)
        extra_std = rram.relaxation_std(variance, _programming_std(chip, devices.g_target))
        del variance
    cached = g[0].numel() <= CACHE_DEVICES
    if power_law and devices.drift_exponents is None and cached:
        devices.drift_exponents = drift_exponents(chip, devices.g_target, devices.exponent_seeds)
    if one_over_f:
        factor = pcm.read_noise_time_factor(t_inference, read.t0_s, read.t_read_s)
        if devices.read_noise_q is None and cached:
            devices.read_noise_q = relative_read_noise(chip, g.float())
    blocks = instance_blocks(g.shape[0], g[0].numel())
    aged = torch.empty(g.shape, dtype=torch.float32) if len(blocks) > 1 else None
    for block in blocks:
        block_generators = generators[block]
        g_programmed = g_b = g[block].float()
        if power_law:
            exponents = (devices.drift_exponents[block].to(torch.float32, copy=True)
                         if devices.drift_exponents is not None
                         else drift_exponents(chip, devices.g_target,
                                              devices.exponent_seeds[block]))
            g_b = _power_law_drift(g_b, exponents,
                                   math.log((t_inference + drift.t0_s) / drift.t0_s))
            del exponents
        elif relaxation:
            g_b = rram.add_relaxation(g_b, extra_std, block_generators)
        if one_over_f:
            # |g(t)| · Q_s · factor, in that order (|g Q| = |g| Q: Q ≥ 0)
            std = (torch.mul(devices.read_noise_q[block], g_b) if devices.read_noise_q
                   is not None else relative_read_noise(chip, g_programmed).mul_(g_b))
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
    place on ``exponents`` (float32, which it overwrites), the exponential one instance at a
    time (see :func:`_each_instance`)."""
    drifted = exponents.mul_(-log_ratio)
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
    :data:`CACHE_DEVICES` devices per instance.
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
