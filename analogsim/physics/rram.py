"""RRAM conductance relaxation (aihwkit ``ReRamWan2022NoiseModel``; Wan et al., Nature 2022).

aihwkit re-draws the conductance at inference time t from N(g_T, σ(t, g_T)²) with a polynomial
σ fitted at 1 s, 1 day and 2 days, and only at those times. Here relaxation is a random walk
on top of the programmed state: g(t) = g_prog + sqrt(max(σ(t)² − σ(t_p)², 0)) · N(0, 1), where
σ(t_p) is the programming spread, so the marginal law at the measured times is aihwkit's while
a device keeps its identity between programming and reading. Between measured times the
variance is interpolated linearly in log10 t; beyond them it is held.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import torch

from analogsim.physics.programming import polynomial_programming_std
from analogsim.physics.sampling import Generators, standard_normal


def relaxation_variance(
    g_target: torch.Tensor,
    t_inference: float,
    times: Sequence[float],
    coefficients: Sequence[Sequence[float]],
    g_max: float,
    reference_g_max: float,
) -> torch.Tensor:
    """Variance (µS²) of the conductance around its target at time ``t_inference`` (s)."""
    t = max(t_inference, times[0])
    if t >= times[-1]:
        std = polynomial_programming_std(g_target, coefficients[-1], g_max, reference_g_max)
        return std.square_()
    upper = bisect.bisect_right(times, t)
    lower = upper - 1
    weight = (math.log10(t) - math.log10(times[lower])) / (
        math.log10(times[upper]) - math.log10(times[lower])
    )
    std_lower = polynomial_programming_std(g_target, coefficients[lower], g_max, reference_g_max)
    std_upper = polynomial_programming_std(g_target, coefficients[upper], g_max, reference_g_max)
    return std_lower.square_().mul_(1 - weight).add_(std_upper.square_().mul_(weight))


def apply_relaxation(
    g_programmed: torch.Tensor,
    total_variance: torch.Tensor,
    programming_std: torch.Tensor,
    generators: Generators,
) -> torch.Tensor:
    """Conductance (µS) after relaxation: the programmed state plus the extra spread.

    Args:
        g_programmed: conductances after programming, µS.
        total_variance: the spread around the target reached at the read time, µS²
            (:func:`relaxation_variance`, times any scale squared).
        programming_std: the spread already drawn at programming, µS.

    The increment has variance max(total_variance − programming_std², 0)
    (:func:`relaxation_std`); the result is clamped at g ≥ 0.
    """
    return add_relaxation(g_programmed, relaxation_std(total_variance, programming_std),
                          generators)


def relaxation_std(total_variance: torch.Tensor, programming_std: torch.Tensor) -> torch.Tensor:
    """Std (µS) of the relaxation increment: sqrt(max(total_variance − programming_std², 0))."""
    # total − σ² as −σ² + total (the same IEEE sum), in the storage of σ²
    return programming_std.square().neg_().add_(total_variance).clamp_(min=0.0).sqrt_()


def add_relaxation(g_programmed: torch.Tensor, extra_std: torch.Tensor,
                   generators: Generators) -> torch.Tensor:
    """max(g_prog + extra_std · N(0, 1), 0), µS (evaluated in place on the draws)."""
    noise = standard_normal(g_programmed.shape, generators, g_programmed.dtype)
    return noise.mul_(extra_std).add_(g_programmed).clamp_(min=0.0)
