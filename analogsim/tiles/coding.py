"""Analog weight coding: how weights are written into noisy cells (S3; METHODS.md §13).

A weight w is stored as the channel value x = α·w − β ∈ [−1, 1] (what gets programmed) and
decoded after the read as ŵ = (x̂ + β)/α, so channel noise ε becomes ε/α on the weight. The
schemes are cumulative in S3 and each can be chosen on its own:

- ``none``: x = w/m with m = max|w| of the scope (a tile, the layer or the whole model);
- ``sign``: sgn(w) is kept as reliable side information and |w| ∈ [0, m] fills the whole
  range, x = 2|w|/m − 1 (α = 2/m, twice as large); the decoded magnitude is clamped at 0 so
  a sign error cannot happen;
- ``adaptive_mapping``: weights with |w| ≤ T (small) get the range of [0, T] instead of
  [0, m], so a larger α; T is the quantile that leaves ``large_fraction`` of the weights large
  (default S3's 6,998 of 11,164,352), or ``threshold`` · m; large weights map [0, m] (default)
  or [T, m] onto the range; the small/large bit is side information;
- ``redundancy``: small weights are stored in ``r_small`` cells and large ones in ``r_large``,
  the reads averaged, so the decoded noise std is σ/(α√r).

Cells are laid out as one row: ``r_small`` copies of every weight, then ``r_large − r_small``
copies of the large ones; a tile programs that row like any weight row, so every device
effect (programming noise, drift, read noise, faults, levels) acts on the coded values. Where
the cells sit on a crossbar (for IR drop) is :func:`analogsim.tiles.wires.coded_placement`.

With weight slicing (:mod:`.slicing`) every slice of a weight is coded as a weight of its own
(:func:`encode_slices`): the (out·m, rows) matrix of slice values is what the cells hold, each
slice is decoded from its own cells' reads, and the MVM converts the decoded slices and adds
them after their ADCs as without coding. The slices of a weight share its sign bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from analogsim.cards import Coding
from analogsim.errors import ConversionError, StateError
from analogsim.tiles.slicing import Slices

#: S3's large-weight count: 6,998 of the 11,164,352 weights of its ResNet-18.
PAPER_LARGE_FRACTION = 6998 / 11164352
SCHEME_PARTS = ("sign", "adaptive_mapping", "redundancy")


def scheme_parts(scheme: str) -> frozenset[str]:
    """The parts of a scheme string: ``"none"`` → {}, ``"sign+redundancy"`` → both."""
    return frozenset() if scheme == "none" else frozenset(scheme.split("+"))


def threshold(magnitudes: torch.Tensor, coding: Coding, max_abs: float) -> float:
    """T: ``coding.threshold`` · m, or the (1 − large_fraction) quantile of |w| (weight units)."""
    if coding.threshold is not None:
        return coding.threshold * max_abs
    flat = magnitudes.detach().flatten()  # an order statistic: exact in the weights' dtype
    large = round(coding.large_fraction * flat.numel())
    if large == 0:
        return max_abs
    return float(torch.kthvalue(flat, flat.numel() - large).values)


@dataclass(frozen=True)
class CodingReference:
    """The statistics a scope's α come from: m = max|w| and T, in weight units."""

    max_abs: float
    threshold: float


def coding_reference(weights: list[torch.Tensor], coding: Coding) -> CodingReference:
    """m and T over a set of weight tensors (one layer, or every layer of the model)."""
    magnitudes = torch.cat([w.detach().abs().flatten() for w in weights])
    max_abs = float(magnitudes.max()) or 1.0
    return CodingReference(max_abs, threshold(magnitudes, coding, max_abs))


@dataclass
class CodedWeights:
    """Weights as coded cells, with the side information needed to decode them.

    Attributes:
        cells: (N,) channel values in [−1, 1], the layout of the module docstring.
        sign: (out, in) ±1 side information, or None without sign protection.
        large: (out, in) bool, the small/large side information.
        lower, upper: (out, in) the magnitude range [lower, upper] (sign protection) or
            [−upper, upper] (without) that maps onto [−1, 1], in weight units.
        r_small, r_large: cells per small / large weight.
    """

    cells: torch.Tensor
    sign: torch.Tensor | None
    large: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    r_small: int
    r_large: int

    @property
    def weights(self) -> int:
        return self.large.numel()

    @property
    def copies(self) -> torch.Tensor:
        """(out, in) cells per weight."""
        return torch.where(self.large, self.r_large, self.r_small)

    @property
    def alpha(self) -> torch.Tensor:
        """(out, in) α of each weight: noise ε in the channel is ε/α on the weight."""
        span = self.upper - self.lower
        return 2.0 / span if self.sign is not None else 1.0 / self.upper


