"""The chip-instance verbs: ``program`` a converted model, ``drift`` it to a time.

Both work one analog layer at a time, and inside a layer on blocks of chip instances
(:func:`analogsim.tiles.device_model.instance_blocks`): nothing is gathered over the model,
and a layer's temporaries are freed before the next layer starts, so memory stays within one
layer's working set of the programmed state (measured per card in ``docs/memory.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from torch import nn

from analogsim.allocator import release_free_memory
from analogsim.backends.base import BackendModel
from analogsim.conversion import analog_layers
from analogsim.errors import ConversionError, StateError, UsageError
from analogsim.memory import check_memory, estimate_memory, parse_memory
from analogsim.tiles import coding
from analogsim.units import TIME_RANGE, is_valid_time

log = logging.getLogger(__name__)


def _layers_or_error(model: nn.Module, verb: str) -> list:
    layers = [layer for _, layer in analog_layers(model)]
    if not layers:
        raise ConversionError(
            f"{verb}() needs a model with analog layers: call analogsim.convert(model, chip) first"
        )
    return layers


def program(model: nn.Module, seed: int = 0, instances: int | Sequence[int] = 1, *,
            max_memory: int | str | None = None) -> nn.Module:
    """Program ``model``'s analog layers onto chip instances, in place.

    One-shot effects (programming error, drift exponents, stuck devices) are drawn once per
    device; instance k of seed s draws only from streams derived from (s, layer, k), so it is
    the same whether programmed alone (``instances=[k]``) or among others.

    Before drawing anything, the programmed state of the K instances is estimated
    (:func:`analogsim.memory.estimate_memory`) and refused when it exceeds ``max_memory`` or,
    without it, the memory the machine has available. Layers are programmed one after another.

    Args:
        model: a converted model.
        seed: non-negative integer.
        instances: K (instances 0..K−1) or an explicit list of instance ids.
        max_memory: a limit in bytes, or a size such as ``"8GiB"``.

    Returns:
        ``model``, for chaining.

    Raises:
        ResourceError: the K instances would not fit (the message says how many would).
    """
    if seed < 0:
        raise UsageError(f"The 'seed' of program must be a non-negative integer; got {seed!r}.")
    limit = None if max_memory is None else parse_memory(max_memory)
    layers = None if isinstance(model, BackendModel) else _layers_or_error(model, "program")
    if layers is not None and isinstance(instances, int) and instances >= 1:
        check_memory(estimate_memory(model, instances), f"programming {instances} chip "
                     "instances", limit)  # before a list of ids is built
    ids = list(range(instances)) if isinstance(instances, int) else [int(k) for k in instances]
    if not ids or any(k < 0 for k in ids) or len(set(ids)) != len(ids):
        raise UsageError(
            f"The 'instances' of program must be a count ≥ 1 or a list of distinct ids ≥ 0; "
            f"got {instances!r}."
        )
    if layers is None:
        model.program(seed, ids)
        return model
    if not isinstance(instances, int):
        check_memory(estimate_memory(model, len(ids)), f"programming {len(ids)} chip "
                     "instances", limit)
    reference = coding.global_reference([(layer.tile, layer.weight_matrix())
                                         for layer in layers])
    for layer in layers:
        layer.tile.program(layer.weight_matrix(), seed, ids,
                           reference if layer.tile.chip.coding.scope == "global" else None)
        release_free_memory(layer.weight.numel() * len(ids))
    log.info(
        "programmed %d analog layers on %d chip instances (seed %d)", len(layers), len(ids), seed
    )
    return model


def coding_cost(model: nn.Module) -> coding.CodingCost:
    """Weights, cells, devices and side-information bits of a programmed model, summed over
    its analog layers; ``.r_avg`` is its mean cells per weight."""
    costs = [layer.tile.coding_cost() for layer in _layers_or_error(model, "coding_cost")]
    return sum(costs[1:], costs[0])


def drift(model: nn.Module, t_seconds: float) -> nn.Module:
    """Age every programmed instance to ``t_seconds`` after programming, in place.

    Each call starts again from the programmed state (drift does not accumulate over calls);
    the same time gives the same conductances. Layers are aged one after another.
    """
    if not is_valid_time(t_seconds):
        raise UsageError(f"The 't_seconds' of drift must be {TIME_RANGE}; got {t_seconds!r}.")
    if isinstance(model, BackendModel):
        if not model.instances:
            raise StateError("drift() needs a programmed model: call analogsim.program first")
        model.drift(float(t_seconds))
        return model
    for layer in _layers_or_error(model, "drift"):
        if not layer.tile.is_programmed:
            raise StateError("drift() needs a programmed model: call analogsim.program first")
        layer.tile.drift(float(t_seconds))
        release_free_memory(layer.weight.numel() * layer.tile.instances)
    return model


def instance_count(model: nn.Module) -> int:
    """K, the chip instances the model's analog layers hold (1 if none are programmed)."""
    if isinstance(model, BackendModel):
        return max(model.instances, 1)
    counts = {layer.tile.instances for _, layer in analog_layers(model) if layer.tile.is_programmed}
    if len(counts) > 1:
        raise StateError(
            f"analog layers are programmed with different instance counts "
            f"{sorted(counts)}; program the whole model at once"
        )
    return counts.pop() if counts else 1


def weights_in_use(model: nn.Module, unprogrammed: str = "error") -> str:
    """What ``model`` computes with in eval mode: ``"programmed"`` (every analog layer is
    programmed), ``"live"`` (some are not: they use their digital weights) or ``"digital"``
    (no analog layer).

    Args:
        unprogrammed: ``"error"`` refuses unprogrammed analog layers; ``"live"`` accepts them.

    Raises:
        StateError: an analog layer is not programmed and ``unprogrammed`` is ``"error"``.
    """
    if unprogrammed not in ("error", "live"):
        raise UsageError(f"The 'unprogrammed' of evaluate must be 'error' or 'live'; got "
                         f"{unprogrammed!r}.")
    if isinstance(model, BackendModel):
        unset = [] if model.instances else [type(model).__name__]
    else:
        layers = list(analog_layers(model))
        if not layers:
            return "digital"
        unset = [name for name, layer in layers if not layer.tile.is_programmed]
    if not unset:
        return "programmed"
    if unprogrammed == "live":
        return "live"
    raise StateError(
        f"evaluate() got a converted model whose analog layers {unset} are not programmed; "
        "call analogsim.program(model, seed=..., instances=...) first, or pass "
        "unprogrammed='live' to evaluate their digital weights through the tiles")


def reseed_forward_noise(model: nn.Module, seed: int) -> None:
    """Restart every analog layer's per-read and output noise streams from ``seed``."""
    if isinstance(model, BackendModel):
        model.reseed_forward_noise(seed)
        return
    for _, layer in analog_layers(model):
        layer.tile.reseed_forward_noise(seed)
