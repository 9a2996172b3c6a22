"""Bit slicing: inputs applied over several cycles, weights held on several device pairs.

The card's ``[slicing]`` section (:class:`analogsim.cards.Slicing`); docs/bit_slicing.md
derives the output noise. Without it (or with one that slices nothing) none of this runs.

*Input slicing.* A DAC of b bits gives integer codes c ∈ [−L, L], L = 2^(b−1) − 1. The
magnitude |c| = Σ_i d_i·2^(e_i) is cut into n = ⌈(b − 1)/s⌉ digits of s bits, least significant
first; when s does not divide b − 1 the least significant digit holds the r = b − 1 − s·(n − 1)
remaining bits (e_i = max(0, b − 1 − s·(n − i)), so the most significant cycles use their whole
range). Cycle i drives the rows with sgn(c)·d_i at the full scale of an s-bit slice DAC:
u_i = sgn(c)·d_i·L/(2^s − 1) in the b-bit DAC's code units (a digit 2^s − 1 is a full-scale
input). Each cycle is its own read (per-read and output noise drawn afresh) and its own ADC
conversion A_i; the digital periphery adds Σ_i a_i·A_i with a_i = 2^(e_i)·(2^s − 1)/L, so that
Σ_i a_i·u_i = c exactly.

*Weight slicing.* A weight normalised by its tile's max|W|, w ∈ [−1, 1], is quantised to
Q = round(|w|·Λ), Λ = 2^(p·m) − 1, and cut into m digits q_j ∈ [0, 2^p − 1] of p bits; slice j
holds sgn(w)·q_j/(2^p − 1) on its own differential pair (2^p levels per device), so
programming noise, drift, read noise and faults act on every slice's devices on their own.
Each slice's columns are converted on their own (an ADC conversion per slice, the standard
digital shift-and-add, not an analog combination of the columns); the periphery adds
Σ_j v_j·A_j with v_j = 2^(p·j)·(2^p − 1)/Λ, so that Σ_j v_j·q_j/(2^p − 1) = Q/Λ.

Layout: a weight-sliced matrix is (out·m, rows) with slice j of output o in row o·m + j
(interleaved, so a grouped convolution keeps each output's slices in its group); each slice
is its own copy of the tile's crossbars (:mod:`.wires` corrects each for IR drop on its own).
Input slices ride in the batch: (K·B, ...) inputs become (K·n·B, ...), instance-major, so K
instances and instance folding work unchanged. Slices are extra tensor dimensions; the only
Python loops run over the slices of a crossbar (:mod:`.wires`), never over elements.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from analogsim.cards import Chip
from analogsim.physics import periphery
from analogsim.physics.sampling import Generators, normal, standard_normal
from analogsim.tiles.converters import Converters
from analogsim.tiles.mvm_ops import ConvOps, MvmOps
from analogsim.tiles.noise import ReadNoise


@dataclass(frozen=True)
class Slices:
    """The slicing of one card.

    Attributes:
        input_bits: s, magnitude bits of the DAC code per cycle (None: one cycle).
        input_slices: n = ⌈(dac.bits − 1)/s⌉ cycles (1 without input slicing).
        code_limit: L = 2^(dac.bits − 1) − 1, the largest DAC code (None without input
            slicing).
        weight_bits: p, magnitude bits per weight slice (None without weight slicing).
        weight_slices: m, device pairs per weight (1 without weight slicing).
    """

    input_bits: int | None
    input_slices: int
    code_limit: int | None
    weight_bits: int | None
    weight_slices: int

    @classmethod
    def from_chip(cls, chip: Chip) -> Slices | None:
        """The slicing of ``chip``'s ``[slicing]`` section; None when it slices nothing (no
        section, or one cycle and one slice): the unsliced code paths then run untouched."""
        section = chip.slicing
        if section is None:
            return None
        s, n, limit = section.input_bits_per_slice, 1, None
        if s is not None:
            n = math.ceil((chip.dac.bits - 1) / s)
            limit = periphery.code_limit(chip.dac.bits)
        if n == 1:  # the whole code in one cycle: u_0 = c, a_0 = 1
            s, limit = None, None
        m = section.weight_slices
        if n == 1 and m == 1:
            return None
        return cls(s, n, limit, section.bits_per_weight_slice if m > 1 else None, m)

    @property
    def input_exponents(self) -> tuple[int, ...]:
        """e_i, the place of cycle i's least significant bit in |c|: max(0, b − 1 − s·(n − i))
        (the least significant cycle holds the bits left over)."""
        if self.input_bits is None:
            return (0,)
        magnitude_bits = self.code_limit.bit_length()  # b − 1
        return tuple(max(0, magnitude_bits - self.input_bits * (self.input_slices - i))
                     for i in range(self.input_slices))

    @property
    def input_weights(self) -> tuple[float, ...]:
        """a_i = 2^(e_i)·(2^s − 1)/L, the shift of cycle i's converted partial sums."""
        if self.input_bits is None:
            return (1.0,)
        top = 2**self.input_bits - 1
        return tuple(2.0**e * top / self.code_limit for e in self.input_exponents)

    @property
    def weight_weights(self) -> tuple[float, ...]:
        """v_j = 2^(p·j)·(2^p − 1)/Λ, the shift of weight slice j's converted columns."""
        if self.weight_bits is None:
            return (1.0,)
        p, top = self.weight_bits, 2**self.weight_bits - 1
        levels = 2 ** (p * self.weight_slices) - 1
        return tuple(2.0 ** (p * j) * top / levels for j in range(self.weight_slices))

    @property
    def conversions(self) -> int:
        """ADC conversions per output per MVM: n cycles × m weight slices."""
        return self.input_slices * self.weight_slices

    # ------------------------------------------------------------------------ inputs

    def input_cycles(self, codes: torch.Tensor, k_count: int) -> torch.Tensor:
        """DAC codes (K·B, ...) → the inputs of the n cycles, (K·n·B, ...), instance-major,
        in DAC code units: u_i = sgn(c)·d_i·L/(2^s − 1). Gradients reach ``codes`` straight
        through (Σ_i a_i·u_i = c)."""
        if self.input_bits is None:
            return codes
        n, s = self.input_slices, self.input_bits
        per_instance = codes.detach().unflatten(0, (k_count, -1)).unsqueeze(1)  # (K, 1, B, ...)
        places = (*self.input_exponents, self.code_limit.bit_length())
        shape = (1, n, *[1] * (per_instance.dim() - 2))
        shifts = codes.new_tensor([2.0**e for e in places[:-1]]).view(shape)
        widths = codes.new_tensor([2.0 ** (b - a) for a, b in itertools.pairwise(places)])
        digits = torch.floor(per_instance.abs() / shifts).remainder_(widths.view(shape))
        cycles = digits.mul_(torch.sign(per_instance) * (self.code_limit / (2**s - 1)))
        if codes.requires_grad:
            through = (codes - codes.detach()) / sum(self.input_weights)
            cycles = cycles + through.unflatten(0, (k_count, -1)).unsqueeze(1)
        return cycles.flatten(0, 2)

    # ------------------------------------------------------------------------ weights

    def weight_cells(self, w: torch.Tensor) -> torch.Tensor:
        """Normalised weights (..., out, rows) → what each slice's pair holds,
        (..., out·m, rows): sgn(w)·q_j/(2^p − 1) in row o·m + j. Gradients reach ``w``
        straight through (Σ_j v_j·cell_j = Q/Λ ≈ w)."""
        if self.weight_bits is None:
            return w
        m, p = self.weight_slices, self.weight_bits
        levels = 2.0 ** (p * m) - 1
        level = torch.round(w.detach().abs() * levels).clamp_(0, levels).unsqueeze(-2)
        shifts = w.new_tensor([2.0 ** (p * j) for j in range(m)]).view(m, 1)
        digits = torch.floor(level / shifts).remainder_(2.0**p)  # (..., out, m, rows)
        cells = digits.mul_(torch.sign(w.detach()).unsqueeze(-2) / (2**p - 1))
        if w.requires_grad:
            cells = cells + (w - w.detach()).unsqueeze(-2)
        return cells.flatten(-3, -2)

    def decoded(self, cells: torch.Tensor) -> torch.Tensor:
        """Sliced weights (..., out·m, rows) → the weights they decode to, (..., out, rows):
        Σ_j v_j·cell_j."""
        if self.weight_bits is None:
            return cells
        v = cells.new_tensor(self.weight_weights)
        return torch.tensordot(cells.unflatten(-2, (-1, self.weight_slices)), v,
                               dims=([cells.dim() - 1], [0]))

    # ------------------------------------------------------------------------ forward

    def converted(self, codes: torch.Tensor, matrix: torch.Tensor, q: torch.Tensor | None,
                  ops: MvmOps, channels: tuple[int, int], converters: Converters,
                  noise: ReadNoise, generators: list[torch.Generator]) -> torch.Tensor:
        """The ADC codes of one row chunk, shifted and added over the slices.

        Every (cycle, weight slice) is read with its own per-read and output noise and
        converted by the ADC on its own; the converted codes are added with the weights a_i
        and v_j.

        Args:
            codes: DAC codes (K·B, ...), instance-folded.
            matrix: (K, out·m, rows_j) map from DAC codes to ADC codes.
            q: (K, out·m, rows_j) conductance-square weights, or None.
            ops: the layer type's MVM operations.
            channels: the chunk's input channels [c0, c1).
            converters: DAC and ADC constants.
            noise: the noise drawn at every read.
            generators: one per instance.

        Returns:
            Combined ADC codes (K·B, ..., out), in ADC steps.
        """
        k_count = matrix.shape[0]
        inputs = self.input_cycles(codes, k_count)
        columns = ops if self.weight_bits is None else SliceColumns(ops, self.weight_slices)
        std = noise.output_std(inputs, q, columns, *channels, converters.input_step,
                               converters.output_step)
        y = ops.mvm(inputs, matrix)
        if isinstance(std, float):
            y = y + normal(y.shape, std, generators, y.dtype)
        elif std is not None:
            y = y + standard_normal(y.shape, generators, y.dtype).mul_(std)
        return self.combined(converters.adc_codes(y, in_place=True), k_count, ops)

    def combined(self, y: torch.Tensor, k_count: int, ops: MvmOps) -> torch.Tensor:
        """Converted codes of every cycle and slice, (K·n·B, ..., out·m) → Σ_i Σ_j a_i v_j
        A_ij, (K·B, ..., out)."""
        if self.input_bits is not None:
            a = y.new_tensor(self.input_weights)
            y = torch.tensordot(y.unflatten(0, (k_count, self.input_slices, -1)), a,
                                dims=([1], [0])).flatten(0, 1)
        if self.weight_bits is not None:
            dim = feature_dim(ops, y)
            v = y.new_tensor(self.weight_weights)
            y = torch.tensordot(y.unflatten(dim, (-1, self.weight_slices)), v,
                                dims=([dim + 1], [0]))
        return y

    def readout(self, chip: Chip, converters: Converters, noise: ReadNoise, w: torch.Tensor,
                q: torch.Tensor | None, generators: Generators) -> torch.Tensor:
        """The drift-compensation read-out of one row chunk, through the slices.

        The full-scale read-out input (its DAC code cut into cycles) drives the one-hot
        vectors or the all-ones vector; with ``readout_noise`` each (cycle, slice) gets its
        own per-read and output noise and ADC conversion, as in :meth:`converted`.

        Args:
            chip: the card ([drift_compensation], [adc]).
            converters: the DAC's full-scale input and step.
            noise: the noise drawn at every read.
            w: (K, out·m, rows_j) normalised (sliced) weights the MVM sees.
            q: (K, out·m, rows_j) conductance-square weights, or None.
            generators: one per instance.

        Returns:
            (K, out, r) read-outs in full-scale device currents: r = rows_j one-hot inputs,
            or 1 all-ones input.
        """
        comp = chip.drift_compensation
        levels = self.readout_levels(converters).to(w.dtype)  # (n,)
        inputs = 1
        if comp.readout == "ones":
            inputs, w = w.shape[-1], w.sum(dim=-1, keepdim=True)
            q = None if q is None else q.sum(dim=-1, keepdim=True)
        per_cycle = levels.view(1, -1, 1, 1)
        y = w.unsqueeze(1) * per_cycle  # (K, n, out·m, r)
        if comp.readout_noise:
            variance = noise.output_variance + noise.additive_variance * inputs * per_cycle**2
            if q is not None:
                variance = variance + noise.multiplicative_variance * q.unsqueeze(1) * per_cycle**2
            y = standard_normal(y.shape, generators, y.dtype).mul_(variance.sqrt()).add_(y)
            if chip.adc.bits is not None:
                y = periphery.quantise(y, chip.adc.bits, chip.adc.bound)
        y = torch.tensordot(y, y.new_tensor(self.input_weights), dims=([1], [0]))
        return self.decoded(y)

    def readout_levels(self, converters: Converters) -> torch.Tensor:
        """(n,) the read-out's input in each cycle, in scaled-input units: the full-scale
        input's code c cut into cycles (u_i·step), or the full-scale input itself."""
        level = converters.full_scale_input
        if self.input_bits is None:
            return torch.tensor([level], dtype=torch.float64)
        code = torch.tensor([round(level / converters.input_step)], dtype=torch.float64)
        return self.input_cycles(code, 1) * converters.input_step