def encode(w: torch.Tensor, coding: Coding, reference: CodingReference | torch.Tensor,
           signs: torch.Tensor | None = None) -> CodedWeights:
    """Code a weight matrix into cells.

    Args:
        w: (out, in) weights.
        coding: the card's coding section.
        reference: m and T of the scope; or, for scope ``tile``, the per-weight m as an
            (out, in) tensor (T is then taken over the layer).
        signs: (out, in) ±1, the sign side information to keep (sign protection only), when
            it is not that of ``w`` (a weight slice of value 0 keeps its weight's sign);
            None: the sign of ``w``.
    """
    parts = scheme_parts(coding.scheme)
    w = w.detach().float()
    magnitude = w.abs()
    if isinstance(reference, torch.Tensor):
        max_abs = reference.float()
        t = threshold(magnitude, coding, float(max_abs.max()))
    else:
        max_abs = torch.full_like(w, reference.max_abs)
        t = reference.threshold
    t_tensor = torch.minimum(torch.full_like(w, t), max_abs)
    large = magnitude > t_tensor
    adaptive = "adaptive_mapping" in parts
    upper = torch.where(large | (not adaptive), max_abs, t_tensor)
    upper = torch.where(upper > 0, upper, torch.ones_like(upper))
    lower = torch.zeros_like(w)
    if "sign" in parts:
        if adaptive and coding.large_range == "above_threshold":
            lower = torch.where(large, t_tensor, lower)
        sign = torch.where(w < 0, -1.0, 1.0) if signs is None else signs.float()
        x = 2 * (magnitude - lower) / (upper - lower) - 1
    else:
        sign = None
        x = w / upper
    redundant = "redundancy" in parts
    r_small, r_large = (coding.r_small, coding.r_large) if redundant else (1, 1)
    x = x.clamp(-1, 1)
    cells = torch.cat([x.flatten().repeat(r_small), x[large].repeat(r_large - r_small)])
    return CodedWeights(cells, sign, large, lower, upper, r_small, r_large)


def average_reads(coded: CodedWeights, x_hat: torch.Tensor) -> torch.Tensor:
    """The mean read of each weight's cells: (..., N) → (..., out, in)."""
    shape = coded.large.shape
    n = coded.weights
    full = x_hat[..., : coded.r_small * n].unflatten(-1, (coded.r_small, *shape)).sum(dim=-3)
    extra = x_hat[..., coded.r_small * n:]
    if extra.shape[-1]:
        per_large = extra.unflatten(-1, (coded.r_large - coded.r_small, -1)).sum(dim=-2)
        full = full.clone()
        full[..., coded.large] += per_large
    return full / coded.copies


def decode(coded: CodedWeights, x_mean: torch.Tensor, clamp_magnitude: bool = True
           ) -> torch.Tensor:
    """ŵ from the mean channel reads (..., out, in), in weight units."""
    if coded.sign is None:
        return x_mean * coded.upper
    magnitude = (x_mean + 1) * ((coded.upper - coded.lower) / 2) + coded.lower
    if clamp_magnitude:
        magnitude = magnitude.clamp(min=0)
    return coded.sign * magnitude


@dataclass(frozen=True)
class CodingCost:
    """What a coding costs a layer (or a model, summed).

    Attributes:
        weights: number of weights.
        cells: number of cells (weights × copies; a cell is one differential pair or one
            device, as the card maps a weight).
        devices: number of devices (cells × devices per cell).
        side_bits: reliable side-information bits (sign and small/large per weight).
    """

    weights: int
    cells: int
    devices: int
    side_bits: int

    @property
    def r_avg(self) -> float:
        """Mean cells per weight, (r_small·N_small + r_large·N_large) / N."""
        return self.cells / self.weights

    @property
    def side_bits_per_weight(self) -> float:
        return self.side_bits / self.weights

    def __add__(self, other: CodingCost) -> CodingCost:
        return CodingCost(self.weights + other.weights, self.cells + other.cells,
                          self.devices + other.devices, self.side_bits + other.side_bits)


def uncoded_cost(weights: int, devices_per_weight: int) -> CodingCost:
    """The cost of ``weights`` weights mapped one cell each, with no side information."""
    return CodingCost(weights, weights, weights * devices_per_weight, 0)


def coding_cost(coded: CodedWeights, coding: Coding, devices: int, weight_slices: int = 1
                ) -> CodingCost:
    """The cost of coded weights stored on ``devices`` devices: one side bit per weight for
    the sign, one for the small/large split (adaptive mapping or redundancy).

    With ``weight_slices`` m > 1 the coded values are the slices (:func:`encode_slices`):
    the weights are 1/m of them, the sign bit is one per weight (its slices share it), the
    small/large bit one per slice, and every cell of every slice counts, so ``r_avg`` is m
    times the mean copies per slice.
    """
    parts = scheme_parts(coding.scheme)
    weights = coded.weights // weight_slices
    sign_bits = weights if "sign" in parts else 0
    split_bits = coded.weights if parts & {"adaptive_mapping", "redundancy"} else 0
    cells = int(coded.copies.sum())
    return CodingCost(weights, cells, devices, sign_bits + split_bits)


