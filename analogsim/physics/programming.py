"""One-shot programming error, drawn once per device when a chip instance is programmed."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from analogsim.physics.sampling import Generators, standard_normal


def polynomial(x: torch.Tensor, coefficients: Sequence[float]) -> torch.Tensor:
    """Σ_i c_i x^i, evaluated by Horner's rule (in place on one result tensor)."""
    result = torch.full_like(x, float(coefficients[-1]))
    for c in reversed(coefficients[:-1]):
        result.mul_(x).add_(c)
    return result


def polynomial_programming_std(
    g_target: torch.Tensor, coefficients: Sequence[float], g_max: float, reference_g_max: float
) -> torch.Tensor:
    """Programming-noise std (µS) as a polynomial of the normalised target.

    σ_prog = (g_max / g_ref) · Σ_i c_i (g_T / g_max)^i, floored at 0 — aihwkit
    ``PCMLikeNoiseModel`` (c = [0.26348, 1.9650, −1.1731] µS at g_ref = 25 µS, Nandakumar 2019)
    and ``ReRamWan2022NoiseModel`` (4th order, g_ref = 40 µS, Wan et al. 2022).

    Args:
        g_target: target conductances, µS.
        coefficients: c_0, c_1, …, µS at ``reference_g_max``.
        g_max, reference_g_max: µS.
    """
    std = polynomial(g_target / g_max, coefficients).mul_(g_max / reference_g_max)
    return std.clamp_(min=0.0)


def add_polynomial_programming_noise(
    g_target: torch.Tensor,
    coefficients: Sequence[float],
    g_max: float,
    reference_g_max: float,
    scale: float,
    generators: Generators,
) -> torch.Tensor:
    """g_prog = max(g_T + scale · σ_prog(g_T) · N(0, 1), 0), µS (aihwkit pcm.py).

    Evaluated in place on the draws (two temporaries the size of ``g_target``); each product
    and sum is the one of the formula, so the values are its own bit for bit.
    """
    std = polynomial_programming_std(g_target, coefficients, g_max, reference_g_max)
    noise = standard_normal(g_target.shape, generators, g_target.dtype)
    return noise.mul_(std.mul_(scale)).add_(g_target).clamp_(min=0.0)


def add_gaussian_programming_noise(
    g_target: torch.Tensor,
    additive_std: float,
    multiplicative_std: float,
    g_min: float,
    g_max: float,
    generators: Generators,
) -> torch.Tensor:
    """g_prog = g_T + (g_max − g_min)·σ_a·N(0, 1) + g_T·σ_m·N(0, 1), µS; two independent draws.

    The CrossSim generic devices (simulator/devices/generic_device.py): NormalIndependentDevice
    and NormalProportionalDevice on the normalised conductance. No clamping: an abstract device.
    """
    shape, dtype = g_target.shape, g_target.dtype
    additive = standard_normal(shape, generators, dtype).mul_(additive_std * (g_max - g_min))
    relative = standard_normal(shape, generators, dtype).mul_(multiplicative_std)
    return additive.add_(g_target).add_(relative.mul_(g_target))  # (g_T + a) + g_T·r
