"""``convert`` a PyTorch model onto analog tiles, and ``to_digital`` back.

Conversion swaps every ``nn.Linear`` / ``nn.Conv1d/2d/3d`` (subclasses, grouped and depthwise
convolutions included) for its analog layer, in a deep copy of the model. A module shared by
several parents becomes one analog layer shared the same way. Modules that multiply by their
own weight matrices in their own code (``nn.MultiheadAttention``, ``nn.LSTM``/``GRU``/``RNN``)
become *composite* analog modules (:data:`~analogsim.tiles.COMPOSITE_LAYERS`) whose
projections are analog layers; their children are not converted again.
"""

from __future__ import annotations

import copy
import fnmatch
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from analogsim.cards import Chip, load_chip
from analogsim.errors import ConversionError
from analogsim.tiles import ANALOG_LAYERS, COMPOSITE_LAYERS, AnalogLayer

log = logging.getLogger(__name__)

LayerFilter = Iterable[str] | Callable[[nn.Module, str], bool]
ChipSpec = Chip | str | Mapping[str, Any]


def _analog_class(module: nn.Module) -> type[nn.Module] | None:
    """The analog class ``module`` converts to: a composite one first (an attention layer
    holds Linear children), then a layer; None when it does not convert."""
    for digital, analog in (*COMPOSITE_LAYERS.items(), *ANALOG_LAYERS.items()):
        if isinstance(module, digital):
            return analog
    return None


def _is_analog(module: nn.Module) -> bool:
    return isinstance(module, AnalogLayer | tuple(COMPOSITE_LAYERS.values()))


def _matches(name: str, patterns: Iterable[str]) -> str | None:
    for pattern in patterns:
        if name == pattern or fnmatch.fnmatchcase(name, pattern):
            return pattern
    return None


def _resolve_chip(base: Chip, spec: ChipSpec, where: str) -> Chip:
    if isinstance(spec, Chip):
        return spec
    if isinstance(spec, str):
        return load_chip(spec)
    if isinstance(spec, Mapping):
        return base.replace(**spec)
    raise ConversionError(
        f"{where} must be a Chip, a card name or a dict of card overrides, got {spec!r}"
    )


def analog_layers(model: nn.Module) -> Iterator[tuple[str, AnalogLayer]]:
    """(qualified name, layer) for each distinct analog layer of ``model``, in module order."""
    seen: set[int] = set()
    for name, module in model.named_modules():
        if isinstance(module, AnalogLayer) and id(module) not in seen:
            seen.add(id(module))
            yield name, module


