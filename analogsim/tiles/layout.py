"""Layout: how a layer's weight matrix is cut into physical tiles.

A weight matrix (out, rows) is cut into *row chunks* of at most ``mapping.tile_rows`` inputs
(whole input channels for a convolution, so a kernel never straddles two tiles) and into
*column groups* of at most ``mapping.tile_cols`` outputs. Each (row chunk, column group) is one
physical tile with its own max|W| scale, DAC input scaling, ADC and drift-compensation factor.
Partial outputs of row chunks are summed digitally after their ADCs, as aihwkit's
TileModuleArray does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from analogsim.cards import TileMapping
from analogsim.errors import ConversionError


def range_index(ranges: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """Index i of the range [a_i, b_i) each position falls in, for consecutive ranges."""
    sizes = torch.tensor([b - a for a, b in ranges])
    return torch.repeat_interleave(torch.arange(len(sizes)), sizes)


@dataclass(frozen=True, eq=False)
class TileLayout:
    """Which tile holds which row and which output of a weight matrix (out, rows).

    Attributes:
        out_features: outputs of the layer.
        in_channels: input channels per group (inputs, for a Linear).
        kernel_elements: elements of one kernel (1 for a Linear); rows = in_channels × this.
        weight_scaling: ``"tile"`` (one max|W| per tile) or ``"column"`` (one per output).
        channel_chunks: [start, stop) input channels of each row chunk.
        row_chunks: [start, stop) weight-matrix rows of each row chunk.
        column_groups: [start, stop) outputs of each column group.
    """

    out_features: int
    in_channels: int
    kernel_elements: int
    weight_scaling: str
    channel_chunks: tuple[tuple[int, int], ...]
    row_chunks: tuple[tuple[int, int], ...]
    column_groups: tuple[tuple[int, int], ...]
    #: row chunk of each row, (rows,): the forward expands per-chunk values over rows each call
    chunk_of_row: torch.Tensor = field(init=False, repr=False)

    @classmethod
    def from_mapping(cls, mapping: TileMapping, out_features: int, in_channels: int,
                     kernel_elements: int = 1) -> TileLayout:
        """The layout of a (out_features, in_channels × kernel_elements) matrix on tiles of
        ``mapping``'s size."""
        if kernel_elements > mapping.tile_rows:
            raise ConversionError(
                f"a kernel of {kernel_elements} elements does not fit a tile of "
                f"mapping.tile_rows = {mapping.tile_rows} rows; use a card with larger tiles"
            )
        per_chunk = mapping.tile_rows // kernel_elements
        channel_chunks = tuple((s, min(s + per_chunk, in_channels))
                               for s in range(0, in_channels, per_chunk))
        row_chunks = tuple((a * kernel_elements, b * kernel_elements) for a, b in channel_chunks)
        column_groups = tuple((s, min(s + mapping.tile_cols, out_features))
                              for s in range(0, out_features, mapping.tile_cols))
        return cls(out_features, in_channels, kernel_elements, mapping.weight_scaling,
                   channel_chunks, row_chunks, column_groups)

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunk_of_row", range_index(self.row_chunks))

    @property
    def rows(self) -> int:
        """Rows of the weight matrix: in_channels × kernel_elements."""
        return self.in_channels * self.kernel_elements

    @property
    def tile_count(self) -> int:
        """Physical tiles (row chunks × column groups) the layer occupies."""
        return len(self.row_chunks) * len(self.column_groups)

    def tile_of_row(self) -> torch.Tensor:
        """Row chunk (physical tile, along the inputs) of each weight-matrix row; (rows,)."""
        return self.chunk_of_row

    def tile_of_output(self) -> torch.Tensor:
        """Column group (physical tile, along the outputs) of each output; (out,)."""
        return range_index(self.column_groups)

    def weight_scales(self, weight: torch.Tensor) -> torch.Tensor:
        """max|W| per (row chunk, output), per tile or per column; (chunks, out).

        A tile whose weights are all zero gets scale 1.
        """
        magnitude = weight.detach().abs()
        scales = torch.stack([magnitude[:, a:b].amax(dim=1) for a, b in self.row_chunks])
        if self.weight_scaling == "tile":
            for a, b in self.column_groups:
                scales[:, a:b] = scales[:, a:b].amax(dim=1, keepdim=True)
        return torch.where(scales > 0, scales, torch.ones_like(scales))

    def expand_rows(self, per_chunk: torch.Tensor) -> torch.Tensor:
        """(..., chunks, out) → (..., out, rows): each row takes its chunk's value."""
        if len(self.row_chunks) == 1:
            return per_chunk.transpose(-1, -2)  # (..., out, 1) broadcasts over the rows
        return per_chunk[..., self.chunk_of_row, :].transpose(-1, -2)
