"""Forward: a tile's MVM through the periphery, DAC → MVM (+ noise) → ADC → rescale.

The forward works in converter codes. A :class:`ForwardPlan` holds, per row chunk, the matrix
mapping DAC codes to ADC codes (normalised weights × input step / output step, which saves two
passes over the activations) and the factor turning ADC codes back into the layer's units
(output step × weight scale × drift compensation). A programmed tile keeps its plan across
forwards; a live (training) tile builds one per call from the digital weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from analogsim.cards import Chip
from analogsim.physics.sampling import normal, standard_normal
from analogsim.tiles import device_model, integer_mvm, wires
from analogsim.tiles.converters import Converters
from analogsim.tiles.layout import TileLayout
from analogsim.tiles.mvm_ops import DigitPlanesSource, MvmOps
from analogsim.tiles.noise import ReadNoise
from analogsim.tiles.slicing import Slices, sliced_weights


@dataclass
class ForwardPlan:
    """Tensors a forward pass needs, derived from the tile state (see :meth:`TileForward.plan`).

    Attributes:
        exact: (K, out, rows) weights when the tile has no periphery effect at all, else None.
        matrices: per row chunk, (K, out, rows_j) maps from DAC codes to ADC codes.
        q: per row chunk, (K, out, rows_j) conductance-square weights, or None.
        output_factors: per row chunk, ADC codes → layer units: a float (one instance), (K,)
            (one per instance) or (K, out).
        reused: kept across forwards (a programmed state), not built per call.
    """

    exact: torch.Tensor | None = None
    matrices: list[torch.Tensor] = field(default_factory=list)
    q: list[torch.Tensor | None] = field(default_factory=list)
    output_factors: list[torch.Tensor | float] = field(default_factory=list)
    reused: bool = False
    planes: dict[int, list[integer_mvm.DigitPlanes]] = field(default_factory=dict)

    def instance(self, k: int) -> ForwardPlan:
        """The plan of instance k alone (K = 1)."""

        def alone(value: Any) -> Any:
            return value if value is None or isinstance(value, float) else value[k:k + 1]

        return ForwardPlan(alone(self.exact), [alone(m) for m in self.matrices],
                           [alone(q) for q in self.q], [alone(f) for f in self.output_factors])

    def digit_planes(self, j: int) -> list[integer_mvm.DigitPlanes]:
        """The int8 digit planes of chunk j's matrix, one per instance, computed on first use."""
        if j not in self.planes:
            self.planes[j] = [integer_mvm.digit_planes(matrix) for matrix in self.matrices[j]]
        return self.planes[j]


def exact_without_periphery(chip: Chip) -> bool:
    """Whether ``chip``'s periphery leaves the MVM exact: no DAC, no input scaling, no ADC,
    no noise at a read, no wire resistance, no bit slicing."""
    return (
        chip.dac.bits is None
        and chip.dac.input_scaling == "none"
        and chip.adc.bits is None
        and chip.output_noise.std == 0
        and chip.per_read_noise.additive_std == 0
        and chip.per_read_noise.multiplicative_std == 0
        and not wires.has_wires(chip)
        and Slices.from_chip(chip) is None
    )


