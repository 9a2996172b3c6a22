"""The analog tile: the programmed state of one layer for K chip instances, and its MVM.

:class:`AnalogTile` composes the stages of this package and holds the state as buffers (so it
moves with ``.to()`` and saves with ``state_dict``): the layout (:mod:`.layout`), converters
(:mod:`.converters`; the buffer ``input_range`` holds the range :func:`analogsim.calibrate`
sets for ``dac.input_scaling = "calibrated"``), per-read noise (:mod:`.noise`), programmed
state (:mod:`.programmed`, :mod:`.device_model`), coding (:mod:`.coding`), drift compensation
(:mod:`.compensation`), bit slicing (:mod:`.slicing`) and the forward (:mod:`.forward`).

Two sources of weights:

- *live* (training mode, or never programmed): the layer's digital weight, normalised per
  tile; gradients reach it (straight-through at the quantisers), so training a converted model
  is hardware-aware training with the periphery's non-idealities on.
- *programmed* (eval mode after :func:`analogsim.program`): the conductances of K chip
  instances, aged by :func:`analogsim.drift`. Inputs then carry the instances folded into the
  batch dimension, instance-major: (K·B, ...); with K > 1 only inside
  :func:`analogsim.instances_folded` (as :func:`analogsim.evaluate` does), so that an ordinary
  forward is never spread across chips by accident.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from analogsim.cards import Chip, Coding, chip_from_toml
from analogsim.errors import ConversionError, ShapeError, StateError
from analogsim.physics import periphery
from analogsim.seeding import Purpose, time_key
from analogsim.tiles import coding, device_model, integer_mvm, wires
from analogsim.tiles.compensation import compensation_readout
from analogsim.tiles.converters import Converters
from analogsim.tiles.forward import ForwardPlan, TileForward, exact_without_periphery
from analogsim.tiles.layout import TileLayout
from analogsim.tiles.mvm_ops import MvmOps
from analogsim.tiles.noise import ReadNoise
from analogsim.tiles.programmed import (
    STATE_BUFFERS,
    check_finite,
    check_measured,
    devices_per_weight,
    effective_weights,
    or_empty,
    or_none,
    pack_targets,
    stored_devices,
    upgrade_saved_state,
)
from analogsim.tiles.slicing import Slices, sliced_weights, weight_slice_count
from analogsim.tiles.streams import GeneratorPool


def batch_layout_error(instances: int, batch: int, folded: bool,
                       layer_index: int) -> Exception:
    """The error for a batch of ``batch`` rows given to a tile programmed with ``instances``
    chip instances: outside :func:`analogsim.instances_folded` (``folded`` False), or not a
    multiple of the instances."""
    if not folded:
        return StateError(
            f"analog layer {layer_index} is programmed with {instances} chip instances and a "
            "plain forward would spread the batch across them; use analogsim.evaluate(model, "
            "data), or call the model inside `with analogsim.instances_folded(model):` on "
            "inputs with the instances folded into the batch, (K·B, ...) instance-major, or "
            "program with instances=1")
    return ShapeError(
        f"a model programmed with {instances} chip instances takes inputs with the instances "
        f"folded into the batch, (K·B, ...); got a batch of {batch}, not a multiple of "
        f"{instances} (analogsim.evaluate does the folding)")


def calibrated_input_range(tile: AnalogTile) -> torch.Tensor | None:
    """The fixed range r (0-d, in the layer's input units) a tile with ``dac.input_scaling =
    "calibrated"`` divides its inputs by; None for the other input scalings.

    Raises:
        StateError: the card is calibrated and the tile has no range yet.
    """
    if tile.stage.converters.input_scaling != "calibrated":
        return None
    if tile.input_range.numel() == 0:
        raise StateError(
            f"analog layer #{tile.layer_index} (weight matrix {tile.out_features} × "
            f"{tile.rows}, card {tile.chip.name!r}) has dac.input_scaling = 'calibrated' but no "
            "input range: call asim.calibrate(model, data) on calibration inputs first (or "
            "load a state dict saved after calibrating)")
    return tile.input_range


def default_input_range(state_dict: dict[str, Any], prefix: str) -> None:
    """Give a whole tile state saved before input ranges existed (it has the tile's extra
    state but no ``input_range``) an empty range: it loads as not calibrated. A partial state
    dict without the tile leaves the range as it is."""
    if prefix + "_extra_state" in state_dict:
        state_dict.setdefault(prefix + "input_range", torch.empty(0))


def tile_compensation_readout(tile: AnalogTile, t_inference: float) -> torch.Tensor:
    """The drift-compensation read-out of a programmed tile at ``t_inference`` s: (K, chunks,
    out), from the read-out streams of (seed, layer, instance, t)."""
    generators = tile.streams.seeded(int(tile.program_seed), Purpose.READOUT, tile.layer_index,
                                     tile.instance_ids.tolist(), time_key(t_inference))
    return compensation_readout(tile.chip, tile.layout, tile.stage.converters, tile.stage.noise,
                                tile.w_effective, or_none(tile.q_effective), generators)


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

    instances_folded = False  # K > 1 takes (K·B, ...) inputs: see analogsim.instances_folded
    digital_forward = False  # exact MVM by the digital weight: see analogsim.calibrate

    def __init__(self, chip: Chip, out_features: int, in_channels: int,
                 kernel_elements: int = 1, layer_index: int = 0) -> None:
        super().__init__()
        self.out_features = out_features
        self.in_channels = in_channels
        self.kernel_elements = kernel_elements
        self.layer_index = layer_index
        for name in (*STATE_BUFFERS, "input_range"):  # input_range: empty until calibrated
            self.register_buffer(name, torch.empty(0), persistent=True)
        self.streams = GeneratorPool()
        self.streams.seeded(0, Purpose.FORWARD, layer_index, [0])
        self.configure(chip)

    def configure(self, chip: Chip) -> None:
        """Derive the layout, converters, noise and forward stage from ``chip``."""
        noise = ReadNoise.from_chip(chip)
        coded = chip.coding != Coding()
        per_read = chip.per_read_noise
        if coded and (per_read.additive_std > 0 or per_read.multiplicative_std > 0):
            raise ConversionError(
                f"card {chip.name!r}: weight coding (coding.scheme = {chip.coding.scheme!r}) "
                "with per-read noise is not supported; set per_read_noise.additive_std and "
                "multiplicative_std to 0")
        self.chip = chip
        self.coded = coded  # a [coding] other than the default tile-wise max|w| mapping
        self.layout = TileLayout.from_mapping(chip.mapping, self.out_features, self.in_channels,
                                              self.kernel_elements)
        integer_products = chip.mapping.integer_products
        self.stage = TileForward(
            self.layout, Converters.from_chip(chip), noise, exact_without_periphery(chip),
            integer_mvm.amx_available() if integer_products is None else integer_products,
            Slices.from_chip(chip))
        self.plan: ForwardPlan | None = None  # cached per programmed state
        self.read_noise_q: torch.Tensor | None = None  # 1/f noise's Q_s, per programmed state

    @property
    def rows(self) -> int:
        return self.layout.rows

    @property
    def instances(self) -> int:
        """Number K of programmed chip instances (0 before programming)."""
        return self.instance_ids.shape[0] if self.instance_ids.dim() else 0

    @property
    def is_programmed(self) -> bool:
        return self.instances > 0

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
        check_finite(weight, "weight")
        scale = self.layout.weight_scales(weight)
        generators = self.streams.seeded(seed, Purpose.PROGRAM, self.layer_index, instance_ids)
        if self.coded:
            coded = coding.encode_tile(weight, self.chip.coding, self.layout.expand_rows(
                scale).expand_as(weight), coding_reference, self.stage.slices)
            self.coding_sign = or_empty(coded.sign)
            self.coding_large, self.coding_lower = coded.large, coded.lower
            self.coding_upper = coded.upper
            cells = coded.cells.unsqueeze(0)  # one row of cells: (1, N)
        else:
            cells = sliced_weights(self.stage.slices,  # (out·m, rows) with weight slices
                                   weight.detach().float() / self.layout.expand_rows(scale))
        devices = device_model.program_devices(self.chip, cells, generators,
                                               device_model.exponent_seeds(
                                                   seed, self.layer_index, instance_ids))
        self.instance_ids = torch.tensor(instance_ids, dtype=torch.int64)
        self.program_seed = torch.tensor(seed, dtype=torch.int64)
        self.weight_scale = scale
        self.g_target_packed = pack_targets(self.chip, devices.g_target)
        self.drift_exponents = torch.empty(0)  # redrawn at drifts, cached if small
        self.faults = or_empty(devices.faults)
        self.read(devices.g_programmed, 0.0, programmed=True)
        self.reseed_forward_noise(seed)

    @torch.no_grad()
    def drift(self, t_inference: float) -> None:
        """Age the programmed instances to ``t_inference`` seconds after programming (in place).

        Drift, relaxation and accumulated read noise are drawn from streams derived from
        (seed, layer, instance, t), so the same t gives the same state; the drift-compensation
        factor is re-measured.
        """
        if not self.is_programmed:
            raise StateError("drift() needs a programmed model: call analogsim.program first")
        generators = self.streams.seeded(int(self.program_seed), Purpose.DRIFT, self.layer_index,
                                         self.instance_ids.tolist(), time_key(t_inference))
        devices = stored_devices(self)
        aged = device_model.age_devices(self.chip, devices, t_inference, generators)
        self.read_noise_q = devices.read_noise_q  # caches, computed once per programmed state
        self.drift_exponents = or_empty(devices.drift_exponents)
        self.read(aged, t_inference, programmed=False)

    @torch.no_grad()
    def load_measured(self, g: torch.Tensor, t_inference: float, *, programmed: bool) -> None:
        """Replace the simulated conductances of a programmed tile by measured ones.

        Args:
            g: (K, D, out, rows) µS, one chip per instance, laid out as the targets (the cells
                row of a coded tile: (K, D, 1, N)).
            t_inference: seconds after programming at which they were read.
            programmed: the first read after programming: it becomes the programmed state (in
                the card's storage type, device_model.conductance_dtype) and the
                drift-compensation reference.
        """
        if not self.is_programmed:
            raise StateError("load_measured() needs a programmed tile (its targets and scales)")
        check_measured(g, self.chip, self.instances, self.g_target_packed, self.layer_index)
        self.read(g, t_inference, programmed=programmed)

    def read(self, g: torch.Tensor, t_inference: float, *, programmed: bool) -> None:
        """Use conductances g (K, D, out, rows) µS read ``t_inference`` s after programming:
        the weights the MVM sees and the drift-compensation factor measured on them. The
        ``programmed`` read becomes the programmed state and the compensation reference."""
        compensated = self.chip.drift_compensation.method != "none" and not self.coded
        if programmed:
            self.g_programmed = g.to(device_model.conductance_dtype(self.chip))
            self.read_noise_q = None
            self.compensation_reference = torch.empty(0)
        self.plan = None
        coded = self.stored_coding() if self.coded else None
        effective = effective_weights(self.chip, self.layout, wires.conductances_seen(
            self.chip, self.layout, g.float(), coded), coded, self.weight_scale,
            self.compensation_reference)
        self.w_effective, self.q_effective = effective.w, or_empty(effective.q)
        if effective.compensation_reference is not None:
            self.compensation_reference = effective.compensation_reference
        self.t_inference = torch.tensor(float(t_inference), dtype=torch.float64)
        if programmed:
            if compensated:
                self.compensation_reference = tile_compensation_readout(self, 0.0)
            self.compensation_factor = torch.ones(self.instances, len(self.layout.row_chunks),
                                                  self.out_features)
        elif compensated:
            self.compensation_factor = periphery.drift_compensation_factor(
                self.compensation_reference, tile_compensation_readout(self, t_inference))

    def coding_cost(self) -> coding.CodingCost:
        """Weights, cells and side-information bits this layer's programmed coding uses."""
        if not self.is_programmed:
            raise StateError("coding_cost() needs a programmed tile")
        devices, slices = devices_per_weight(self.chip), weight_slice_count(self.chip)
        if not self.coded:
            return coding.uncoded_cost(self.out_features * self.rows, devices * slices)
        return coding.coding_cost(self.stored_coding(), self.chip.coding,
                                  self.g_target_packed.shape[-1] * devices, slices)

    def stored_coding(self) -> coding.CodedWeights:
        """The side information of this programmed coded tile (to decode its reads)."""
        return coding.stored_layout(self.chip.coding, or_none(self.coding_sign),
                                    self.coding_large, self.coding_lower, self.coding_upper)

    def reseed_forward_noise(self, seed: int) -> None:
        """Restart the per-read and output noise streams, one per instance, from ``seed``."""
        ids = self.instance_ids.tolist() or [0]
        self.streams.seeded(seed, Purpose.FORWARD, self.layer_index, ids)

    # ------------------------------------------------------------------------ forward

    def uses_programmed_state(self) -> bool:
        return self.is_programmed and not self.training

    def forward(self, x: torch.Tensor, weight: torch.Tensor, ops: MvmOps,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        """The analog MVM of ``x`` through the tile, plus the digital ``bias``.

        Args:
            x: inputs; (K·B, ...) instance-major when programmed (instances_folded).
            weight: the layer's digital weight matrix (out, rows).
            ops: the layer type's MVM operations.
            bias: added after the ADCs, shaped to broadcast over the output (or None).
        """
        if self.digital_forward:
            return ops.mvm(x, weight.unsqueeze(0), bias)
        stage, input_range = self.stage, calibrated_input_range(self)
        if self.uses_programmed_state():
            if (not self.instances_folded and self.instances > 1) or x.shape[0] % self.instances:
                raise batch_layout_error(self.instances, x.shape[0], self.instances_folded,
                                         self.layer_index)
            if self.plan is None:
                self.plan = stage.programmed_plan(self.w_effective, or_none(self.q_effective),
                                                  self.weight_scale, self.compensation_factor)
            return stage.run(x, self.plan, ops, self.streams[Purpose.FORWARD], bias, input_range)
        if stage.exact:
            return ops.mvm(x, weight.unsqueeze(0), bias)
        plan = stage.live_plan(self.chip, weight)
        return stage.run(x, plan, ops, self.streams[Purpose.FORWARD][:1], bias, input_range)

    # ------------------------------------------------------------------------ state

    def get_extra_state(self) -> dict[str, Any]:
        return {"chip": self.chip.to_toml(), "layer_index": self.layer_index}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.layer_index = int(state["layer_index"])
        self.configure(chip_from_toml(state["chip"], "saved tile state"))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        upgrade_saved_state(state_dict, prefix)
        default_input_range(state_dict, prefix)
        for name in (*STATE_BUFFERS, "input_range"):
            saved = state_dict.get(prefix + name)
            if saved is not None:
                setattr(self, name, torch.empty_like(saved))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.plan = None
        self.read_noise_q = None
        if self.is_programmed:
            self.reseed_forward_noise(int(self.program_seed))

    def extra_repr(self) -> str:
        state = (f"programmed K={self.instances}, t={float(self.t_inference):g} s"
                 if self.is_programmed else "not programmed")
        return (f"chip={self.chip.name!r}, rows={self.rows}, out={self.out_features}, "
                f"tiles={self.layout.tile_count}, {state}")
