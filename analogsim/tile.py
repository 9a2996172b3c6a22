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
from typing import Any, Protocol

import torch
from torch import nn

from analogsim import device_model
from analogsim.chip import Chip, chip_from_toml
from analogsim.errors import ConversionError, ShapeError, StateError
from analogsim.physics import periphery
from analogsim.seeding import Purpose, make_generator, time_key

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
)


class MvmOps(Protocol):
    """How a layer type multiplies inputs by a tile's matrix (implemented in layers.py)."""

    def input_chunk(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """The inputs feeding rows [start·k, stop·k) (k = kernel elements), in channel units."""

    def vector_dims(self, x: torch.Tensor) -> tuple[int, ...]:
        """Dimensions spanned by one DAC input vector."""

    def mvm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """y = W x for instance-folded x (K·B, ...) and w (K, out, rows)."""

    def square_sum(self, x_squared: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Σ_j x_j² of each input vector, broadcastable to the output."""

    def scale_outputs(self, y: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        """y multiplied by a per-instance, per-output factor (K, out)."""


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
        self._forward_generators: list[torch.Generator] = [
            make_generator(0, Purpose.FORWARD, layer_index, 0)
        ]
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
        sizes = torch.tensor([b - a for a, b in self.row_chunks])
        self._chunk_of_row = torch.repeat_interleave(torch.arange(len(sizes)), sizes)

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
        return self.instance_ids.numel()

    @property
    def is_programmed(self) -> bool:
        return self.instances > 0

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
    def program(self, weight: torch.Tensor, seed: int, instance_ids: list[int]) -> None:
        """Program chip instances ``instance_ids`` (in place): draw the one-shot device state.

        Args:
            weight: the digital weight matrix (out, rows).
            seed: the user's seed; instance k draws from streams derived from (seed, layer, k).
            instance_ids: which instances to program; K = len(instance_ids).
        """
        _check_finite(weight, "weight")
        scale = self.weight_scales(weight)
        w_normalised = weight.detach().float() / self._expand_rows(scale)
        generators = [
            make_generator(seed, Purpose.PROGRAM, self.layer_index, k) for k in instance_ids
        ]
        devices = device_model.program_devices(self.chip, w_normalised, generators)
        self.instance_ids = torch.tensor(instance_ids, dtype=torch.int64)
        self.program_seed = torch.tensor(seed, dtype=torch.int64)
        self.t_inference = torch.tensor(0.0, dtype=torch.float64)
        self.weight_scale = scale
        self.g_target = devices.g_target
        self.g_programmed = devices.g_programmed
        self.drift_exponents = _or_empty(devices.drift_exponents)
        self.faults = _or_empty(devices.faults)
        self._read_out_conductances(devices.g_programmed)
        self.reseed_forward_noise(seed)
        if self.chip.drift_compensation.method != "none":
            self.compensation_reference = self._compensation_readout(0.0)
        self.compensation_factor = torch.ones(
            len(instance_ids), len(self.row_chunks), self.out_features
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
        seed = int(self.program_seed)
        generators = [
            make_generator(seed, Purpose.DRIFT, self.layer_index, int(k), time_key(t_inference))
            for k in self.instance_ids
        ]
        devices = device_model.ProgrammedDevices(
            self.g_target, self.g_programmed, _or_none(self.drift_exponents), _or_none(self.faults)
        )
        aged = device_model.age_devices(self.chip, devices, t_inference, generators)
        self._read_out_conductances(aged)
        self.t_inference = torch.tensor(float(t_inference), dtype=torch.float64)
        if self.chip.drift_compensation.method != "none":
            readout = self._compensation_readout(t_inference)
            self.compensation_factor = periphery.drift_compensation_factor(
                self.compensation_reference, readout
            )

    def _read_out_conductances(self, g: torch.Tensor) -> None:
        self.w_effective = device_model.read_weights(self.chip, g)
        if self.chip.per_read_noise.multiplicative_std > 0:
            self.q_effective = device_model.conductance_square_weights(self.chip, g)
        else:
            self.q_effective = torch.empty(0)

    def reseed_forward_noise(self, seed: int) -> None:
        """Restart the per-read and output noise streams, one per instance, from ``seed``."""
        ids = [int(k) for k in self.instance_ids] or [0]
        self._forward_generators = [
            make_generator(seed, Purpose.FORWARD, self.layer_index, k) for k in ids
        ]

    def _compensation_readout(self, t_inference: float) -> torch.Tensor:
        """mean |y| of the read-out inputs per (instance, row chunk, output): (K, chunks, out).

        Read-out inputs are the one-hot vectors (``identity``) or one all-ones vector, run
        through the tile; for ``global`` the mean is also taken over each tile's outputs.
        """
        comp = self.chip.drift_compensation
        k_count = self.instances
        generators = [
            make_generator(
                int(self.program_seed),
                Purpose.READOUT,
                self.layer_index,
                int(k),
                time_key(t_inference),
            )
            for k in self.instance_ids
        ]
        level = periphery.quantise(torch.ones(()), self.chip.dac.bits, self.chip.dac.bound)
        readouts = []
        for a, b in self.row_chunks:
            w = self.w_effective[:, :, a:b] * level  # (K, out, rows_j): one column per one-hot
            if comp.readout == "ones":
                w = w.sum(dim=-1, keepdim=True)
            if comp.readout_noise:
                inputs = 1 if comp.readout == "identity" else b - a
                variance = self.chip.output_noise.std**2 + (
                    device_model.additive_per_read_variance(self.chip) * inputs * level**2
                )
                if self.q_effective.numel():
                    q = self.q_effective[:, :, a:b] * level**2
                    q = q.sum(dim=-1, keepdim=True) if comp.readout == "ones" else q
                    variance = variance + self.chip.per_read_noise.multiplicative_std**2 * q
                noise = torch.stack([torch.randn(w.shape[1:], generator=g) for g in generators])
                w = w + torch.sqrt(torch.as_tensor(variance)) * noise
                if self.chip.adc.bits is not None:
                    w = periphery.quantise(w, self.chip.adc.bits, self.chip.adc.bound)
            per_output = w.abs().mean(dim=-1)  # (K, out)
            if comp.method == "global":
                for c, d in self.column_groups:
                    per_output[:, c:d] = per_output[:, c:d].mean(dim=1, keepdim=True)
            readouts.append(per_output)
        return torch.stack(readouts, dim=1).reshape(k_count, len(self.row_chunks), -1)

    # ------------------------------------------------------------------------ forward

    def uses_programmed_state(self) -> bool:
        return self.is_programmed and not self.training

    def forward(self, x: torch.Tensor, weight: torch.Tensor, ops: MvmOps) -> torch.Tensor:
        """The analog MVM of ``x`` through the tile (bias not included).

        Args:
            x: inputs; (K·B, ...) instance-major when programmed and in eval mode.
            weight: the layer's digital weight matrix (out, rows).
            ops: the layer type's MVM operations.
        """
        if self.uses_programmed_state():
            k_count = self.instances
            if x.shape[0] % k_count:
                raise ShapeError(
                    f"a model programmed with {k_count} chip instances takes inputs with the "
                    f"instances folded into the batch, (K·B, ...); got a batch of {x.shape[0]}, "
                    f"not a multiple of {k_count} (analogsim.evaluate does the folding)"
                )
            w_n = self.w_effective
            q = self.q_effective if self.q_effective.numel() else None
            factor = self.weight_scale.unsqueeze(0) * self.compensation_factor  # (K, chunks, out)
        else:
            scale = self.weight_scales(weight)
            w_n = (weight / self._expand_rows(scale)).unsqueeze(0)
            q = None
            if self.chip.per_read_noise.multiplicative_std > 0:
                g = device_model.target_conductances(self.chip, w_n[0].detach())
                q = device_model.conductance_square_weights(self.chip, g.unsqueeze(0))
            factor = scale.unsqueeze(0)
        if self._is_exact():
            return ops.mvm(x, w_n * self._expand_rows(factor))
        generators = (
            self._forward_generators
            if self.uses_programmed_state()
            else (self._forward_generators[:1])
        )
        partial_outputs = [
            self._chunk_forward(x, w_n, q, factor, ops, j, generators)
            for j in range(len(self.row_chunks))
        ]
        return sum(partial_outputs[1:], partial_outputs[0])

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

    def _chunk_forward(
        self,
        x: torch.Tensor,
        w_n: torch.Tensor,
        q: torch.Tensor | None,
        factor: torch.Tensor,
        ops: MvmOps,
        j: int,
        generators: list[torch.Generator],
    ) -> torch.Tensor:
        """Output of row chunk j: DAC → MVM (+ per-read and output noise) → ADC → rescale."""
        chip = self.chip
        (a, b), (c0, c1) = self.row_chunks[j], self.channel_chunks[j]
        x_j = ops.input_chunk(x, c0, c1)
        input_scale = None
        if chip.dac.input_scaling == "abs_max":
            input_scale = periphery.abs_max_scale(x_j, ops.vector_dims(x_j))
            x_j = x_j / input_scale
        if chip.dac.bits is not None:
            x_j = periphery.quantise(x_j, chip.dac.bits, chip.dac.bound)
        y = ops.mvm(x_j, w_n[:, :, a:b])
        additive_variance = device_model.additive_per_read_variance(chip)
        variance = periphery.per_read_output_variance(
            ops.square_sum(x_j.detach() ** 2, c0, c1) if additive_variance > 0 else None,
            ops.mvm(x_j.detach() ** 2, q[:, :, a:b]) if q is not None else None,
            additive_variance,
            chip.per_read_noise.multiplicative_std**2,
        )
        output_variance = chip.output_noise.std**2
        if isinstance(variance, torch.Tensor):
            y = y + torch.sqrt(variance + output_variance) * _standard_normal(y, generators)
        elif output_variance > 0:
            y = y + _standard_normal(y, generators).mul_(math.sqrt(output_variance))
        if chip.adc.bits is not None:
            y = periphery.quantise(y, chip.adc.bits, chip.adc.bound)
        y = ops.scale_outputs(y, factor[:, j])
        return y if input_scale is None else y * input_scale

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


def _standard_normal(like: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """N(0, 1) shaped like ``like`` (K·B, ...), instance k's slice drawn from generators[k]."""
    if len(generators) == 1:
        return torch.randn(like.shape, generator=generators[0], dtype=like.dtype)
    per_instance = (like.shape[0] // len(generators), *like.shape[1:])
    return torch.cat([torch.randn(per_instance, generator=g, dtype=like.dtype) for g in generators])


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
