"""``convert`` a PyTorch model onto analog tiles, and ``to_digital`` back.

Conversion swaps every ``nn.Linear`` / ``nn.Conv1d/2d/3d`` (subclasses, grouped and depthwise
convolutions included) and HuggingFace transformers' ``Conv1D`` (recognised by class name,
:data:`~analogsim.tiles.NAMED_LAYERS`) for its analog layer, in a deep copy of the model or,
with ``inplace=True``, in the model itself. A module shared by several parents becomes one
analog layer shared the same way. Modules that multiply by their own weight matrices in their
own code (``nn.MultiheadAttention``, ``nn.LSTM``/``GRU``/``RNN``) become *composite* analog
modules (:data:`~analogsim.tiles.COMPOSITE_LAYERS`) whose projections are analog layers; their
children are not converted again.

Weights and ties:

- An analog layer takes over the ``nn.Parameter`` objects of the layer it replaces (no copy),
  so weights shared between layers stay shared and an optimizer built on an ``inplace=True``
  model keeps working.
- Two *different* layers sharing one weight both convert: they train one weight, and each is
  programmed on its own tiles (two physical copies of the matrix, independent programming
  noise). A module used twice is one layer on one set of tiles.
- A layer whose weight is an embedding's (an lm_head tied to the token embedding) stays
  digital: the table is looked up digitally, and a tile copy would untie it.

Nothing stays digital silently: ``convert`` emits one :class:`DigitalRemainderWarning` naming
each module that multiplies by a weight matrix and stays digital, with its reason
(:func:`~analogsim.model_summary.digital_remainder`). Embeddings are lookups, not products:
they are named in that warning and in :func:`analogsim.summary`, but alone raise no warning.
"""

from __future__ import annotations

import copy
import fnmatch
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from analogsim.cards import Chip, load_chip
from analogsim.errors import ConversionError, DigitalRemainderWarning
from analogsim.model_summary import (
    DigitalRemainder,
    analog_layers,
    convertible,
    digital_remainder,
    embedding_weights,
    is_analog,
    tied_embedding,
)
from analogsim.tiles import ANALOG_LAYERS, COMPOSITE_LAYERS, AnalogLayer

log = logging.getLogger(__name__)

LayerFilter = Iterable[str] | Callable[[nn.Module, str], bool]
ChipSpec = Chip | str | Mapping[str, Any]


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


def _adopt_parameters(target: nn.Module, source: nn.Module) -> None:
    """Make ``target`` use ``source``'s weight and bias Parameter objects where they have the
    same shape and dtype, so ties survive and no second copy stays in memory."""
    for name in ("weight", "bias"):
        mine, theirs = getattr(target, name, None), getattr(source, name, None)
        if (isinstance(mine, nn.Parameter) and isinstance(theirs, nn.Parameter)
                and mine.shape == theirs.shape and mine.dtype == theirs.dtype):
            setattr(target, name, theirs)


def _warn_digital(remainder: DigitalRemainder, analog_weights: int) -> None:
    """One :class:`DigitalRemainderWarning` listing what multiplies digitally, if anything."""
    products = remainder.products
    if not products:
        return
    total = max(analog_weights + remainder.product_weights, 1)
    lines = [f"convert left {len(products)} module(s) that multiply by a weight matrix digital "
             f"({remainder.product_weights:,} of {total:,} matrix weights, "
             f"{100 * remainder.product_weights / total:.1f} %):"]
    lines += [f"  {layer.name!r} ({layer.kind}, {'×'.join(map(str, layer.shape))}): "
              f"{layer.reason}"
              for layer in products]
    lookups = [layer.name for layer in remainder.layers if layer.lookup]
    if lookups:
        lines.append(f"Embeddings (lookups, not products) stay digital too: {lookups}.")
    lines.append("analogsim.summary(model) shows the analog and digital layers.")
    warnings.warn(DigitalRemainderWarning("\n".join(lines), tuple(p.name for p in products)),
                  stacklevel=3)


def _warn_aihwkit_digital(model: nn.Module) -> None:
    """aihwkit's conversion swaps Linear and Conv layers only: warn, naming them, about the
    modules the native backend would put on tiles that it leaves digital (attention,
    recurrent layers, GPT-2's Conv1D)."""
    layer_types = tuple(ANALOG_LAYERS)
    left = [(name, type(module).__name__) for name, module in model.named_modules()
            if convertible(module) is not None and not isinstance(module, layer_types)]
    if left:
        lines = [f"  {name!r} ({kind}): the aihwkit backend converts nn.Linear and nn.Conv "
                 "layers only; use backend='native'" for name, kind in left]
        warnings.warn(DigitalRemainderWarning(
            f"convert left {len(left)} module(s) that multiply by weight matrices digital:\n"
            + "\n".join(lines), tuple(name for name, _ in left)), stacklevel=3)


