"""The programmed state: from a tile's conductances to the weights its MVM sees.

Programming draws the one-shot device state of K chip instances (:mod:`.device_model`); drift
ages it; a lab may replace it by measured conductances. Each time, the conductances
(K, D, out, rows) µS are read out into normalised weights (K, out, rows) — decoded first when
the card codes weights — and, for conductance-proportional per-read noise, the conductance
square weights Q. This module holds those read-outs and the checks on conductances a user
hands in; the tile keeps the state itself as buffers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from analogsim.cards import Chip
from analogsim.errors import ConversionError, DataError, ShapeError
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


#: Largest value of a set of measured conductances that still looks like siemens rather than
#: µS: a device's conductance is µS to tens of µS, so values that all stay below 1 nS are in
#: the wrong unit.
SIEMENS_LIMIT = 1e-3


def check_conductances(values: np.ndarray | torch.Tensor, source: str, column: str,
                       where: Callable[[int], str], empty_allowed: bool = False) -> None:
    """Refuse measured conductances (µS) no chip gives: the one check shared by the device fit
    (:mod:`analogsim.hardware.measurements`) and the read-back of a chip
    (:mod:`analogsim.hardware.chip_exchange`, :meth:`AnalogTile.load_measured`).

    Every value must be a finite number ≥ 0 µS, and not all of them below
    :data:`SIEMENS_LIMIT` (siemens instead of µS).

    Args:
        values: the conductances, any shape.
        source: the file (or thing) they come from, first in the message.
        column: which of its columns or datasets, e.g. ``"column 'target_uS'"``.
        where: the location of the i-th value (flat index), e.g. ``"line 12"``.
        empty_allowed: NaN marks an empty cell (a device without later reads): skipped.

    Raises:
        DataError: naming the source, the column, the place and the value, and the fix.
    """
    flat = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values,
                      dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(flat)
    if empty_allowed:
        bad &= ~np.isnan(flat)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{source}: {where(i)}, {column}: the value is {flat[i]}; every "
                        "conductance must be a finite number in µS")
    finite = flat[np.isfinite(flat)]
    if finite.size and finite.min() < 0:
        i = int(np.nanargmin(flat))
        raise DataError(f"{source}: {where(i)}, {column}: negative conductance {flat[i]:g} µS; "
                        "conductances are ≥ 0 µS (check the sign of the readout and any "
                        "baseline subtraction, or drop the row)")
    if finite.size and 0 < finite.max() < SIEMENS_LIMIT:
        raise DataError(f"{source}: {column} tops out at {finite.max():.3g}, which looks like "
                        "siemens; multiply by 1e6 to give µS")


def check_measured(g: torch.Tensor, expected: tuple[int, ...], layer_index: int) -> None:
    """Refuse measured conductances of the wrong shape, or that :func:`check_conductances`
    refuses (not finite, negative, in siemens)."""
    if tuple(g.shape) != expected:
        raise ShapeError(f"layer {layer_index}: measured conductances of shape "
                         f"{tuple(g.shape)}; expected {expected} (instances, devices per "
                         "weight, outputs, rows)")
    check_conductances(g, f"layer {layer_index}", "measured conductances",
                       lambda i: f"index {tuple(int(n) for n in np.unravel_index(i, expected))}"
                                 " (instance, device, output, row)")


def or_empty(tensor: torch.Tensor | None) -> torch.Tensor:
    """A buffer value: the tensor, or an empty one for None."""
    return torch.empty(0) if tensor is None else tensor


def or_none(tensor: torch.Tensor) -> torch.Tensor | None:
    """A buffer read back: None for an empty tensor."""
    return tensor if tensor.numel() else None
