"""Weights ↔ conductances: differential-pair and single-device mapping, levels, faults.

Mapping follows aihwkit's ``SinglePairConductanceConverter`` (src/aihwkit/inference/converter/
conductance.py): a weight normalised by the tile's max|W| into [−1, 1] is split into
g⁺ = g_min + clamp(w, 0, 1)·(g_max − g_min) and g⁻ = g_min + clamp(−w, 0, 1)·(g_max − g_min),
and read back as w = (g⁺ − g⁻)/(g_max − g_min). A single device stores w around mid-range:
g = g_min + (w + 1)/2 · (g_max − g_min), read back as w = 2(g − g_min)/(g_max − g_min) − 1.
"""

from __future__ import annotations

import torch

from analogsim.physics.sampling import Generators, uniform

STUCK_NONE, STUCK_LOW, STUCK_HIGH = 0, 1, 2


def weights_to_conductances(
    w_normalised: torch.Tensor, g_min: float, g_max: float, pair: str
) -> torch.Tensor:
    """Target conductances for normalised weights.

    Args:
        w_normalised: weights in units of the tile's max|W|, in [−1, 1]; shape (out, in).
        g_min, g_max: device range, µS.
        pair: ``"differential"`` (two devices per weight) or ``"single"``.

    Returns:
        Conductances in µS, shape (D, out, in) with D = 2 (g⁺, g⁻) or 1.
    """
    span = g_max - g_min
    if pair == "differential":
        return torch.stack([w_normalised.clamp(0, 1), (-w_normalised).clamp(0, 1)]) * span + g_min
    return ((w_normalised.clamp(-1, 1) + 1) * (span / 2) + g_min).unsqueeze(0)


def conductances_to_weights(g: torch.Tensor, g_min: float, g_max: float, pair: str) -> torch.Tensor:
    """Normalised weights read back from conductances (µS).

    Shape: (..., D, out, in) → (..., out, in).
    """
    span = g_max - g_min
    if pair == "differential":
        return torch.sub(g[..., 0, :, :], g[..., 1, :, :]).div_(span)
    return (g[..., 0, :, :] - g_min).mul_(2 / span).sub_(1)


def weight_noise_gain(pair: str) -> float:
    """d w_normalised / d (g / (g_max − g_min)) for one device: 1 in a pair, 2 if single."""
    return 1.0 if pair == "differential" else 2.0


def quantise_to_levels(g: torch.Tensor, g_min: float, g_max: float, levels: int) -> torch.Tensor:
    """Round conductances (µS) to ``levels`` evenly spaced values in [g_min, g_max]."""
    step = (g_max - g_min) / (levels - 1)
    return ((g - g_min) / step).round().clamp(0, levels - 1) * step + g_min


def draw_stuck_faults(
    shape: torch.Size | tuple[int, ...],
    low_fraction: float,
    high_fraction: float,
    generators: Generators,
) -> torch.Tensor:
    """Fault map with each device independently stuck low/high with the given probabilities.

    Returns:
        uint8 tensor of ``shape``: 0 healthy, 1 stuck at g_min, 2 stuck at g_max.
    """
    u = uniform(shape, generators)
    faults = torch.zeros(shape, dtype=torch.uint8)
    faults[u < low_fraction] = STUCK_LOW
    faults[(u >= low_fraction) & (u < low_fraction + high_fraction)] = STUCK_HIGH
    return faults


def apply_stuck_faults(
    g: torch.Tensor, faults: torch.Tensor, g_min: float, g_max: float
) -> torch.Tensor:
    """Conductances (µS) with stuck devices forced to g_min or g_max (a new tensor; ``faults``
    has the shape of ``g``)."""
    g = g.masked_fill(faults == STUCK_LOW, g_min)
    return g.masked_fill_(faults == STUCK_HIGH, g_max)