class SliceColumns:
    """A layer type's MVM operations on a weight-sliced matrix (out·m columns): the input
    square sums of a grouped convolution, one per output, repeated for each output's m
    slices (row o·m + j); everything else as ``ops`` does it."""

    def __init__(self, ops: MvmOps, weight_slices: int) -> None:
        self.ops, self.weight_slices = ops, weight_slices

    def __getattr__(self, name: str) -> object:
        return getattr(self.ops, name)

    def square_sum(self, x_squared: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        sums = self.ops.square_sum(x_squared, start, stop)
        dim = feature_dim(self.ops, sums)
        return sums if sums.shape[dim] == 1 else sums.repeat_interleave(self.weight_slices, dim)


def feature_dim(ops: MvmOps, y: torch.Tensor) -> int:
    """The dimension of ``y`` holding the output features: 1 for a convolution's
    (N, C, ...), the last for a Linear's (..., out)."""
    return 1 if isinstance(ops, ConvOps) else y.dim() - 1


def sliced_weights(slices: Slices | None, w: torch.Tensor) -> torch.Tensor:
    """What the devices hold for normalised weights (..., out, rows): the weight slices
    (:meth:`Slices.weight_cells`), or ``w`` itself without weight slicing."""
    return w if slices is None else slices.weight_cells(w)


def weight_slice_count(chip: Chip) -> int:
    """m: device pairs (or devices) per weight for ``chip``'s slicing (1 without)."""
    slices = Slices.from_chip(chip)
    return 1 if slices is None else slices.weight_slices


def cycle_count(chip: Chip) -> int:
    """n: cycles (reads and conversions) per MVM for ``chip``'s input slicing (1 without)."""
    slices = Slices.from_chip(chip)
    return 1 if slices is None else slices.input_slices
