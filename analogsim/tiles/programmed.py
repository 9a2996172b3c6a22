"""The programmed state: from a tile's conductances to the weights its MVM sees.

Programming draws the one-shot device state of K chip instances (:mod:`.device_model`); drift
ages it; a lab may replace it by measured conductances. Each time, the conductances
(K, D, out, rows) µS are read out into normalised weights (K, out, rows) — decoded first when
the card codes weights — and, for conductance-proportional per-read noise, the conductance
square weights Q. This module holds those read-outs and the checks on conductances a user
hands in; the tile keeps the state itself as buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from analogsim.cards import Chip
from analogsim.errors import ConversionError, ShapeError
from analogsim.tiles import coding, device_model
from analogsim.tiles.layout import TileLayout

#: Buffers of a tile that hold its programmed state. Their shapes depend on K, so loading a
#: state_dict resizes them first.
STATE_BUFFERS = (
    "instance_ids",
    "program_seed",
    "t_inference",
    "g_target",
    "g_programmed",
    "drift_exponents",
    "faults",
    "weight_scale",
    "w_effective",
    "q_effective",
    "compensation_reference",
    "compensation_factor",
    "coding_sign",
    "coding_large",
    "coding_lower",
    "coding_upper",
)


@dataclass
class EffectiveWeights:
    """What the MVM sees of a set of conductances.

    Attributes:
        w: (K, out, rows) normalised weights.
        q: (K, out, rows) conductance-square weights, or None without multiplicative
            per-read noise (and for coded tiles).
        compensation_reference: the drift-compensation reference a coded tile records at its
            first read (mean |x̂| per instance, (K, 1)); None when unchanged.
    """

    w: torch.Tensor
    q: torch.Tensor | None
    compensation_reference: torch.Tensor | None = None


def effective_weights(chip: Chip, layout: TileLayout, g: torch.Tensor,
                      coded: coding.CodedWeights | None, weight_scale: torch.Tensor,
                      compensation_reference: torch.Tensor) -> EffectiveWeights:
    """Read conductances g (K, D, out, rows) µS (a coded tile's cells: (K, D, 1, N)) out.

    Drift compensation of a coded tile rescales the cells' reads (before the decoding, which
    is not linear) by one factor per instance: mean |x̂| when programmed over mean |x̂| now,
    measured exactly; the first read sets the reference.

    Args:
        chip: the card.
        layout: the tile layout.
        g: the conductances.
        coded: the tile's coded side information (:func:`coding.stored_layout`), or None.
        weight_scale: (chunks, out) max|W| of each tile.
        compensation_reference: the coded tile's reference so far (empty before the first
            read).
    """
    if coded is None:
        q = (device_model.conductance_square_weights(chip, g)
             if chip.per_read_noise.multiplicative_std > 0 else None)
        return EffectiveWeights(device_model.read_weights(chip, g), q)
    x_hat = device_model.read_weights(chip, g)[:, 0]  # (K, N)
    new_reference = None
    if chip.drift_compensation.method != "none":
        level = x_hat.abs().mean(dim=-1, keepdim=True)
        if not compensation_reference.numel():
            compensation_reference = new_reference = level
        x_hat = x_hat * (compensation_reference / level)
    w_hat = coding.decode(coded, coding.average_reads(coded, x_hat),
                          chip.coding.clamp_magnitude)
    return EffectiveWeights(w_hat / layout.expand_rows(weight_scale), None, new_reference)


def check_finite(tensor: torch.Tensor, what: str) -> None:
    """Refuse NaN or infinite values in a tensor to be programmed (``what`` names it)."""
    if not torch.isfinite(tensor).all():
        bad = (~torch.isfinite(tensor)).sum().item()
        raise ConversionError(
            f"the {what} has {bad} NaN or infinite values; a chip can only "
            f"be programmed with finite weights"
        )


def check_measured(g: torch.Tensor, expected: tuple[int, ...], layer_index: int) -> None:
    """Refuse measured conductances of the wrong shape or with NaN/inf values."""
    if tuple(g.shape) != expected:
        raise ShapeError(f"layer {layer_index}: measured conductances of shape "
                         f"{tuple(g.shape)}; expected {expected} (instances, devices per "
                         "weight, outputs, rows)")
    check_finite(g, "measured conductances")


def or_empty(tensor: torch.Tensor | None) -> torch.Tensor:
    """A buffer value: the tensor, or an empty one for None."""
    return torch.empty(0) if tensor is None else tensor


def or_none(tensor: torch.Tensor) -> torch.Tensor | None:
    """A buffer read back: None for an empty tensor."""
    return tensor if tensor.numel() else None
