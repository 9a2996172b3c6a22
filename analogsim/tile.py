"""The analog tile: programmed state of one layer for K chip instances, and its MVM.

A layer's weight matrix (out, rows) is cut into row chunks of at most ``mapping.tile_rows``
inputs (whole input channels for convolutions) and into groups of ``mapping.tile_cols``
outputs; each (row chunk, output group) is one physical tile with its own max|W| scale, DAC
input scaling, ADC and drift-compensation factor. Partial outputs of row chunks are summed
digitally after their ADCs, as aihwkit's TileModuleArray does.

Two sources of weights:

- *live* (training mode, or never programmed): the layer's digital weight, normalised per
  tile; gradients reach it (straight-through at the quantisers), so training a converted model
  is hardware-aware training with the periphery's non-idealities on.
- *programmed* (eval mode after :func:`analogsim.program`): the conductances of K chip
  instances, aged by :func:`analogsim.drift`. Inputs then carry the instances folded into the
  batch dimension, instance-major: (K·B, ...).

Per-read noise is sampled in output space (see :func:`analogsim.physics.periphery.
per_read_output_variance`); everything one-shot is drawn in :meth:`program` / :meth:`drift`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from analogsim import coding, device_model, integer_mvm
from analogsim.chip import Chip, Coding, chip_from_toml
from analogsim.errors import ConversionError, ShapeError, StateError
from analogsim.physics import periphery
from analogsim.physics.sampling import normal, standard_normal
from analogsim.seeding import Purpose, derive_seed, time_key

# Buffers that hold the programmed state; their shapes depend on K, so loading a state_dict
# resizes them first.
_STATE_BUFFERS = (
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


class MvmOps(Protocol):
    """How a layer type multiplies inputs by a tile's matrix (implemented in layers.py)."""

    #: whether one call on K instances beats K calls of one (a batched matmul does; K
    #: convolutions in turn keep each instance's activations in cache)
    batches_instances: bool

    def input_chunk(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """The inputs feeding rows [start·k, stop·k) (k = kernel elements), in channel units."""

    def vector_dims(self, x: torch.Tensor) -> tuple[int, ...]:
        """Dimensions spanned by one DAC input vector."""

    def mvm(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        bias: torch.Tensor | None = None,
        clip: float | None = None,
        integer_codes: bool = False,
    ) -> torch.Tensor:
        """y = W x (+ bias) for instance-folded x (K·B, ...) and w (K, out, rows).

        Only passed when no gradient is needed: with ``clip``, y is clamped to ±clip, in the
        MVM's own kernel where the backend has one; ``integer_codes`` says x holds integers in
        [−127, 127] and w is reused across calls, so exact integer products may be used
        (:mod:`analogsim.integer_mvm`).
        """

    def square_sum(self, x_squared: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Σ_j x_j² of each input vector, broadcastable to the output."""

    def scale_outputs(self, y: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        """y multiplied by a per-instance, per-output factor (K, out)."""


@dataclass
class _ForwardPlan:
    """Tensors a forward pass needs, derived from the tile state (see _forward_plan)."""

    exact: torch.Tensor | None = None  # (K, out, rows) weights when the tile is noise-free
    matrices: list[torch.Tensor] = field(default_factory=list)  # per chunk (K, out, rows_j)
    q: list[torch.Tensor | None] = field(default_factory=list)  # per chunk, or None
    # per chunk: a float (one instance), (K,) (one per instance) or (K, out)
    output_factors: list[torch.Tensor | float] = field(default_factory=list)
    reused: bool = False  # kept across forwards (a programmed state), not built per call

    def instance(self, k: int) -> _ForwardPlan:
        """The plan of instance k alone (K = 1)."""

        def alone(value: Any) -> Any:
            return value if value is None or isinstance(value, float) else value[k:k + 1]

        return _ForwardPlan(alone(self.exact), [alone(m) for m in self.matrices],
                            [alone(q) for q in self.q], [alone(f) for f in self.output_factors])


class AnalogTile(nn.Module):
    """The analog state and MVM of one layer.

    Args:
        chip: the device card.
        out_features: outputs of the layer.
        in_channels: input channels per group (inputs, for a Linear).
        kernel_elements: elements of one kernel (1 for a Linear); rows = in_channels × this.
        layer_index: position of the layer in the model, used to derive its seeds.

    Shape:
        Weight matrix: (out, rows). Programmed tensors: (K, out, rows), (K, D, out, rows).
    """

    def __init__(
        self,
        chip: Chip,
        out_features: int,
        in_channels: int,
        kernel_elements: int = 1,
        layer_index: int = 0,
    ) -> None:
        super().__init__()
        self.chip = chip
        self.out_features = out_features
        self.in_channels = in_channels
        self.kernel_elements = kernel_elements
        self.layer_index = layer_index
        for name in _STATE_BUFFERS:
            self.register_buffer(name, torch.empty(0), persistent=True)
        self._plan: _ForwardPlan | None = None  # cached per programmed state
        self._read_noise_q: torch.Tensor | None = None  # cached per programmed state
        self._generators: dict[Purpose, list[torch.Generator]] = {}
        self._seeded_generators(0, Purpose.FORWARD, [0])
        self._configure_tiling()

    # ------------------------------------------------------------------------ layout

    def _configure_tiling(self) -> None:
        mapping = self.chip.mapping
        if self.kernel_elements > mapping.tile_rows:
            raise ConversionError(
                f"a kernel of {self.kernel_elements} elements does not fit a tile of "
                f"mapping.tile_rows = {mapping.tile_rows} rows; use a card with larger tiles"
            )
        channels_per_chunk = mapping.tile_rows // self.kernel_elements
        starts = range(0, self.in_channels, channels_per_chunk)
        self.channel_chunks = [(s, min(s + channels_per_chunk, self.in_channels)) for s in starts]
        self.row_chunks = [
            (a * self.kernel_elements, b * self.kernel_elements) for a, b in self.channel_chunks
        ]
        starts = range(0, self.out_features, mapping.tile_cols)
        self.column_groups = [(s, min(s + mapping.tile_cols, self.out_features)) for s in starts]
        self._configure_converters()
        self._check_coding()
        self._chunk_of_row = _range_index(self.row_chunks)

    @property
    def coded(self) -> bool:
        """Whether weights go through a coding stage (a card [coding] other than the default
        tile-wise max|w| mapping)."""
        return self.chip.coding != Coding()

    def _check_coding(self) -> None:
        noise = self.chip.per_read_noise
        if self.coded and (noise.additive_std > 0 or noise.multiplicative_std > 0):
            raise ConversionError(
                f"card {self.chip.name!r}: weight coding (coding.scheme = "
                f"{self.chip.coding.scheme!r}) with per-read noise is not supported; set "
                "per_read_noise.additive_std and multiplicative_std to 0"
            )

    def _configure_converters(self) -> None:
        """Constants of the periphery, derived once from the card."""
        chip = self.chip
        dac, adc = chip.dac, chip.adc
        self._input_step = 1.0 if dac.bits is None else periphery.quantisation_step(dac.bits,
                                                                                     dac.bound)
        self._output_step = 1.0 if adc.bits is None else periphery.quantisation_step(adc.bits,
                                                                                      adc.bound)
        self._dac_limit = None if dac.bits is None else periphery.code_limit(dac.bits)
        # DAC codes that fit int8: the MVM may run as exact integer products (integer_mvm)
        self._int8_codes = self._dac_limit is not None and self._dac_limit <= integer_mvm.MAX_CODE
        self._adc_limit = None if adc.bits is None else periphery.code_limit(adc.bits)
        # With abs-max scaling every |x|/max|x| ≤ 1 ≤ bound: the DAC never clips.
        self._dac_clips = not (dac.input_scaling == "abs_max" and dac.bound >= 1.0)
        self._additive_variance = device_model.additive_per_read_variance(chip)
        self._multiplicative_variance = chip.per_read_noise.multiplicative_std**2
        self._output_variance = chip.output_noise.std**2
        self._noisy = (self._additive_variance > 0 or self._multiplicative_variance > 0
                       or self._output_variance > 0)  # noise drawn at every forward
        # the DAC level of a full-scale input (1 on the converter's grid, or just below it)
        self._full_scale_input = float(periphery.quantise(torch.ones(()), dac.bits, dac.bound))

    @property
    def rows(self) -> int:
        return self.in_channels * self.kernel_elements

    @property
    def tile_count(self) -> int:
        """Physical tiles (row chunks × column groups) this layer occupies."""
        return len(self.row_chunks) * len(self.column_groups)

    @property
    def instances(self) -> int:
        """Number K of programmed chip instances (0 before programming)."""
        return self.instance_ids.shape[0] if self.instance_ids.dim() else 0

    @property
    def is_programmed(self) -> bool:
        return self.instances > 0

    def tile_of_row(self) -> torch.Tensor:
        """Row chunk (physical tile, along the inputs) of each weight-matrix row; (rows,)."""
        return self._chunk_of_row

    def tile_of_output(self) -> torch.Tensor:
        """Column group (physical tile, along the outputs) of each output; (out,)."""
        return _range_index(self.column_groups)

    def weight_scales(self, weight: torch.Tensor) -> torch.Tensor:
        """max|W| per (row chunk, output), per tile or per column as the card says; (chunks, out).

        A tile whose weights are all zero gets scale 1.
        """
        magnitude = weight.detach().abs()
        scales = torch.stack([magnitude[:, a:b].amax(dim=1) for a, b in self.row_chunks])
        if self.chip.mapping.weight_scaling == "tile":
            for a, b in self.column_groups:
                scales[:, a:b] = scales[:, a:b].amax(dim=1, keepdim=True)
        return torch.where(scales > 0, scales, torch.ones_like(scales))

    def _expand_rows(self, per_chunk: torch.Tensor) -> torch.Tensor:
        """(..., chunks, out) → (..., out, rows): each row takes its chunk's value."""
        if len(self.row_chunks) == 1:
            return per_chunk.transpose(-1, -2)  # (..., out, 1) broadcasts over the rows
        return per_chunk[..., self._chunk_of_row, :].transpose(-1, -2)

    # ------------------------------------------------------------------------ lifecycle

    @torch.no_grad()
    def program(self, weight: torch.Tensor, seed: int, instance_ids: list[int],
                coding_reference: coding.CodingReference | None = None) -> None:
        """Program chip instances ``instance_ids`` (in place): draw the one-shot device state.

        Args:
            weight: the digital weight matrix (out, rows).
            seed: the user's seed; instance k draws from streams derived from (seed, layer, k).
            instance_ids: which instances to program; K = len(instance_ids).
            coding_reference: m and T of a model-wide coding scope (``coding.scope =
                "global"``); computed from this layer alone when None.
        """
        _check_finite(weight, "weight")
        scale = self.weight_scales(weight)
        generators = self._seeded_generators(seed, Purpose.PROGRAM, instance_ids)
        if self.coded:
            coded = self._encode(weight, scale, coding_reference)
            self.coding_sign = _or_empty(coded.sign)
            self.coding_large, self.coding_lower = coded.large, coded.lower
            self.coding_upper = coded.upper
            cells = coded.cells.unsqueeze(0)  # one row of cells: (1, N)
        else:
            cells = weight.detach().float() / self._expand_rows(scale)
        devices = device_model.program_devices(self.chip, cells, generators)
        self.instance_ids = torch.tensor(instance_ids, dtype=torch.int64)
        self.program_seed = torch.tensor(seed, dtype=torch.int64)
        self.weight_scale = scale
        self.g_target = devices.g_target
        self.drift_exponents = _or_empty(devices.drift_exponents)
        self.faults = _or_empty(devices.faults)
        self._take_programmed(devices.g_programmed)
        self.reseed_forward_noise(seed)

    def _take_programmed(self, g: torch.Tensor) -> None:
        """Use conductances g (K, D, out, rows) µS as the state right after programming: the
        weights the MVM sees and the drift-compensation reference measured on them (no
        compensation yet)."""
        self.g_programmed = g
        self._read_noise_q = None
        self.t_inference = torch.tensor(0.0, dtype=torch.float64)
        self.compensation_reference = torch.empty(0)
        self._read_out_conductances(g)
        if self.chip.drift_compensation.method != "none" and not self.coded:
            self.compensation_reference = self._compensation_readout(0.0)
        self.compensation_factor = torch.ones(
            self.instances, len(self.row_chunks), self.out_features
        )

    @torch.no_grad()
    def drift(self, t_inference: float) -> None:
        """Age the programmed instances to ``t_inference`` seconds after programming (in place).

        Drift, relaxation and accumulated read noise are drawn from streams derived from
        (seed, layer, instance, t), so the same t gives the same state; the drift-compensation
        factor is re-measured.
        """
        if not self.is_programmed:
            raise StateError("drift() needs a programmed model: call analogsim.program first")
        generators = self._seeded_generators(int(self.program_seed), Purpose.DRIFT,
                                             self.instance_ids.tolist(), time_key(t_inference))
        devices = device_model.ProgrammedDevices(
            self.g_target, self.g_programmed, _or_none(self.drift_exponents),
            _or_none(self.faults), self._read_noise_q,
        )
        aged = device_model.age_devices(self.chip, devices, t_inference, generators)
        self._read_noise_q = devices.read_noise_q  # computed once per programmed state
        self._read_at(aged, t_inference)

    def _read_at(self, g: torch.Tensor, t_inference: float) -> None:
        """Use conductances g (K, D, out, rows) µS read ``t_inference`` s after programming:
        the weights the MVM sees, and the drift-compensation factor measured on them."""
        self._read_out_conductances(g)
        self.t_inference = torch.tensor(float(t_inference), dtype=torch.float64)
        if self.chip.drift_compensation.method != "none" and not self.coded:
            readout = self._compensation_readout(t_inference)
            self.compensation_factor = periphery.drift_compensation_factor(
                self.compensation_reference, readout
            )

    @torch.no_grad()
    def load_measured(self, g: torch.Tensor, t_inference: float, *, programmed: bool) -> None:
        """Replace the simulated conductances of a programmed tile by measured ones.

        Args:
            g: (K, D, out, rows) µS, one chip per instance, laid out as ``g_target`` (the cells
                row of a coded tile: (K, D, 1, N)).
            t_inference: seconds after programming at which they were read.
            programmed: the first read after programming: it becomes the programmed state and
                the drift-compensation reference.
        """
        if not self.is_programmed:
            raise StateError("load_measured() needs a programmed tile (its targets and scales)")
        expected = (self.instances, *self.g_target.shape)
        if tuple(g.shape) != expected:
            raise ShapeError(f"layer {self.layer_index}: measured conductances of shape "
                             f"{tuple(g.shape)}; expected {expected} (instances, devices per "
                             "weight, outputs, rows)")
        _check_finite(g, "measured conductances")
        g = g.to(self.g_programmed.dtype)
        if programmed:
            self._take_programmed(g)
            self.t_inference = torch.tensor(float(t_inference), dtype=torch.float64)
        else:
            self._read_at(g, t_inference)

    def _encode(self, weight: torch.Tensor, scale: torch.Tensor,
                reference: coding.CodingReference | None) -> coding.CodedWeights:
        scope = self.chip.coding.scope
        if scope == "tile":
            return coding.encode(weight, self.chip.coding, self._expand_rows(scale).expand_as(
                weight))
        if reference is None:
            if scope == "global":
                raise StateError("coding.scope = 'global' needs the model-wide reference: "
                                 "program the model with analogsim.program")
            reference = coding.coding_reference([weight], self.chip.coding)
        return coding.encode(weight, self.chip.coding, reference)

    def _coded_layout(self) -> coding.CodedWeights:
        parts = coding.scheme_parts(self.chip.coding.scheme)
        r_small, r_large = ((self.chip.coding.r_small, self.chip.coding.r_large)
                            if "redundancy" in parts else (1, 1))
        return coding.CodedWeights(torch.empty(0), _or_none(self.coding_sign),
                                   self.coding_large, self.coding_lower, self.coding_upper,
                                   r_small, r_large)

    def coding_cost(self) -> coding.CodingCost:
        """Weights, cells and side-information bits this layer's programmed coding uses."""
        if not self.is_programmed:
            raise StateError("coding_cost() needs a programmed tile")
        devices = 2 if self.chip.conductance.pair == "differential" else 1
        if not self.coded:
            weights = self.out_features * self.rows
            return coding.CodingCost(weights, weights, weights * devices, 0)
        return coding.coding_cost(self._coded_layout(), self.chip.coding,
                                  self.g_target.shape[-1] * devices)

    def _decode_cells(self, g: torch.Tensor) -> torch.Tensor:
        """Normalised weights (K, out, rows) decoded from the cells' conductances (K, D, 1, N).

        Drift compensation of a coded tile rescales the cells' reads (before the decoding,
        which is not linear) by one factor per instance: mean |x̂| when programmed over mean
        |x̂| now, measured exactly.
        """
        x_hat = device_model.read_weights(self.chip, g)[:, 0]  # (K, N)
        if self.chip.drift_compensation.method != "none":
            level = x_hat.abs().mean(dim=-1, keepdim=True)
            if not self.compensation_reference.numel():
                self.compensation_reference = level
            x_hat = x_hat * (self.compensation_reference / level)
        layout = self._coded_layout()
        w_hat = coding.decode(layout, coding.average_reads(layout, x_hat),
                              self.chip.coding.clamp_magnitude)
        return w_hat / self._expand_rows(self.weight_scale)

    def _read_out_conductances(self, g: torch.Tensor) -> None:
        self._plan = None
        if self.coded:
            self.w_effective = self._decode_cells(g)
            self.q_effective = torch.empty(0)
            return
        self.w_effective = device_model.read_weights(self.chip, g)
        if self.chip.per_read_noise.multiplicative_std > 0:
            self.q_effective = device_model.conductance_square_weights(self.chip, g)
        else:
            self.q_effective = torch.empty(0)

    def reseed_forward_noise(self, seed: int) -> None:
        """Restart the per-read and output noise streams, one per instance, from ``seed``."""
        ids = self.instance_ids.tolist() or [0]
        self._seeded_generators(seed, Purpose.FORWARD, ids)

    def _seeded_generators(self, seed: int, purpose: Purpose, instance_ids: list[int],
                           *key: int) -> list[torch.Generator]:
        """This tile's generators for ``purpose``, one per instance k, seeded for the streams
        (seed, purpose, layer, k, *key).

        The generator objects are kept and reseeded at every call: making one costs as much
        as seeding it, and a sweep seeds thousands.
        """
        pool = self._generators.setdefault(purpose, [])
        del pool[len(instance_ids):]
        pool.extend(torch.Generator() for _ in range(len(instance_ids) - len(pool)))
        for generator, k in zip(pool, instance_ids, strict=True):
            generator.manual_seed(derive_seed(seed, purpose, self.layer_index, k, *key))
        return pool

    def _compensation_readout(self, t_inference: float) -> torch.Tensor:
        """mean |y| of the read-out inputs per (instance, row chunk, output): (K, chunks, out).

        Read-out inputs are the one-hot vectors (``identity``) or one all-ones vector, run
        through the tile; for ``global`` the mean is also taken over each tile's outputs.
        """
        comp = self.chip.drift_compensation
        k_count = self.instances
        generators = self._seeded_generators(int(self.program_seed), Purpose.READOUT,
                                             self.instance_ids.tolist(), time_key(t_inference))
        level = self._full_scale_input
        readouts = []
        for a, b in self.row_chunks:
            w = self.w_effective[:, :, a:b]  # (K, out, rows_j): one column per one-hot
            if level != 1.0:
                w = w * level
            if comp.readout == "ones":
                w = w.sum(dim=-1, keepdim=True)
            if comp.readout_noise:
                inputs = 1 if comp.readout == "identity" else b - a
                variance = self._output_variance + self._additive_variance * inputs * level**2
                noise = standard_normal(w.shape, generators)
                if self.q_effective.numel():
                    q = self.q_effective[:, :, a:b] * level**2
                    q = q.sum(dim=-1, keepdim=True) if comp.readout == "ones" else q
                    w = torch.addcmul(w, torch.sqrt(variance + self._multiplicative_variance * q),
                                      noise)
                else:
                    w = noise.mul_(math.sqrt(variance)).add_(w)
                if self.chip.adc.bits is not None:
                    w = periphery.quantise(w, self.chip.adc.bits, self.chip.adc.bound)
            per_output = w.abs().mean(dim=-1)  # (K, out)
            if comp.method == "global":
                if len(self.column_groups) == 1:
                    per_output = per_output.mean(dim=1, keepdim=True).expand_as(per_output)
                else:
                    for c, d in self.column_groups:
                        per_output[:, c:d] = per_output[:, c:d].mean(dim=1, keepdim=True)
            readouts.append(per_output)
        return torch.stack(readouts, dim=1).reshape(k_count, len(self.row_chunks), -1)

    # ------------------------------------------------------------------------ forward

    def uses_programmed_state(self) -> bool:
        return self.is_programmed and not self.training

    def forward(
        self, x: torch.Tensor, weight: torch.Tensor, ops: MvmOps, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The analog MVM of ``x`` through the tile, plus the digital ``bias``.

        Args:
            x: inputs; (K·B, ...) instance-major when programmed and in eval mode.
            weight: the layer's digital weight matrix (out, rows).
            ops: the layer type's MVM operations.
            bias: added after the ADCs, shaped to broadcast over the output (or None).
        """
        if self.uses_programmed_state():
            k_count = self.instances
            if x.shape[0] % k_count:
                raise ShapeError(
                    f"a model programmed with {k_count} chip instances takes inputs with the "
                    f"instances folded into the batch, (K·B, ...); got a batch of {x.shape[0]}, "
                    f"not a multiple of {k_count} (analogsim.evaluate does the folding)"
                )
            if self._plan is None:
                # normal tensors even when built under inference_mode: a later forward with
                # autograd on uses the same plan
                with torch.inference_mode(False), torch.no_grad():
                    factor = self.weight_scale.unsqueeze(0) * self.compensation_factor
                    q = self.q_effective if self.q_effective.numel() else None
                    self._plan = self._forward_plan(self.w_effective, q, factor)
                    self._plan.reused = True
            plan = self._plan
            generators = self._generators[Purpose.FORWARD]
        else:
            if self._is_exact():
                return ops.mvm(x, weight.unsqueeze(0), bias)
            scale = self.weight_scales(weight)
            w_n = (weight / self._expand_rows(scale)).unsqueeze(0)
            q = None
            if self.chip.per_read_noise.multiplicative_std > 0:
                g = device_model.target_conductances(self.chip, w_n[0].detach())
                q = device_model.conductance_square_weights(self.chip, g.unsqueeze(0))
            plan = self._forward_plan(w_n, q, scale.unsqueeze(0))
            generators = self._generators[Purpose.FORWARD][:1]
        if plan.exact is not None:
            return ops.mvm(x, plan.exact, bias)
        k_count = plan.matrices[0].shape[0]
        if k_count > 1 and not ops.batches_instances:  # instance k draws from generators[k]
            return torch.cat([
                self._plan_forward(x_k, plan.instance(k), ops, generators[k:k + 1], bias)
                for k, x_k in enumerate(x.chunk(k_count))])
        return self._plan_forward(x, plan, ops, generators, bias)

    def _plan_forward(self, x: torch.Tensor, plan: _ForwardPlan, ops: MvmOps,
                      generators: list[torch.Generator], bias: torch.Tensor | None
                      ) -> torch.Tensor:
        """The forward of ``plan``'s instances: every row chunk, summed after the ADCs."""
        last = len(self.row_chunks) - 1
        outputs = [
            self._chunk_forward(x, plan, ops, j, generators, bias if j == last else None)
            for j in range(last + 1)
        ]
        return sum(outputs[1:], outputs[0])

    def _is_exact(self) -> bool:
        chip = self.chip
        return (
            chip.dac.bits is None
            and chip.dac.input_scaling == "none"
            and chip.adc.bits is None
            and chip.output_noise.std == 0
            and chip.per_read_noise.additive_std == 0
            and chip.per_read_noise.multiplicative_std == 0
        )

    def _forward_plan(
        self, w_n: torch.Tensor, q: torch.Tensor | None, factor: torch.Tensor
    ) -> _ForwardPlan:
        """What a forward needs from the tile state, computed once per state.

        Per row chunk: the matrix mapping DAC codes to ADC codes (w_n · input step / output
        step, which saves two passes over the activations), and the factor turning ADC codes
        back into the layer's units (output step · weight scale · compensation), one number
        per instance when it is the same for every output.

        Args:
            w_n: (K, out, rows) normalised weights.
            q: (K, out, rows) conductance-square weights, or None.
            factor: (K, chunks, out) weight scale times compensation factor.
        """
        if self._is_exact():
            return _ForwardPlan(exact=w_n * self._expand_rows(factor))
        gain = self._input_step / self._output_step
        single = len(self.row_chunks) == 1
        matrices = [w_n * gain if single else w_n[:, :, a:b] * gain for a, b in self.row_chunks]
        q_chunks = [None if q is None else q if single else q[:, :, a:b]
                    for a, b in self.row_chunks]
        factor = factor * self._output_step
        outputs: list[torch.Tensor | float] = []
        for j in range(len(self.row_chunks)):
            per_output = factor[:, j]
            if not bool((per_output == per_output[:, :1]).all()):
                outputs.append(per_output)  # (K, out)
            elif per_output.shape[0] == 1:
                outputs.append(float(per_output[0, 0]))
            else:
                outputs.append(per_output[:, 0])  # (K,)
        return _ForwardPlan(matrices=matrices, q=q_chunks, output_factors=outputs)

    def _chunk_forward(
        self,
        x: torch.Tensor,
        plan: _ForwardPlan,
        ops: MvmOps,
        j: int,
        generators: list[torch.Generator],
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        """Output of row chunk j: DAC → MVM (+ per-read and output noise) → ADC → rescale.

        Works in converter codes: inputs are divided by (max|x| ·) the DAC step and rounded,
        the plan's matrix maps them to ADC codes, and one multiply(-add with the bias) by the
        plan's output factor and max|x| brings the result back to the layer's units.
        """
        chip = self.chip
        c0, c1 = self.channel_chunks[j]
        x_j = ops.input_chunk(x, c0, c1)
        input_scale = None
        if chip.dac.input_scaling == "abs_max":
            input_scale = periphery.abs_max_scale(x_j, ops.vector_dims(x_j))
        codes = self._dac_codes(x_j, input_scale)
        noise_std = self._noise_std(codes, plan.q[j], ops, c0, c1)
        matrix = plan.matrices[j]
        # y will be fresh: update it in place when autograd is off
        owned = not (torch.is_grad_enabled() and (codes.requires_grad or matrix.requires_grad))
        # With no noise between the MVM and the ADC, the ADC's clipping comes first: clamping
        # to the integer ±limit before rounding equals clamping after it.
        clip = self._adc_limit if noise_std is None and owned else None
        integer_codes = owned and plan.reused and self._int8_codes
        y = ops.mvm(codes, matrix, clip=clip, integer_codes=integer_codes)
        if noise_std is not None:
            if isinstance(noise_std, float):  # the std applied in the draw: one pass fewer
                noise = normal(y.shape, noise_std, generators, y.dtype)
            else:
                noise = standard_normal(y.shape, generators, y.dtype).mul_(noise_std)
            y = y.add_(noise) if owned else y + noise
        if clip is not None:
            y = y.round_()
        elif chip.adc.bits is not None:
            y = periphery.round_and_clip(y, self._adc_limit, in_place=owned)
        factor = plan.output_factors[j]
        if isinstance(factor, float) or factor.dim() == 1:  # per instance: fold it with max|x|
            multiplier = _per_instance(factor, input_scale, y)
            if not owned or (bias is not None and bias.requires_grad and
                             torch.is_grad_enabled()):  # autograd: no out= results
                return y * multiplier if bias is None else torch.addcmul(bias, y, multiplier)
            return _scale_and_shift_(y, multiplier, bias)
        y = ops.scale_outputs(y, factor)
        if input_scale is not None:
            y = y * input_scale
        return y if bias is None else y + bias

    def _dac_codes(self, x: torch.Tensor, input_scale: torch.Tensor | None) -> torch.Tensor:
        """DAC codes of the inputs (or the scaled inputs, without a DAC)."""
        if self._dac_limit is None:
            return x if input_scale is None else x / input_scale
        divisor = self._input_step if input_scale is None else input_scale * self._input_step
        limit = self._dac_limit if self._dac_clips else None
        return periphery.round_and_clip(x / divisor, limit, in_place=True)

    def _noise_std(
        self, codes: torch.Tensor, q: torch.Tensor | None, ops: MvmOps, c0: int, c1: int
    ) -> torch.Tensor | float | None:
        """Std of output plus per-read noise, in ADC codes; None when there is none."""
        if not self._noisy:
            return None
        step_sq = self._input_step**2
        additive = self._additive_variance
        variance = periphery.per_read_output_variance(
            ops.square_sum(codes.detach() ** 2, c0, c1) * step_sq if additive > 0 else None,
            ops.mvm(codes.detach() ** 2, q) * step_sq if q is not None else None,
            additive,
            self._multiplicative_variance,
        )
        if isinstance(variance, torch.Tensor):
            return torch.sqrt(variance + self._output_variance) / self._output_step
        if self._output_variance > 0:
            return math.sqrt(self._output_variance) / self._output_step
        return None

    # ------------------------------------------------------------------------ state

    def get_extra_state(self) -> dict[str, Any]:
        return {"chip": self.chip.to_toml(), "layer_index": self.layer_index}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.chip = chip_from_toml(state["chip"], "saved tile state")
        self.layer_index = int(state["layer_index"])
        self._configure_tiling()

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        for name in _STATE_BUFFERS:
            saved = state_dict.get(prefix + name)
            if saved is not None:
                setattr(self, name, torch.empty_like(saved))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._plan = None
        self._read_noise_q = None
        if self.is_programmed:
            self.reseed_forward_noise(int(self.program_seed))

    def extra_repr(self) -> str:
        state = (
            f"programmed K={self.instances}, t={float(self.t_inference):g} s"
            if (self.is_programmed)
            else "not programmed"
        )
        return (
            f"chip={self.chip.name!r}, rows={self.rows}, out={self.out_features}, "
            f"tiles={self.tile_count}, {state}"
        )


def _range_index(ranges: list[tuple[int, int]]) -> torch.Tensor:
    """Index i of the range [a_i, b_i) each position falls in, for consecutive ranges."""
    sizes = torch.tensor([b - a for a, b in ranges])
    return torch.repeat_interleave(torch.arange(len(sizes)), sizes)


def _per_instance(
    values: torch.Tensor | float, input_scale: torch.Tensor | None, y: torch.Tensor
) -> torch.Tensor | float:
    """Multiplier broadcastable to y: values[k] for instance k's samples, times max|x|."""
    if isinstance(values, float):
        return values if input_scale is None else input_scale * values
    k_count = values.numel()
    template = input_scale if input_scale is not None else y.new_ones(
        (y.shape[0],) + (1,) * (y.dim() - 1))
    return (template.reshape(k_count, -1) * values.view(k_count, 1)).reshape(template.shape)


def _scale_and_shift_(
    y: torch.Tensor, multiplier: torch.Tensor | float, bias: torch.Tensor | None
) -> torch.Tensor:
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
    else:
        torch.addcmul(bias_row, rows, multiplier.reshape(-1, 1), out=rows)
    return y


def _check_finite(tensor: torch.Tensor, what: str) -> None:
    if not torch.isfinite(tensor).all():
        bad = (~torch.isfinite(tensor)).sum().item()
        raise ConversionError(
            f"the {what} has {bad} NaN or infinite values; a chip can only "
            f"be programmed with finite weights"
        )


def _or_empty(tensor: torch.Tensor | None) -> torch.Tensor:
    return torch.empty(0) if tensor is None else tensor


def _or_none(tensor: torch.Tensor) -> torch.Tensor | None:
    return tensor if tensor.numel() else None