def convert(
    model: nn.Module,
    chip: Chip | str,
    *,
    exclude: LayerFilter = (),
    per_layer: Mapping[str, ChipSpec] | None = None,
    inplace: bool = False,
    backend: str = "native",
    aihwkit_tile: str = "cpp",
) -> nn.Module:
    """``model`` with its Linear/Conv layers on analog tiles of ``chip`` (a copy by default).

    Args:
        model: any ``nn.Module``; it is not modified unless ``inplace``.
        chip: a :class:`Chip` or a card name/path for :func:`load_chip`.
        exclude: qualified names or glob patterns (``"classifier.*"``) of layers to keep
            digital, or a function ``(module, name) -> bool`` that says which.
        per_layer: qualified name or glob pattern → the chip for those layers: a Chip, a card
            name, or a dict of overrides applied to ``chip`` (``{"adc_bits": 6}``). The first
            matching pattern wins.
        inplace: convert ``model`` itself and return it, without the deep copy. Peak memory
            then grows by about one layer, not by the model (peak RSS over the model's,
            measured: 100.7 M-weight MLP of 384 MiB, +72 MiB in place vs +612 MiB copied;
            GPT-2 small, 124 M weights, +147 vs +710 to 850 MiB). The model is only modified once
            every layer has converted. A model that is itself one layer is returned as a
            new analog layer either way.
        backend: ``"native"`` (analogsim's tiles) or ``"aihwkit"`` (IBM aihwkit's inference
            tiles simulating the same card; needs the aihwkit extra, and takes no
            ``exclude``/``per_layer``/``inplace``).
        aihwkit_tile: with ``backend="aihwkit"``: ``"cpp"`` (its C++ tile) or ``"torch"``.

    Returns:
        The converted model. Its analog layers are in training mode's *live* state until
        :func:`analogsim.program` is called.

    Warns:
        DigitalRemainderWarning: once, naming every module that multiplies by a weight matrix
            and stays digital, with its reason (see
            :func:`~analogsim.model_summary.digital_remainder`).

    Raises:
        ConversionError: nothing to convert, a pattern that matches no convertible layer, or a
            layer with NaN/inf weights.
    """
    base_chip = load_chip(chip)
    if backend == "aihwkit":
        if exclude or per_layer or inplace:
            raise ConversionError("backend='aihwkit' converts every layer of a copy onto one "
                                  "card; exclude, per_layer and inplace are native-backend "
                                  "options")
        from analogsim.backends.aihwkit_backend import convert_with_aihwkit

        _warn_aihwkit_digital(model)
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
    root = convertible(model)
    if root is not None:  # the model is a single layer
        _check_finite_weights(model, type(model).__name__)
        layer = root[1].from_digital(model, base_chip, layer_index=0)
        if inplace and isinstance(layer, AnalogLayer):
            _adopt_parameters(layer, model)
        return layer
    converted = model if inplace else copy.deepcopy(model)
    embeddings = embedding_weights(converted)
    replacements: dict[int, nn.Module] = {}
    placements: list[tuple[str, int]] = []  # (name, id of the module replaced there)
    used_patterns: set[str] = set()
    inside_composite: set[int] = set()  # children of a module converted as a whole
    tiles = 0  # analog layers made so far: the next one's layer index

    for name, module in list(converted.named_modules(remove_duplicate=False)):
        match = convertible(module)
        if match is None or id(module) in inside_composite:
            continue
        digital_class, analog_class = match
        if analog_class in COMPOSITE_LAYERS.values():  # its children go with it, or stay
            inside_composite |= {id(child) for child in module.modules() if child is not module}
        matched_exclude = _matches(name, exclude_patterns)
        if matched_exclude:
            used_patterns.add(matched_exclude)
        if excluded(module, name) or tied_embedding(module, embeddings) is not None:
            continue
        if id(module) not in replacements:
            _check_finite_weights(module, name)
            pattern = _matches(name, per_layer)
            layer_chip = base_chip
            if pattern is not None:
                used_patterns.add(pattern)
                layer_chip = _resolve_chip(base_chip, per_layer[pattern], f"per_layer[{pattern!r}]")
            if type(module).forward is not digital_class.forward:
                log.warning("%s is a %s with its own forward(); the analog layer computes a "
                            "plain %s instead", name, type(module).__name__,
                            analog_class.__name__)
            replacement = analog_class.from_digital(module, layer_chip, layer_index=tiles)
            if isinstance(replacement, AnalogLayer):
                _adopt_parameters(replacement, module)  # frees the copy; keeps ties
            replacements[id(module)] = replacement
            for child_name, layer in replacement.named_modules():
                if isinstance(layer, AnalogLayer) and not layer.model_name:
                    layer.model_name = ".".join(filter(None, (name, child_name)))
                    tiles += 1
        placements.append((name, id(module)))

    if not replacements:
        leftovers = [f"{layer.name!r}: {layer.reason}"
                     for layer in digital_remainder(converted).products]
        raise ConversionError(
            f"{type(model).__name__} has no nn.Linear or nn.Conv1d/2d/3d layer to convert"
            + (" (all were excluded)" if exclude_patterns or callable(exclude) else "")
            + (f"; digital: {', '.join(leftovers)}" if leftovers else "")
        )
    unused = [p for p in [*exclude_patterns, *per_layer] if p not in used_patterns]
    if unused:
        names = [n for n, m in converted.named_modules()
                 if convertible(m) is not None or is_analog(m)]
        raise ConversionError(
            f"the pattern {unused[0]!r} matches no convertible layer; layers are {names}"
        )
    for name, module_id in placements:  # only now: an error above leaves the model as it was
        _set_submodule(converted, name, replacements[module_id])
    analog_weights = {id(layer.weight): layer.weight.numel() for _, layer in
                      analog_layers(converted)}
    _warn_digital(digital_remainder(converted), sum(analog_weights.values()))
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
    """A copy of ``model`` with every analog layer back as its digital layer (same weights;
    weights shared between layers stay shared). A model that is itself one analog layer or
    composite module comes back as its digital module."""
    if is_analog(model):
        return copy.deepcopy(model).to_digital()
    digital = copy.deepcopy(model)
    replacements: dict[int, nn.Module] = {}
    inside_composite: set[int] = set()
    for name, module in list(digital.named_modules(remove_duplicate=False)):
        if id(module) in inside_composite:
            continue
        if is_analog(module):
            inside_composite |= {id(child) for child in module.modules() if child is not module}
            if id(module) not in replacements:
                replacements[id(module)] = module.to_digital()
                if isinstance(module, AnalogLayer):
                    _adopt_parameters(replacements[id(module)], module)
            _set_submodule(digital, name, replacements[id(module)])
    return digital
