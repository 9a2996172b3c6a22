"""The programmed state: from a tile's conductances to the weights its MVM sees.

Programming draws the one-shot device state of K chip instances (:mod:`.device_model`); drift
ages it; a lab may replace it by measured conductances. Each time, the conductances
(K, D, out, rows) µS are read out into normalised weights (K, out, rows) — decoded first when
the card codes weights — and, for conductance-proportional per-read noise, the conductance
square weights Q. This module holds those read-outs, the packing of target conductances and
the checks on conductances a user hands in; the tile keeps the state itself as buffers.

What a programmed tile keeps per weight (``docs/memory.md`` has it measured per card; the
formula is :func:`analogsim.memory.layer_state_bytes`): the targets once, packed to one float32
per weight (:func:`pack_targets`); per instance the conductances (float16 or float32 per
device, :func:`device_model.conductance_dtype`; a view of the targets when programming is
exact), the stuck-device map (uint8 per device, with faults), the weights the MVM sees (float32)
and, with multiplicative per-read noise, their conductance-square weights (float32). PCM drift
exponents are redrawn at every drift from their streams; ``drift_exponents`` holds them only as
the cache of a small layer (:data:`device_model.CACHE_DEVICES`) or in a state saved when tiles
stored them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from analogsim.cards import Chip, chip_from_toml
from analogsim.errors import ConversionError, DataError, ShapeError, StateError
from analogsim.tiles import coding, device_model
from analogsim.tiles.layout import TileLayout

#: Buffers of a tile that hold its programmed state. Their shapes depend on K, so loading a
#: state_dict resizes them first.
STATE_BUFFERS = (
    "instance_ids",
    "program_seed",
    "t_inference",
    "g_target_packed",
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

    With weight slicing the weights are (K, out·m, rows), the slices; a coded tile decodes
    each slice from its cells (:func:`coding.encode_slices`).

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
    scale = layout.expand_rows(weight_scale)
    if w_hat.shape[-2] != layout.out_features:  # coded weight slices, rows o·m + j
        scale = scale.repeat_interleave(w_hat.shape[-2] // layout.out_features, dim=-2)
    return EffectiveWeights(w_hat / scale, None, new_reference)


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


def check_measured(g: torch.Tensor, chip: Chip, instances: int, packed: torch.Tensor,
                   layer_index: int) -> None:
    """Refuse measured conductances of another shape than ``instances`` × the targets
    (``packed``, :func:`pack_targets`), or that :func:`check_conductances` refuses (not
    finite, negative, in siemens)."""
    expected = (instances, *target_shape(chip, packed))
    if tuple(g.shape) != expected:
        raise ShapeError(f"layer {layer_index}: measured conductances of shape "
                         f"{tuple(g.shape)}; expected {expected} (instances, devices per "
                         "weight, outputs, rows)")
    check_conductances(g, f"layer {layer_index}", "measured conductances",
                       lambda i: f"index {tuple(int(n) for n in np.unravel_index(i, expected))}"
                                 " (instance, device, output, row)")


def devices_per_weight(chip: Chip) -> int:
    """D: 2 devices per weight (or cell) in a differential pair, 1 single."""
    return 2 if chip.conductance.pair == "differential" else 1


def pack_targets(chip: Chip, g_target: torch.Tensor) -> torch.Tensor:
    """Target conductances (D, out, rows) µS packed into one value per weight (out, rows).

    A differential pair's targets put one device at g_min (g± = clamp(±w, 0, 1)·(g_max −
    g_min) + g_min, on the card's levels), so a pair packs into its other device: +g⁺ where
    g⁻ = g_min, −g⁻ where g⁺ = g_min. :func:`unpack_targets` gives back the same values bit
    for bit. A single device is kept as it is.

    Raises:
        StateError: a pair with neither device at g_min (not targets of a weight).
    """
    if devices_per_weight(chip) == 1:
        return g_target[0]
    g_min = chip.conductance.g_min_uS
    plus, minus = g_target
    idle_minus = minus == g_min
    if not (idle_minus | (plus == g_min)).all():
        raise StateError(f"target conductances with neither device of a pair at g_min = "
                         f"{g_min:g} µS cannot be packed; they are not the targets of weights")
    return torch.where(idle_minus, plus, -minus)


def unpack_targets(chip: Chip, packed: torch.Tensor) -> torch.Tensor:
    """The target conductances (D, out, rows) µS of packed targets (:func:`pack_targets`)."""
    if devices_per_weight(chip) == 1:
        return packed.unsqueeze(0)
    g_min = chip.conductance.g_min_uS
    minus_side = packed < 0
    return torch.stack([torch.where(minus_side, g_min, packed),
                        torch.where(minus_side, -packed, g_min)])


def target_shape(chip: Chip, packed: torch.Tensor) -> tuple[int, ...]:
    """(D, out, rows): the shape of the targets packed in ``packed``."""
    return (devices_per_weight(chip), *packed.shape)


def stored_devices(tile: torch.nn.Module) -> device_model.ProgrammedDevices:
    """The programmed devices a tile's buffers hold, to age them; the targets are unpacked
    only when the card's drift reads them (:func:`device_model.drift_reads_targets`). PCM
    drift exponents come from their streams' seeds, or from ``drift_exponents`` (a small
    layer's cache, or a state saved when tiles stored them all)."""
    targets = (unpack_targets(tile.chip, tile.g_target_packed)
               if device_model.drift_reads_targets(tile.chip) else torch.empty(0))
    seeds = device_model.exponent_seeds(int(tile.program_seed), tile.layer_index,
                                        tile.instance_ids.tolist())
    return device_model.ProgrammedDevices(targets, tile.g_programmed, or_none(tile.faults),
                                          seeds, tile.read_noise_q,
                                          or_none(tile.drift_exponents))


def upgrade_saved_state(state_dict: dict[str, Any], prefix: str) -> None:
    """Read a tile state saved before targets were packed: its ``g_target`` (D, out, rows)
    becomes ``g_target_packed`` (the tile's card, in its saved extra state, says how)."""
    old = state_dict.pop(prefix + "g_target", None)
    if old is None or prefix + "g_target_packed" in state_dict:
        return
    if old.numel():
        extra = state_dict.get(prefix + "_extra_state")
        if extra is None:
            raise StateError(f"{prefix}g_target (saved before targets were packed) needs the "
                             "tile's card, which the state dict lacks; load the whole tile")
        old = pack_targets(chip_from_toml(extra["chip"], "saved tile state"), old)
    state_dict[prefix + "g_target_packed"] = old


def or_empty(tensor: torch.Tensor | None) -> torch.Tensor:
    """A buffer value: the tensor, or an empty one for None."""
    return torch.empty(0) if tensor is None else tensor


def or_none(tensor: torch.Tensor) -> torch.Tensor | None:
    """A buffer read back: None for an empty tensor."""
    return tensor if tensor.numel() else None


def drift_exponents_of(tile: torch.nn.Module) -> torch.Tensor | None:
    """The PCM drift exponents ν (K, D, out, rows), float32, of a programmed tile: those
    ``drift_exponents`` holds (a small layer's cache, or a state saved when tiles stored them
    all), else redrawn from their streams, as :meth:`drift` does; None for a card without PCM
    drift."""
    devices = stored_devices(tile)
    if devices.drift_exponents is not None:
        return devices.drift_exponents.float()
    if devices.exponent_seeds is None:
        return None
    return device_model.drift_exponents(tile.chip, devices.g_target, devices.exponent_seeds)