# ------------------------------------------------------------------------ on a tile


def encode_tile(weight: torch.Tensor, coding: Coding, scale_per_weight: torch.Tensor,
                reference: CodingReference | None, slices: Slices | None = None
                ) -> CodedWeights:
    """Code one tile's weight matrix (out, rows) into cells for ``coding.scope``.

    Args:
        weight: the digital weight matrix.
        coding: the card's coding section.
        scale_per_weight: (out, rows) max|W| of each weight's tile, m for scope ``tile``.
        reference: m and T of a model-wide scope (``global``); computed from this layer alone
            when None (scope ``layer``).
        slices: the card's bit slicing; with weight slices the slices are coded
            (:func:`encode_slices`).
    """
    if slices is not None and slices.weight_bits is not None:
        return encode_slices(weight, coding, scale_per_weight, slices, reference)
    if coding.scope == "tile":
        return encode(weight, coding, scale_per_weight)
    if reference is None:
        if coding.scope == "global":
            raise StateError("coding.scope = 'global' needs the model-wide reference: "
                             "program the model with analogsim.program")
        reference = coding_reference([weight], coding)
    return encode(weight, coding, reference)


def coded_values(weight: torch.Tensor, scale_per_weight: torch.Tensor,
                 slices: Slices | None) -> torch.Tensor:
    """What a tile codes, in weight units: its weights (out, rows), or with weight slices the
    slice matrix (out·m, rows), slice j of output o in row o·m + j, each slice value
    sgn(w)·q_j/(2^p − 1) (:meth:`Slices.weight_cells`) times its tile's max|W|
    (``scale_per_weight``, (out, rows))."""
    weight = weight.detach().float()
    if slices is None or slices.weight_bits is None:
        return weight
    scale = scale_per_weight.float().repeat_interleave(slices.weight_slices, dim=-2)
    return slices.weight_cells(weight / scale_per_weight) * scale


def global_reference(tiles_and_weights: Sequence[tuple[Any, torch.Tensor]]
                     ) -> CodingReference | None:
    """m and T over the coded values (:func:`coded_values`) of every tile coded with
    ``coding.scope = "global"``, from (tile, its weight matrix (out, rows)) pairs, as
    :func:`analogsim.program` and :func:`analogsim.cost` take them; None when no tile is.
    The one model-wide temporary of programming: 4 bytes per coded value of those tiles.

    Raises:
        ConversionError: those tiles have different ``[coding]`` sections.
    """
    scoped = [(tile, w) for tile, w in tiles_and_weights
              if tile.coded and tile.chip.coding.scope == "global"]
    if not scoped:
        return None
    codings = {tile.chip.coding for tile, _ in scoped}
    if len(codings) > 1:
        raise ConversionError("layers coded with coding.scope = 'global' must share one "
                              f"[coding] section; found {len(codings)} different ones")
    values = [coded_values(w, tile.layout.expand_rows(tile.layout.weight_scales(w)).expand_as(w),
                           tile.stage.slices) for tile, w in scoped]
    return coding_reference(values, codings.pop())


def encode_slices(weight: torch.Tensor, coding: Coding, scale_per_weight: torch.Tensor,
                  slices: Slices, reference: CodingReference | None = None) -> CodedWeights:
    """Code the weight slices of one tile's weight matrix (out, rows) into cells.

    The slice values (:func:`coded_values`) are coded as weights of the (out·m, rows) slice
    matrix: m = max|W| of the tile (scope ``tile``: the largest weight of a tile has every
    digit full), of the layer (scope ``layer``) or of the model (scope ``global``:
    ``reference``, :func:`global_reference`), T the quantile of the slice magnitudes over the
    same. The sign kept is the weight's, shared by its slices (a digit 0 of a negative weight
    decodes to a magnitude ≥ 0 of the weight's sign).

    Raises:
        StateError: ``coding.scope = "global"`` without ``reference``.
    """
    if coding.scope == "global" and reference is None:
        raise StateError("coding.scope = 'global' needs the model-wide reference: "
                         "program the model with analogsim.program")
    m = slices.weight_slices
    values = coded_values(weight, scale_per_weight, slices)
    signs = torch.where(weight.detach() < 0, -1.0, 1.0).repeat_interleave(m, dim=-2)
    if coding.scope == "tile":
        reference = scale_per_weight.float().repeat_interleave(m, dim=-2)
    elif coding.scope == "layer":
        reference = coding_reference([values], coding)
    return encode(values, coding, reference, signs)


def stored_layout(coding: Coding, sign: torch.Tensor | None, large: torch.Tensor,
                  lower: torch.Tensor, upper: torch.Tensor) -> CodedWeights:
    """The side information of a programmed coded tile, without its cells (to decode reads)."""
    redundant = "redundancy" in scheme_parts(coding.scheme)
    r_small, r_large = (coding.r_small, coding.r_large) if redundant else (1, 1)
    return CodedWeights(torch.empty(0), sign, large, lower, upper, r_small, r_large)
