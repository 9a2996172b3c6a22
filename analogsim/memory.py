"""How much memory K chip instances of a model take, and refusing what the machine cannot hold.

Programming K instances keeps per analog layer (W = out × rows weights; C cells, C = W unless
the card codes weights; D devices per cell: 2 for a differential pair, 1 single) these tensors
(see ``STATE_BUFFERS`` in :mod:`analogsim.tiles.programmed`; bytes per value in brackets):

- once: the targets ``g_target_packed`` (C [4]: one value per pair, see
  :func:`~analogsim.tiles.programmed.pack_targets`), for a coded card the side information
  (≈ 2 bytes per weight), and when programming is exact (no programming error, no stuck
  devices) the conductances every instance shares (D·C [4] for a pair; a single device shares
  the targets' storage);
- per instance: the conductances ``g_programmed`` (D·C [2] where the card's programming error
  dwarfs float16's rounding, else [4], :func:`~analogsim.tiles.device_model.conductance_dtype`;
  none when shared), the stuck-device map (D·C [1], when the
  card has faults), the weights the MVM sees ``w_effective`` (W [4]) and their
  conductance-square weights ``q_effective`` (W [4], multiplicative per-read noise); and the
  caches a drift and a forward build: 1/f read noise's Q_s (D·C [4], PCM read noise) and the
  PCM drift exponents (D·C [4]), both kept only while an instance of the layer has at most
  :data:`~analogsim.tiles.device_model.CACHE_DEVICES` devices (a larger layer recomputes them
  at every drift, a temporary of one block), the forward plan's matrix (W [4]) and, where the
  tile multiplies int8 digit planes, those planes (W [3], rows of tiles ≥ 512).

Plus O(out) per tile (scales, compensation factors), left out.
``docs/memory.md`` compares this with the buffers and the peak of program + drift, measured per card
(``benchmarks/memory_per_weight.py``); programming and aging work one layer, and one block of
instances, at a time, so the peak stays within one layer's working set of the final state.

Evaluating adds the activations: K × batch × (inputs + outputs of the widest analog layer, per
sample) × 4 bytes × :data:`FORWARD_COPIES` (the input, its DAC codes, the output and its noise).

So ``needed = fixed + K × (state per instance + batch × activations per sample)``; a run is
refused, with the estimate and the K that would fit, when ``needed`` exceeds the limit: the
``max_memory`` the user gives, or else the memory the machine has available (``MemAvailable``
of ``/proc/meminfo``; no check where that is unknown).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from analogsim.cards import Chip, Coding, NoProgrammingNoise, PcmOneOverFReadNoise, PcmPowerLawDrift
from analogsim.conversion import analog_layers
from analogsim.errors import ResourceError, UsageError
from analogsim.tiles import device_model, integer_mvm
from analogsim.tiles.slicing import weight_slice_count

FLOAT_BYTES = 4
#: Bytes per weight of the int8 digit planes of a tile that multiplies them (three planes).
DIGIT_PLANE_BYTES = 3
#: Copies of a layer's activations alive at once in a forward: input, DAC codes, output, noise.
FORWARD_COPIES = 4
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 2**10, "m": 1e6, "mb": 1e6, "mib": 2**20,
          "g": 1e9, "gb": 1e9, "gib": 2**30, "t": 1e12, "tb": 1e12, "tib": 2**40}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs: ``fixed + instances × per_instance``."""

    fixed: int
    per_instance: int
    instances: int

    @property
    def total(self) -> int:
        return self.fixed + self.instances * self.per_instance

    def instances_within(self, limit: int) -> int:
        """The most instances that fit in ``limit`` bytes (0 if not even one)."""
        return max(0, (limit - self.fixed) // max(self.per_instance, 1))


def parse_memory(value: str | int | float) -> int:
    """Bytes of a size such as ``8GiB``, ``512 MB``, ``2e9`` (decimal and binary units)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9.]+(?:e[+-]?\d+)?)\s*([a-zA-Z]*)\s*", str(value))
        if match is None or match[2].lower() not in _UNITS:
            raise UsageError(f"a memory size must be a number of bytes with an optional unit "
                             f"(e.g. 8GiB, 512MB, 2e9); got {value!r}")
        number, unit = float(match[1]), match[2].lower()
    size = number * _UNITS[unit]
    if not (math.isfinite(size) and size > 0):
        raise UsageError(f"a memory size must be > 0 bytes; got {value!r}")
    return int(size)


def format_bytes(size: float) -> str:
    """'512 B', '3.2 MiB', '1.5 TiB'."""
    if abs(size) < 1024:
        return f"{size:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if abs(size) < 1024 or unit == "TiB":
            break
    return f"{size:.3g} {unit}"


def available_memory() -> int | None:
    """Bytes the machine can give without swapping (``MemAvailable``), None if unknown."""
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"^MemAvailable:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match[1]) * 1024 if match else None


def _cells_per_weight(coding: Coding) -> float:
    if coding == Coding() or "redundancy" not in coding.scheme:
        return 1.0
    return coding.r_small + coding.large_fraction * (coding.r_large - coding.r_small)


def layer_state_bytes(chip: Chip, weights: int, plane_weights: int = 0) -> tuple[int, int]:
    """(fixed, per instance) bytes of one programmed analog layer of ``weights`` weights, of
    which ``plane_weights`` sit in tiles that multiply int8 digit planes (formula in the
    module docstring)."""
    weights *= weight_slice_count(chip)  # each weight slice is stored like a weight
    devices = 2 if chip.conductance.pair == "differential" else 1
    coded = chip.coding != Coding()
    cells = math.ceil(weights * _cells_per_weight(chip.coding))
    conductances = devices * cells
    faults = chip.faults.stuck_low_fraction > 0 or chip.faults.stuck_high_fraction > 0
    shared = isinstance(chip.programming, NoProgrammingNoise) and not faults
    fixed = FLOAT_BYTES * cells + (2 * weights if coded else 0)  # packed targets, side info
    per_conductance = 0
    if not shared:
        per_conductance += device_model.conductance_dtype(chip).itemsize  # g_programmed
    elif devices == 2:
        fixed += FLOAT_BYTES * conductances  # g_programmed of every instance: the targets
    if faults:
        per_conductance += 1  # uint8 stuck-device map
    if conductances <= device_model.CACHE_DEVICES:  # caches of the first drift
        if isinstance(chip.read_noise, PcmOneOverFReadNoise):
            per_conductance += FLOAT_BYTES  # Q_s of 1/f noise
        if isinstance(chip.drift, PcmPowerLawDrift):
            per_conductance += FLOAT_BYTES  # drift exponents
    per_weight = 2 * FLOAT_BYTES  # w_effective, the forward plan's matrix
    if chip.per_read_noise.multiplicative_std > 0 and not coded:
        per_weight += FLOAT_BYTES  # q_effective (the plan slices it)
    return fixed, (per_conductance * conductances + per_weight * weights
                   + DIGIT_PLANE_BYTES * plane_weights)


def digit_plane_weights(layer: nn.Module) -> int:
    """Weights of ``layer`` (an analog layer) in row chunks whose forward may multiply int8
    digit planes (``tile.stage.integer_products``, at least ``integer_mvm.MIN_ROWS`` rows)."""
    tile = layer.tile
    if not tile.stage.integer_products or tile.stage.slices is not None:
        return 0  # a sliced forward multiplies in float32 only
    return tile.out_features * sum(b - a for a, b in tile.layout.row_chunks
                                   if b - a >= integer_mvm.MIN_ROWS)


def activation_bytes(model: nn.Module, sample: torch.Tensor) -> int:
    """Bytes per sample and instance of the widest analog layer's activations in a forward:
    inputs + outputs, × :data:`FORWARD_COPIES`, found by pushing one ``sample`` (with its
    batch dimension of 1) through ``model`` in eval mode (batch norm on its running statistics,
    which stay unchanged; unprogrammed analog layers compute on their live weights)."""
    widest = 0

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal widest
        widest = max(widest, inputs[0][0].numel() + output[0].numel())

    hooks = [layer.register_forward_hook(record) for _, layer in analog_layers(model)]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(sample[:1])
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return widest * FLOAT_BYTES * FORWARD_COPIES


def estimate_memory(model: nn.Module, instances: int, sample: torch.Tensor | None = None,
                    batch_size: int = 0) -> MemoryEstimate:
    """What programming ``model`` (converted) on ``instances`` chip instances takes, and with
    ``sample`` and ``batch_size``, evaluating it too (formula in the module docstring)."""
    fixed = per_instance = 0
    for _, layer in analog_layers(model):
        weights = layer.weight_matrix().numel()
        layer_fixed, layer_per_instance = layer_state_bytes(layer.tile.chip, weights,
                                                            digit_plane_weights(layer))
        fixed += layer_fixed
        per_instance += layer_per_instance
    if sample is not None and batch_size > 0:
        per_instance += batch_size * activation_bytes(model, sample)
    return MemoryEstimate(fixed, per_instance, instances)


def check_memory(estimate: MemoryEstimate, what: str, max_memory: int | None = None,
                 option: str = "max_memory") -> None:
    """Refuse ``estimate`` when it exceeds ``max_memory`` (bytes), or else the available memory.

    Args:
        what: the work, for the message, e.g. ``"programming 8 chip instances"``.
        option: how the user raises the limit (``--max-memory`` at the command line).

    Raises:
        ResourceError: naming the estimate, the limit and the instances that would fit.
    """
    limit, source = max_memory, f"the {option} limit"
    if limit is None:
        limit, source = available_memory(), "the memory this machine has available"
        if limit is None:
            return
    if estimate.total <= limit:
        return
    fits = estimate.instances_within(limit)
    raise ResourceError(
        f"{what} needs about {format_bytes(estimate.total)} ({estimate.instances} instances × "
        f"{format_bytes(estimate.per_instance)} + {format_bytes(estimate.fixed)}), more than "
        f"{source} ({format_bytes(limit)}); "
        + (f"at most {fits} instances fit: lower the instances" if fits
           else "not even one instance fits: use a smaller model or batch")
        + (f", or raise {option}" if max_memory is not None else ""))