def convert(
    model: nn.Module,
    chip: Chip | str,
    *,
    exclude: LayerFilter = (),
    per_layer: Mapping[str, ChipSpec] | None = None,
    backend: str = "native",
    aihwkit_tile: str = "cpp",
) -> nn.Module:
    """A copy of ``model`` with its Linear/Conv layers on analog tiles of ``chip``.

    Args:
        model: any ``nn.Module``; it is not modified.
        chip: a :class:`Chip` or a card name/path for :func:`load_chip`.
        exclude: qualified names or glob patterns (``"classifier.*"``) of layers to keep
            digital, or a function ``(module, name) -> bool`` that says which.
        per_layer: qualified name or glob pattern → the chip for those layers: a Chip, a card
            name, or a dict of overrides applied to ``chip`` (``{"adc_bits": 6}``). The first
            matching pattern wins.
        backend: ``"native"`` (analogsim's tiles) or ``"aihwkit"`` (IBM aihwkit's inference
            tiles simulating the same card; needs the aihwkit extra, and takes no
            ``exclude``/``per_layer``).
        aihwkit_tile: with ``backend="aihwkit"``: ``"cpp"`` (its C++ tile) or ``"torch"``.

    Returns:
        The converted copy. Its analog layers are in training mode's *live* state until
        :func:`analogsim.program` is called.

    Raises:
        ConversionError: nothing to convert, a pattern that matches no convertible layer, or a
            layer with NaN/inf weights.
    """
    base_chip = load_chip(chip)
    if backend == "aihwkit":
        if exclude or per_layer:
            raise ConversionError("backend='aihwkit' converts every layer onto one card; "
                                  "exclude and per_layer are native-backend options")
        from analogsim.backends.aihwkit_backend import convert_with_aihwkit

        return convert_with_aihwkit(model, base_chip, aihwkit_tile)
    if backend != "native":
        raise ConversionError(f"backend must be 'native' or 'aihwkit', got {backend!r}")
    per_layer = dict(per_layer or {})
    if callable(exclude):
        excluded: Callable[[nn.Module, str], bool] = exclude
        exclude_patterns: list[str] = []
    else:
        exclude_patterns = [exclude] if isinstance(exclude, str) else list(exclude)
        excluded = lambda _module, name: _matches(name, exclude_patterns) is not None  # noqa: E731
    root_class = _analog_class(model)
    if root_class is not None:  # the model is a single layer
        _check_finite_weights(model, type(model).__name__)
        return root_class.from_digital(model, base_chip, layer_index=0)
    converted = copy.deepcopy(model)
    replacements: dict[int, nn.Module] = {}
    used_patterns: set[str] = set()
    inside_composite: set[int] = set()  # children of a module converted as a whole
    tiles = 0  # analog layers made so far: the next one's layer index

    for name, module in list(converted.named_modules(remove_duplicate=False)):
        analog_class = _analog_class(module)
        if analog_class is None or id(module) in inside_composite:
            continue
        if analog_class in COMPOSITE_LAYERS.values():  # its children go with it, or stay
            inside_composite |= {id(child) for child in module.modules() if child is not module}
        matched_exclude = _matches(name, exclude_patterns)
        if matched_exclude:
            used_patterns.add(matched_exclude)
        if excluded(module, name):
            continue
        if id(module) not in replacements:
            _check_finite_weights(module, name)
            pattern = _matches(name, per_layer)
            layer_chip = base_chip
            if pattern is not None:
                used_patterns.add(pattern)
                layer_chip = _resolve_chip(base_chip, per_layer[pattern], f"per_layer[{pattern!r}]")
            if type(module).forward not in (digital.forward for digital in
                                            (*ANALOG_LAYERS, *COMPOSITE_LAYERS)):
                log.warning(
                    "%s is a %s with its own forward(); the analog layer computes a "
                    "plain %s instead",
                    name,
                    type(module).__name__,
                    analog_class.__name__,
                )
            replacement = analog_class.from_digital(module, layer_chip, layer_index=tiles)
            replacements[id(module)] = replacement
            for child_name, layer in replacement.named_modules():
                if isinstance(layer, AnalogLayer) and not layer.model_name:
                    layer.model_name = ".".join(filter(None, (name, child_name)))
                    tiles += 1
        _set_submodule(converted, name, replacements[id(module)])

    if not replacements:
        raise ConversionError(
            f"{type(model).__name__} has no nn.Linear or nn.Conv1d/2d/3d layer to convert"
            + (" (all were excluded)" if exclude_patterns or callable(exclude) else "")
        )
    unused = [p for p in [*exclude_patterns, *per_layer] if p not in used_patterns]
    if unused:
        names = [
            n
            for n, m in converted.named_modules()
            if _analog_class(m) is not None or _is_analog(m)
        ]
        raise ConversionError(
            f"the pattern {unused[0]!r} matches no convertible layer; layers are {names}"
        )
    return converted


def _check_finite_weights(module: nn.Module, name: str) -> None:
    for parameter_name, parameter in module.named_parameters():
        if not torch.isfinite(parameter).all():
            raise ConversionError(
                f"layer {name!r} has NaN or infinite values in {parameter_name!r}; fix the "
                "model before converting"
            )


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def to_digital(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every analog layer back as its digital layer (same weights)."""
    digital = copy.deepcopy(model)
    replacements: dict[int, nn.Module] = {}
    inside_composite: set[int] = set()
    for name, module in list(digital.named_modules(remove_duplicate=False)):
        if id(module) in inside_composite:
            continue
        if _is_analog(module):
            inside_composite |= {id(child) for child in module.modules() if child is not module}
            if id(module) not in replacements:
                replacements[id(module)] = module.to_digital()
            _set_submodule(digital, name, replacements[id(module)])
    return digital
