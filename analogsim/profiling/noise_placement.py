"""Placing activation-noise operators in any model (S2 §10; METHODS.md §10).

:func:`insert_noise_operators` places operators through forward hooks, so the model's own
forward, its module tree and its ``state_dict`` keys stay as they are; :func:`noise_sites` lists
the places in the §10 order, and :func:`remove_noise_operators` takes the operators out again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from torch import Tensor, nn

from analogsim.errors import ConversionError, SpecError
from analogsim.profiling.noise_operator import NoiseOperator, check_flag, reseed_operators

logger = logging.getLogger(__name__)

#: Site name of the operator on the model input (index 0 of the §10 order).
MODEL_INPUT = "<input>"
_BATCHNORM = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LazyBatchNorm1d,
    nn.LazyBatchNorm2d,
    nn.LazyBatchNorm3d,
    nn.SyncBatchNorm,
)


def _layers(module: nn.Module, prefix: str, seen: set[int]) -> Iterator[tuple[str, nn.Module]]:
    """(qualified name, module) of every layer below ``module``, in registration order.

    A layer is a module without children or one that holds parameters of its own (an analog
    layer holds its weight beside its tile, ``nn.MultiheadAttention`` beside ``out_proj``);
    the walk does not descend into layers. Shared modules are visited once.
    """
    for name, child in module.named_children():
        if id(child) in seen:
            continue
        seen.add(id(child))
        qualified = f"{prefix}.{name}" if prefix else name
        is_leaf = next(child.children(), None) is None
        if is_leaf or next(child.parameters(recurse=False), None) is not None:
            yield qualified, child
        else:
            yield from _layers(child, qualified, seen)


def noise_sites(model: nn.Module, *, skip_batchnorm: bool = False) -> list[str]:
    """The walking-noise operator sites of a model, in the order of METHODS.md §10.

    Index 0 is :data:`MODEL_INPUT` (noise on the model's first positional input); then one
    site after every layer, in registration order, except ``nn.Flatten`` and, with
    ``skip_batchnorm``, the BatchNorm layers (the "-NN" model variants of S2). A layer is a
    module without children, or one that holds parameters of its own, whose children are then
    part of it (so an analog layer is one site, not its tile). For the LeNet-5 and MLP models
    of S2 this gives their 12 / 16 / 11 / 8 operator indices.

    Registration order is the call order for ``nn.Sequential`` and for most custom models; for
    a model whose forward calls its modules in another order, name the sites instead of using
    indices. A module registered once but called twice is one site, and its operator perturbs
    both calls. A model without children is itself its one layer, named ``""``.

    Args:
        model: any module.
        skip_batchnorm: leave out BatchNorm layers (S2 Table 1 "w/ BN" models).

    Returns:
        Site names: :data:`MODEL_INPUT`, then qualified module names.
    """
    layers = [("", model)] if next(model.children(), None) is None else _layers(model, "", set())
    sites = [MODEL_INPUT]
    for name, module in layers:
        if isinstance(module, nn.Flatten):
            continue
        if skip_batchnorm and isinstance(module, _BATCHNORM):
            continue
        sites.append(name)
    return sites


def _input_hook(operator: NoiseOperator) -> Callable[[nn.Module, tuple[Any, ...]], Any]:
    def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if not args or not isinstance(args[0], Tensor):
            raise ConversionError(
                "The input noise operator perturbs the model's first positional argument, "
                f"which must be a Tensor; got {type(args[0]).__name__ if args else 'none'}."
            )
        operator.training = module.training
        return (operator(args[0]), *args[1:])

    return hook


def _output_hook(operator: NoiseOperator) -> Callable[[nn.Module, tuple[Any, ...], Any], Any]:
    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> Tensor:
        if not isinstance(output, Tensor):
            raise ConversionError(
                f"A noise operator follows module {operator.site!r}, whose output is a "
                f"{type(output).__name__}, not a Tensor; choose other sites with 'after='."
            )
        operator.training = module.training
        return operator(output)

    return hook


def _resolve_sites(
    model: nn.Module, after: Sequence[str | int] | None, skip_batchnorm: bool
) -> list[str]:
    ordered = noise_sites(model, skip_batchnorm=skip_batchnorm)
    if after is None:
        return ordered
    if isinstance(after, str | int):
        raise SpecError(
            f"The 'after' of insert_noise_operators must be a list of names or indices; "
            f"got {after!r} (wrap it in a list)."
        )
    modules = dict(model.named_modules())
    sites: list[str] = []
    for entry in after:
        if isinstance(entry, int) and not isinstance(entry, bool):
            if not 0 <= entry < len(ordered):
                raise SpecError(
                    f"The 'after' index {entry} of insert_noise_operators is out of range: the "
                    f"model has {len(ordered)} operator sites (0–{len(ordered) - 1}; "
                    "see noise_sites(model))."
                )
            site = ordered[entry]
        elif isinstance(entry, str):
            if entry != MODEL_INPUT and entry not in modules:
                known = ", ".join(repr(name) for name in ordered[1:6])
                raise ConversionError(
                    f"The 'after' entry {entry!r} of insert_noise_operators names no module of "
                    f"the model; expected {MODEL_INPUT!r} or a qualified name such as {known}."
                )
            site = entry
        else:
            raise SpecError(
                "The 'after' entries of insert_noise_operators must be module names or "
                f"indices; got {entry!r}."
            )
        if site in sites:
            raise SpecError(f"The 'after' of insert_noise_operators selects site {site!r} twice.")
        sites.append(site)
    return sites


def insert_noise_operators(
    model: nn.Module,
    factory: Callable[[], NoiseOperator],
    *,
    seed: int,
    after: Sequence[str | int] | None = None,
    skip_batchnorm: bool = False,
) -> list[NoiseOperator]:
    """Place noise operators in a model, in place, through forward hooks (S2 §3.1).

    The model's forward, module tree and ``state_dict`` keys are unchanged: the operator on
    :data:`MODEL_INPUT` is a forward pre-hook on the model that perturbs its first positional
    argument, and every other operator is a forward hook on its module that perturbs the
    module's output (which must be a Tensor). Each operator follows the train/eval mode of
    the module it is attached to. :func:`remove_noise_operators` takes them out again.

    Operator k (its position in the returned list) is reseeded from
    ``SeedSequence(seed, spawn_key=(k,))``, so operators draw independent streams and a
    run is reproducible from ``seed`` alone.

    Args:
        model: any module (``nn.Sequential`` or custom).
        factory: builds a new :class:`NoiseOperator` per call, e.g.
            ``lambda: NoiseOperator(AdditiveNoise(0.5))``.
        seed: root seed of the operators' generators (int ≥ 0).
        after: the sites: qualified module names (any module, or :data:`MODEL_INPUT`) and/or
            indices into :func:`noise_sites` ``(model, skip_batchnorm=...)``. None (default)
            places one operator at every site of the §10 order.
        skip_batchnorm: with ``after=None`` or indices, leave BatchNorm layers out of the
            order (S2 "-NN" models).

    Returns:
        The operators, in the order of ``after`` (the §10 order when ``after`` is None), so
        that index k of the list is walking-noise layer k.
    """
    check_flag("insert_noise_operators", "skip_batchnorm", skip_batchnorm)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise SpecError(f"The 'seed' of insert_noise_operators must be an int ≥ 0; got {seed!r}.")
    sites = _resolve_sites(model, after, skip_batchnorm)
    operators: list[NoiseOperator] = []
    for _ in sites:
        operator = factory()
        if not isinstance(operator, NoiseOperator):
            raise SpecError(
                "The 'factory' of insert_noise_operators must return a NoiseOperator; "
                f"got {type(operator).__name__}."
            )
        if operator.site is not None or any(operator is other for other in operators):
            raise SpecError(
                "The 'factory' of insert_noise_operators returned an operator that is already "
                "placed; it must build a new NoiseOperator on every call."
            )
        operators.append(operator)

    # Every check passed: only now touch the model, so that a failure leaves it as it was.
    modules = dict(model.named_modules())
    reseed_operators(operators, seed)
    for site, operator in zip(sites, operators, strict=True):
        operator.site = site
        if site == MODEL_INPUT:
            operator.hook = model.register_forward_pre_hook(_input_hook(operator))
        else:
            operator.hook = modules[site].register_forward_hook(_output_hook(operator))
    logger.debug("inserted %d noise operators at %s", len(operators), sites)
    return operators


def remove_noise_operators(operators: Sequence[NoiseOperator]) -> None:
    """Detach operators placed by :func:`insert_noise_operators`; the model is clean again."""
    for operator in operators:
        if operator.hook is not None:
            operator.hook.remove()
        operator.hook = None
        operator.site = None
