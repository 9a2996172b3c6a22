"""Wire resistance of a tile's crossbars: the conductances its MVM sees after IR drop.

With ``wires.segment_resistance_ohm`` = r > 0 each physical tile of the layout (a row chunk ×
a column group, :mod:`.layout`) is its own crossbar, one per device of a pair (g⁺ and g⁻ each
have their own drop). Its conductances G (µS) are replaced, once per read (programming, drift,
measured conductances) or, for a live tile, once per forward, by the effective conductances of
:func:`analogsim.physics.ir_drop.effective_conductances`, G / (1 + δ). Everything downstream —
the normalised weights (g⁺ − g⁻)/(g_max − g_min), the drift-compensation read-out, the
conductance-square weights of per-read noise — works on them. The correction is therefore
multiplicative per device: each device's conductance is scaled by 1 / (1 + δ) before the
weights are read out of the conductances; a single device's mid-range reference is subtracted
as an ideal current (its reference column has no drop).

Placement on a crossbar: input row i of the chunk is crossbar row i (the drivers sit before
output 0 of the group), output j of the group is crossbar column j (the ADCs after the chunk's
last row). A partly filled tile is its used block in the corner next to the drivers and ADCs;
its unused cells conduct nothing. Each weight slice of a card with weight slicing (rows o·m + j
of the sliced (out·m, rows) matrix, :mod:`.slicing`) is its own copy of the crossbars, corrected
on its own. Without [wires], or with r = 0, nothing here runs; with r > 0 a read holds one more
conductance tensor (K, D, out, rows) while it runs, and no buffer is added to the tile.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from analogsim.cards import Chip
from analogsim.physics import conductance, ir_drop
from analogsim.tiles import device_model
from analogsim.tiles.layout import TileLayout

#: r·G is dimensionless: conductances in µS go with resistances in MΩ.
OHM_TO_MEGAOHM = 1e-6


def has_wires(chip: Chip) -> bool:
    """Whether ``chip``'s wires have resistance (the MVM sees IR drop): a [wires] section
    with a resistance above 0."""
    return chip.wires is not None and chip.wires.segment_resistance_ohm > 0


def conductances_seen(chip: Chip, layout: TileLayout, g: torch.Tensor) -> torch.Tensor:
    """The conductances (K, D, out, rows) µS the MVM sees: ``g`` itself without wire
    resistance, else each physical tile's effective conductances after IR drop.

    Conductances shared by every instance (an expanded view, exact programming) are
    corrected once and shared again.
    """
    if not has_wires(chip):
        return g
    if g.shape[-2] != layout.out_features:
        return each_slice(lambda part: conductances_seen(chip, layout, part), g, layout)
    if g.shape[0] > 1 and g.stride(0) == 0:
        return conductances_seen(chip, layout, g[:1]).expand(g.shape)
    r = chip.wires.segment_resistance_ohm * OHM_TO_MEGAOHM
    seen = torch.empty(g.shape, dtype=g.dtype, device=g.device)
    tile_devices = g.shape[1] * extent(layout.column_groups) * extent(layout.row_chunks)
    # blocks of instances, so the model's temporaries stay those of device_model's blocks
    for block in device_model.instance_blocks(g.shape[0], tile_devices):
        for a, b in layout.row_chunks:
            for c, d in layout.column_groups:
                crossbar = g[block, :, c:d, a:b].transpose(-1, -2)  # (k, D, rows, cols)
                seen[block, :, c:d, a:b] = ir_drop.effective_conductances(
                    crossbar, r).transpose(-1, -2)
    return seen


def each_slice(seen: Callable[[torch.Tensor], torch.Tensor], sliced: torch.Tensor,
               layout: TileLayout) -> torch.Tensor:
    """``seen`` applied to each weight slice of ``sliced`` (..., out·m, rows) on its own
    (slice j: rows o·m + j, :mod:`.slicing`), the results put back in place."""
    m = sliced.shape[-2] // layout.out_features
    return torch.stack([seen(sliced[..., j::m, :]) for j in range(m)], dim=-2).flatten(-3, -2)


def extent(ranges: tuple[tuple[int, int], ...]) -> int:
    """The largest of [start, stop) ranges: a physical tile's rows or columns."""
    return max(stop - start for start, stop in ranges)


def weights_seen(chip: Chip, layout: TileLayout, w_normalised: torch.Tensor) -> torch.Tensor:
    """Normalised weights (K, out, rows) as the MVM of a live tile sees them: mapped onto
    conductances (without levels, so gradients pass), corrected for IR drop per tile and read
    back; ``w_normalised`` itself without wire resistance. Differentiable."""
    if not has_wires(chip):
        return w_normalised
    if w_normalised.shape[-2] != layout.out_features:
        return each_slice(lambda part: weights_seen(chip, layout, part), w_normalised, layout)
    cond = chip.conductance
    g = conductance.weights_to_conductances(w_normalised, cond.g_min_uS, cond.g_max_uS,
                                            cond.pair)  # (D, K, out, rows)
    r = chip.wires.segment_resistance_ohm * OHM_TO_MEGAOHM
    tiles = []
    for a, b in layout.row_chunks:
        columns = [ir_drop.effective_conductances(g[..., c:d, a:b].transpose(-1, -2), r)
                   for c, d in layout.column_groups]
        tiles.append(torch.cat(columns, dim=-1).transpose(-1, -2))
    seen = torch.cat(tiles, dim=-1).movedim(0, -3)  # (K, D, out, rows)
    return conductance.conductances_to_weights(seen, cond.g_min_uS, cond.g_max_uS, cond.pair)