@dataclass(frozen=True)
class TileForward:
    """The forward stage of one tile: layout, converters and per-read noise wired together.

    Attributes:
        layout: the tile layout.
        converters: DAC and ADC constants.
        noise: the noise drawn at every read.
        exact: the periphery leaves the MVM exact (see :func:`exact_without_periphery`).
        integer_products: DAC codes may be multiplied as exact int8 products where it pays.
        slices: the card's bit slicing (:mod:`.slicing`), or None.
    """

    layout: TileLayout
    converters: Converters
    noise: ReadNoise
    exact: bool
    integer_products: bool
    slices: Slices | None = None

    def plan(self, w_n: torch.Tensor, q: torch.Tensor | None, factor: torch.Tensor
             ) -> ForwardPlan:
        """What a forward needs from the tile state, computed once per state.

        Args:
            w_n: (K, out, rows) normalised weights.
            q: (K, out, rows) conductance-square weights, or None.
            factor: (K, chunks, out) weight scale times compensation factor.
        """
        chunks = self.layout.row_chunks
        if self.exact:
            return ForwardPlan(exact=w_n * self.layout.expand_rows(factor))
        gain = self.converters.input_step / self.converters.output_step
        single = len(chunks) == 1
        matrices = [w_n * gain if single else w_n[:, :, a:b] * gain for a, b in chunks]
        q_chunks = [None if q is None else q if single else q[:, :, a:b] for a, b in chunks]
        factor = factor * self.converters.output_step
        outputs: list[torch.Tensor | float] = []
        for j in range(len(chunks)):
            per_output = factor[:, j]
            if not bool((per_output == per_output[:, :1]).all()):
                outputs.append(per_output)  # (K, out)
            elif per_output.shape[0] == 1:
                outputs.append(float(per_output[0, 0]))
            else:
                outputs.append(per_output[:, 0])  # (K,)
        return ForwardPlan(matrices=matrices, q=q_chunks, output_factors=outputs)

    def programmed_plan(self, w_effective: torch.Tensor, q_effective: torch.Tensor | None,
                        weight_scale: torch.Tensor, compensation_factor: torch.Tensor
                        ) -> ForwardPlan:
        """The plan of a programmed state, kept across forwards until the state changes.

        Args:
            w_effective: (K, out, rows) normalised weights the MVM sees.
            q_effective: (K, out, rows) conductance-square weights, or None.
            weight_scale: (chunks, out) max|W| of each tile.
            compensation_factor: (K, chunks, out) drift compensation.
        """
        # normal tensors even when built under inference_mode: a later forward with autograd
        # on uses the same plan
        with torch.inference_mode(False), torch.no_grad():
            plan = self.plan(w_effective, q_effective,
                             weight_scale.unsqueeze(0) * compensation_factor)
        plan.reused = True
        return plan

    def live_plan(self, chip: Chip, weight: torch.Tensor) -> ForwardPlan:
        """The plan of a live (training-mode or unprogrammed) tile: the digital weight (out,
        rows), normalised per tile, as one instance, as the crossbars see it (IR drop with wire
        resistance, :mod:`.wires`); conductance-square weights from its target conductances
        when the card has multiplicative per-read noise."""
        scale = self.layout.weight_scales(weight)
        w_n = wires.weights_seen(chip, self.layout, sliced_weights(
            self.slices, (weight / self.layout.expand_rows(scale)).unsqueeze(0)))
        q = None
        if chip.per_read_noise.multiplicative_std > 0:
            g = device_model.target_conductances(chip, w_n[0].detach())
            q = device_model.conductance_square_weights(chip, g.unsqueeze(0))
        return self.plan(w_n, q, scale.unsqueeze(0))

    def run(self, x: torch.Tensor, plan: ForwardPlan, ops: MvmOps,
            generators: list[torch.Generator], bias: torch.Tensor | None,
            input_range: torch.Tensor | None = None) -> torch.Tensor:
        """y = tile(x) + bias for the plan's instances; instance k draws from generators[k].

        ``input_range`` is the layer's calibrated range r (0-d, in the layer's input units),
        used with ``input_scaling = "calibrated"`` by every instance and row chunk alike.
        """
        if plan.exact is not None:
            return ops.mvm(x, plan.exact, bias)
        k_count = plan.matrices[0].shape[0]
        if k_count > 1 and not ops.batches_instances:
            return torch.cat([
                self._run_instances(x_k, plan.instance(k), ops, generators[k:k + 1], bias,
                                    input_range)
                for k, x_k in enumerate(x.chunk(k_count))])
        return self._run_instances(x, plan, ops, generators, bias, input_range)

    def _run_instances(self, x: torch.Tensor, plan: ForwardPlan, ops: MvmOps,
                       generators: list[torch.Generator], bias: torch.Tensor | None,
                       input_range: torch.Tensor | None) -> torch.Tensor:
        """Every row chunk of the plan's instances, summed after the ADCs."""
        last = len(self.layout.row_chunks) - 1
        outputs = [
            self._chunk(x, plan, ops, j, generators, bias if j == last else None, input_range)
            for j in range(last + 1)
        ]
        if any(y.requires_grad for y in outputs):
            return sum(outputs[1:], outputs[0])
        total = outputs[0]  # a fresh tensor: summed into in place, in the same order
        for y in outputs[1:]:
            total.add_(y)
        return total

    def _chunk(self, x: torch.Tensor, plan: ForwardPlan, ops: MvmOps, j: int,
               generators: list[torch.Generator], bias: torch.Tensor | None,
               input_range: torch.Tensor | None) -> torch.Tensor:
        """Output of row chunk j: DAC → MVM (+ per-read and output noise) → ADC → rescale.

        Inputs are divided by (their scale ·) the DAC step and rounded, the plan's matrix maps
        them to ADC codes, and one multiply(-add with the bias) by the plan's output factor and
        the scale (max|x| per vector, or the calibrated range) brings the result back to the
        layer's units.
        """
        converters = self.converters
        c0, c1 = self.layout.channel_chunks[j]
        x_j = ops.input_chunk(x, c0, c1)
        input_scale = converters.input_scale(x_j, ops.vector_dims(x_j), input_range)
        codes = converters.dac_codes(x_j, input_scale)
        if self.slices is not None:  # every cycle and weight slice read and converted
            y = self.slices.converted(codes, plan.matrices[j], plan.q[j], ops, (c0, c1),
                                      converters, self.noise, generators)
            return rescaled(y, plan.output_factors[j], input_scale, bias, ops)
        noise_std = self.noise.output_std(codes, plan.q[j], ops, c0, c1, converters.input_step,
                                          converters.output_step)
        matrix = plan.matrices[j]
        # y will be fresh: update it in place when autograd is off
        owned = not (torch.is_grad_enabled() and (codes.requires_grad or matrix.requires_grad))
        # With no noise between the MVM and the ADC, the ADC's clipping comes first: clamping
        # to the integer ±limit before rounding equals clamping after it.
        clip = converters.adc_limit if noise_std is None and owned else None
        planes: DigitPlanesSource | None = None
        if owned and plan.reused and converters.int8_codes and self.integer_products:
            planes = lambda: plan.digit_planes(j)  # noqa: E731
        y = ops.mvm(codes, matrix, clip=clip, digit_planes=planes)
        if noise_std is not None:
            if isinstance(noise_std, float):  # the std applied in the draw: one pass fewer
                noise = normal(y.shape, noise_std, generators, y.dtype)
            else:
                noise = standard_normal(y.shape, generators, y.dtype).mul_(noise_std)
            y = y.add_(noise) if owned else y + noise
        y = y.round_() if clip is not None else converters.adc_codes(y, in_place=owned)
        factor = plan.output_factors[j]
        in_place = owned and not (bias is not None and bias.requires_grad and
                                  torch.is_grad_enabled())  # autograd: no out= results
        if isinstance(factor, float) or factor.dim() == 1:  # per instance: fold it with max|x|
            multiplier = per_instance(factor, input_scale, y)
            if not in_place:
                if bias is None:
                    return y * multiplier
                if isinstance(multiplier, float):  # addcmul takes tensors only
                    return torch.add(bias, y, alpha=multiplier)
                return torch.addcmul(bias, y, multiplier)
            return scale_and_shift_(y, multiplier, bias)
        same_type = all(t is None or t.dtype == y.dtype for t in (factor, input_scale, bias))
        if in_place and same_type and y.is_contiguous():  # the same products, no new tensors
            y = ops.scale_outputs(y, factor, in_place=True)
            if input_scale is not None:
                y.mul_(input_scale)
            return y if bias is None else y.add_(bias)
        y = ops.scale_outputs(y, factor)
        if input_scale is not None:
            y = y * input_scale
        return y if bias is None else y + bias


