"""PCM drift and accumulated 1/f read noise (aihwkit ``PCMLikeNoiseModel``, METHODS.md §14).

Source: IBM aihwkit 1.2.0, src/aihwkit/inference/noise/pcm.py; Nandakumar et al., J. Appl.
Phys. 124, 152135 (2018); Joshi et al., Nat. Commun. 11:2473 (2020).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from analogsim.physics.sampling import Generators, standard_normal


def drift_exponent_moments(
    g_target: torch.Tensor,
    g_max: float,
    mean_slope: float,
    mean_offset: float,
    mean_range: tuple[float, float],
    std_slope: float,
    std_offset: float,
    std_range: tuple[float, float],
    g_rel_min: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the drift exponent ν for each target conductance (µS).

    μ_ν = clip(a_μ ln g_rel + b_μ, μ_lo, μ_hi), σ_ν = clip(a_σ ln g_rel + b_σ, σ_lo, σ_hi),
    g_rel = max(|g_T| / g_max, g_rel_min). aihwkit: a_μ = −0.0155, b_μ = 0.0244, [0.049, 0.1];
    a_σ = −0.0125, b_σ = −0.0059, [0.008, 0.045].
    """
    log_g = g_target.abs().div_(g_max).clamp_(min=g_rel_min).log_()
    mean = log_g.mul(mean_slope).add_(mean_offset).clamp_(*mean_range)
    std = log_g.mul_(std_slope).add_(std_offset).clamp_(*std_range)  # in place: log_g is done
    return mean, std


def draw_drift_exponents(
    mean: torch.Tensor, std: torch.Tensor, scale: float, generators: Generators
) -> torch.Tensor:
    """ν = |μ_ν + σ_ν · N(0, 1)| · scale, one per device, drawn at programming (evaluated in
    place on the draws)."""
    noise = standard_normal(mean.shape, generators, mean.dtype)
    return noise.mul_(std).add_(mean).abs_().mul_(scale)


def apply_power_law_drift(
    g_programmed: torch.Tensor,
    exponents: torch.Tensor,
    t_inference: float,
    t0: float,
    exp: Callable[[torch.Tensor], torch.Tensor] = torch.exp,
) -> torch.Tensor:
    """g(t) = g_prog · (t/t0)^(−ν) with t = t_inference + t0 (s); no drift at t_inference = 0.

    Evaluated as g_prog · exp(−ν ln(t/t0)), which is (t/t0)^(−ν) to float32 precision at a
    sixth of the cost of a tensor power; ``exp`` is the exponential to use.
    """
    if t_inference <= 0:
        return g_programmed
    return g_programmed * exp(exponents * -math.log((t_inference + t0) / t0))


def read_noise_time_factor(t_inference: float, t0: float, t_read: float) -> float:
    """sqrt(ln((t + t_read) / (2 t_read))), t = t_inference + t0: the growth of 1/f noise.

    ≈ 4.18 at t_inference = 0, 4.76 at 1 h, 5.09 at 1 day (t0 = 20 s, t_read = 250 ns).
    """
    t = t_inference + t0
    return math.sqrt(math.log((t + t_read) / (2 * t_read)))


def relative_read_noise(
    g_programmed: torch.Tensor,
    g_max: float,
    q_coefficient: float,
    q_exponent: float,
    q_floor: float,
    q_max: float,
    power: Callable[[torch.Tensor, float], torch.Tensor] = torch.pow,
) -> torch.Tensor:
    """Q_s = min(q_coefficient / max((|g_prog|/g_max)^q_exponent, q_floor), q_max).

    aihwkit evaluates Q_s on the programmed conductance, as here (its docs write g_T).
    ``power`` is the power function to use. Evaluated in place after the power (c / x is
    torch's x.reciprocal() · c either way).
    """
    q_s = power(g_programmed.abs().div_(g_max), q_exponent).clamp_(min=q_floor)
    return q_s.reciprocal_().mul_(q_coefficient).clamp_(max=q_max)


def one_over_f_read_noise_std(
    g_programmed: torch.Tensor,
    g_drifted: torch.Tensor,
    g_max: float,
    q_coefficient: float,
    q_exponent: float,
    q_floor: float,
    q_max: float,
    time_factor: float,
) -> torch.Tensor:
    """Std (µS) of the accumulated read noise: |g_drift| · Q_s(g_prog) · time_factor."""
    q_s = relative_read_noise(g_programmed, g_max, q_coefficient, q_exponent, q_floor, q_max)
    return g_drifted.abs() * q_s * time_factor


def add_read_noise(
    g: torch.Tensor, std: torch.Tensor, scale: float, generators: Generators
) -> torch.Tensor:
    """max(g + scale · std · N(0, 1), 0), µS (evaluated in place on the draws; 1 · std is std
    exactly, so scale 1 skips that product)."""
    noise = standard_normal(g.shape, generators, g.dtype)
    return noise.mul_(std if scale == 1.0 else scale * std).add_(g).clamp_(min=0.0)
