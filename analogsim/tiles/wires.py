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

A coded tile (:mod:`.coding`) keeps its cells as one row (K, D, 1, N); :func:`coded_placement`
puts them on the same crossbars, as a designer would lay them out for an MVM: weight (o, i)'s
cells sit in output o's column, in a bundle of adjacent rows all driven by input i (so the
copies of redundancy add their currents on the column, as :mod:`.cost` prices them). The
bundle of input i holds ``r_small`` rows, plus ``r_large − r_small`` rows when any weight of
input i in the tile is large; copy t of a weight is in row t of its bundle, and the extra rows'
cells of small weights are left unused (no conductance). Bundles follow the inputs, input a of
chunk [a, b) nearest the drivers' far end as without coding, so a crossbar holds the tile's
inputs on r_small·(b − a) rows and more, not ``mapping.tile_rows``. The sign and small/large
side bits are digital and not on the crossbar. With one cell per weight this is the uncoded
placement, cell for cell. Each cell's conductance is corrected to G / (1 + δ) on its crossbar,
and the tile decodes from those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from analogsim.cards import Chip
from analogsim.physics import conductance, ir_drop
from analogsim.tiles import coding, device_model
from analogsim.tiles.layout import TileLayout

#: r·G is dimensionless: conductances in µS go with resistances in MΩ.
OHM_TO_MEGAOHM = 1e-6


def has_wires(chip: Chip) -> bool:
    """Whether ``chip``'s wires have resistance (the MVM sees IR drop): a [wires] section
    with a resistance above 0."""
    return chip.wires is not None and chip.wires.segment_resistance_ohm > 0


def conductances_seen(chip: Chip, layout: TileLayout, g: torch.Tensor,
                      coded: coding.CodedWeights | None = None) -> torch.Tensor:
    """The conductances (K, D, out, rows) µS the MVM sees: ``g`` itself without wire
    resistance, else each physical tile's effective conductances after IR drop.

    Conductances shared by every instance (an expanded view, exact programming) are
    corrected once and shared again. A coded tile's cells (K, D, 1, N), with its side
    information ``coded``, are corrected where :func:`coded_placement` puts them.
    """
    if not has_wires(chip):
        return g
    if coded is not None:
        return coded_cells_seen(chip, layout, g, coded)
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


# ------------------------------------------------------------------------ coded cells


@dataclass(frozen=True)
class CrossbarCells:
    """The coded cells on one crossbar (:func:`coded_placement`).

    Attributes:
        cells: (C,) indices of the cells in the tile's row of N cells.
        positions: (C,) their places on the crossbar, row · cols + column (row 0 farthest
            from the ADCs, column 0 nearest the drivers).
        rows, cols: the crossbar's size, cells.
    """

    cells: torch.Tensor
    positions: torch.Tensor
    rows: int
    cols: int


def coded_placement(layout: TileLayout, large: torch.Tensor, r_small: int, r_large: int
                    ) -> list[CrossbarCells]:
    """Where a coded tile's cells sit: one crossbar per row chunk × column group (× weight
    slice), laid out as the module docstring says.

    The cells row holds copy t < r_small of coded weight (q, i) at t·n + q·rows + i (n the
    number of coded weights) and extra copy u < r_large − r_small of the l-th large one (in
    row-major order) at r_small·n + u·L + l (L large weights): :func:`coding.encode`.

    Args:
        layout: the tile layout.
        large: (out·m, rows) bool, the small/large side information (m weight slices; slice
            j of output o in row o·m + j).
        r_small, r_large: cells per small / large weight.
    """
    coded_rows, rows = large.shape
    m, n, extra = coded_rows // layout.out_features, large.numel(), r_large - r_small
    rank = large.flatten().long().cumsum(0).view(large.shape) - 1  # l of each large weight
    count = int(large.sum())
    crossbars = []
    for j in range(m):
        for a, b in layout.row_chunks:
            for c, d in layout.column_groups:
                q = torch.arange(c, d) * m + j  # the coded rows of the group's outputs
                sub = large[q, a:b]  # (cols, chunk rows)
                bundle = r_small + extra * sub.any(dim=0).long()  # crossbar rows per input
                start = bundle.cumsum(0) - bundle
                cols, inputs = d - c, torch.arange(a, b)
                copies = torch.arange(r_small).view(-1, 1, 1)
                cells = [copies * n + q.view(1, -1, 1) * rows + inputs.view(1, 1, -1)]
                positions = [(start.view(1, 1, -1) + copies) * cols
                             + torch.arange(cols).view(1, -1, 1)]
                column, offset = sub.nonzero(as_tuple=True)
                if extra and column.numel():
                    more = torch.arange(extra).view(-1, 1)
                    cells.append(r_small * n + more * count + rank[q[column], a + offset])
                    positions.append((start[offset] + r_small + more) * cols + column)
                crossbars.append(CrossbarCells(
                    torch.cat([t.flatten() for t in cells]),
                    torch.cat([t.flatten() for t in positions]), int(bundle.sum()), cols))
    return crossbars


def coded_cells_seen(chip: Chip, layout: TileLayout, g: torch.Tensor,
                     coded: coding.CodedWeights) -> torch.Tensor:
    """A coded tile's cells (K, D, 1, N) µS as the crossbars' MVM sees them: each crossbar of
    :func:`coded_placement` filled with its cells (unused places 0 µS), corrected to
    G / (1 + δ) and read back into the row."""
    if g.shape[0] > 1 and g.stride(0) == 0:
        return coded_cells_seen(chip, layout, g[:1], coded).expand(g.shape)
    r = chip.wires.segment_resistance_ohm * OHM_TO_MEGAOHM
    placement = coded_placement(layout, coded.large, coded.r_small, coded.r_large)
    seen = torch.empty(g.shape, dtype=g.dtype, device=g.device)
    largest = max(bar.rows * bar.cols for bar in placement)
    for block in device_model.instance_blocks(g.shape[0], g.shape[1] * largest):
        cells = g[block, :, 0]  # (k, D, N)
        for bar in placement:
            crossbar = cells.new_zeros((*cells.shape[:-1], bar.rows * bar.cols))
            crossbar[..., bar.positions] = cells[..., bar.cells]
            corrected = ir_drop.effective_conductances(
                crossbar.unflatten(-1, (bar.rows, bar.cols)), r).flatten(-2)
            seen[block, :, 0, bar.cells] = corrected[..., bar.positions]
    return seen