def rescaled(y: torch.Tensor, factor: torch.Tensor | float, input_scale: torch.Tensor | None,
             bias: torch.Tensor | None, ops: MvmOps) -> torch.Tensor:
    """ADC codes y → the layer's units: times the plan's output factor and the input scale,
    plus the bias; new tensors (the tail of :meth:`TileForward._chunk` without its in-place
    fast paths)."""
    if isinstance(factor, float) or factor.dim() == 1:
        y = y * per_instance(factor, input_scale, y)
    else:
        y = ops.scale_outputs(y, factor)
        if input_scale is not None:
            y = y * input_scale
    return y if bias is None else y + bias


def per_instance(values: torch.Tensor | float, input_scale: torch.Tensor | None,
                 y: torch.Tensor) -> torch.Tensor | float:
    """Multiplier broadcastable to y: values[k] for instance k's samples, times the input
    scale (max|x| of each vector, or one 0-d calibrated range)."""
    if isinstance(values, float):
        return values if input_scale is None else input_scale * values
    if input_scale is not None and input_scale.dim() == 0:  # one range for every vector
        values, input_scale = values * input_scale, None
    k_count = values.numel()
    template = input_scale if input_scale is not None else y.new_ones(
        (y.shape[0],) + (1,) * (y.dim() - 1))
    return (template.reshape(k_count, -1) * values.view(k_count, 1)).reshape(template.shape)


def scale_and_shift_(y: torch.Tensor, multiplier: torch.Tensor | float,
                     bias: torch.Tensor | None) -> torch.Tensor:
    """y ← y · multiplier + bias, in place and in one pass over y.

    ``multiplier`` is a float or varies over leading dimensions of y only; ``bias`` broadcasts
    over y's trailing dimensions. The pass runs on a (rows, columns) view of y with the bias
    laid out as one row: on CPU a 4-d broadcast of a per-sample multiplier and a per-channel
    bias takes three times as long as this row-wise form.
    """
    if bias is None:
        return y.mul_(multiplier)
    if y.dim() == 2 and bias.dim() == 1:  # already rows: a Linear's (N, out)
        if isinstance(multiplier, float):
            return torch.add(bias, y, alpha=multiplier, out=y)
        return torch.addcmul(bias, y, multiplier, out=y)
    lead = y.dim() - bias.dim()
    per_row = isinstance(multiplier, float) or all(n == 1 for n in multiplier.shape[lead:])
    if not (per_row and y.is_contiguous()):
        return torch.addcmul(bias, y, torch.as_tensor(multiplier), out=y)
    rows = y.view(math.prod(y.shape[:lead]), -1)
    bias_row = bias.expand(y.shape[lead:]).reshape(-1)
    if isinstance(multiplier, float):
        torch.add(bias_row, rows, alpha=multiplier, out=rows)
    else:  # one value per row; a multiplier constant over some leading dimensions (one per
        # sample of a (N, T, out) Linear output, or one 0-d range) is spread over them first
        per_rows = multiplier.expand(*y.shape[:lead], *[1] * (y.dim() - lead))
        torch.addcmul(bias_row, rows, per_rows.reshape(-1, 1), out=rows)
    return y
