"""Activation-noise operators and their placement in a model (S2 §3, §7; METHODS.md §9–§10).

A noise operator perturbs the output of the module before it, with a fresh i.i.d. draw per
element, per sample and per forward pass. Three Gaussian laws, each a frozen dataclass:

- :class:`AdditiveNoise`:       y = x + N(0, σ²)
- :class:`MultiplicativeNoise`: y = x ⊙ N(1, σ²)
- :class:`MixedNoise`:          y = x ⊙ N(1, σ_mul²) + N(0, σ_add²)   (multiplicative first)
                                y = (x + N(0, σ_add²)) ⊙ N(1, σ_mul²) (additive first)

σ is absolute (the unit of the activations), the same for every element. The walking-noise
repository (UniHD-CEG/walking-noise ``noise_operator/impl.py``) draws with ``torch.normal`` from
the global RNG; here every draw comes from the operator's own ``torch.Generator``.

:class:`NoiseOperator` is the ``nn.Module`` that applies a law, with the switches of the original
``NoiseOperator`` (enable in training / in eval, normalisation to the input size), the gradient
choice of METHODS.md §9 and the n_i repetitions of guided multi-execution (§12).

:func:`insert_noise_operators` places operators in any model through forward hooks, so the
model's own forward, its module tree and its ``state_dict`` keys stay as they are.
:func:`activate_operators` then switches between walking noise (one operator noisy) and global
noise (all noisy).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from analogsim.errors import ConversionError, SpecError, StateError

logger = logging.getLogger(__name__)

GradMode = Literal["sampled", "ste"]
GRAD_MODES: tuple[GradMode, ...] = ("sampled", "ste")

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


# ----------------------------------------------------------------------------- pure functions


def _standard_normal(x: Tensor, generator: torch.Generator) -> Tensor:
    """N(0, 1) of x's shape, dtype and device."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def additive_noise(x: Tensor, sigma: float, generator: torch.Generator) -> Tensor:
    """One draw of y = x + N(0, σ²), independent per element.

    Args:
        x: activations, any shape.
        sigma: noise std, in the unit of x, ≥ 0.
        generator: source of the draw, on x's device.

    Returns:
        y, same shape as x; ∂y/∂x = 1.
    """
    return x + sigma * _standard_normal(x, generator)


def multiplicative_noise(x: Tensor, sigma: float, generator: torch.Generator) -> Tensor:
    """One draw of y = x ⊙ N(1, σ²), independent per element (mean 1, so unbiased).

    Args:
        x: activations, any shape.
        sigma: std of the factor (dimensionless), ≥ 0.
        generator: source of the draw, on x's device.

    Returns:
        y, same shape as x; ∂y/∂x is the sampled factor.
    """
    return x * (1.0 + sigma * _standard_normal(x, generator))


def mixed_noise(
    x: Tensor,
    sigma_mul: float,
    sigma_add: float,
    generator: torch.Generator,
    *,
    multiplicative_first: bool = True,
) -> Tensor:
    """One draw of mixed noise, S2 Eq. 3.

    Multiplicative first: y = x ⊙ N(1, σ_mul²) + N(0, σ_add²); additive first:
    y = (x + N(0, σ_add²)) ⊙ N(1, σ_mul²). The draws happen in the order of application, as in
    the walking-noise ``CombinedGaussianNoise``.

    Args:
        x: activations, any shape.
        sigma_mul: std of the multiplicative factor (dimensionless), ≥ 0.
        sigma_add: std of the additive term, in the unit of x, ≥ 0.
        generator: source of the draws, on x's device.
        multiplicative_first: the order of the two perturbations.

    Returns:
        y, same shape as x.
    """
    if multiplicative_first:
        return additive_noise(multiplicative_noise(x, sigma_mul, generator), sigma_add, generator)
    return multiplicative_noise(additive_noise(x, sigma_add, generator), sigma_mul, generator)


# --------------------------------------------------------------------------------- noise laws


def _check_sigma(owner: str, name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(f"The '{name}' of {owner} must be a finite number ≥ 0; got {value!r}.")
    if value < 0:
        raise SpecError(f"The '{name}' of {owner} must be ≥ 0; got {value!r}.")


@dataclass(frozen=True)
class AdditiveNoise:
    """y = x + N(0, σ²) (S2 §3).

    Attributes:
        sigma: noise std, in the unit of the activations.
    """

    sigma: float

    def __post_init__(self) -> None:
        _check_sigma("AdditiveNoise", "sigma", self.sigma)

    def sample(self, x: Tensor, generator: torch.Generator, scale: float = 1.0) -> Tensor:
        """One noisy copy of x, with σ multiplied by ``scale``."""
        return additive_noise(x, self.sigma * scale, generator)


@dataclass(frozen=True)
class MultiplicativeNoise:
    """y = x ⊙ N(1, σ²) (S2 §3).

    Attributes:
        sigma: std of the factor (dimensionless).
    """

    sigma: float

    def __post_init__(self) -> None:
        _check_sigma("MultiplicativeNoise", "sigma", self.sigma)

    def sample(self, x: Tensor, generator: torch.Generator, scale: float = 1.0) -> Tensor:
        """One noisy copy of x, with σ multiplied by ``scale``."""
        return multiplicative_noise(x, self.sigma * scale, generator)


@dataclass(frozen=True)
class MixedNoise:
    """Multiplicative and additive noise together, in either order (S2 §7, Eq. 3).

    This is the walking-noise ``GaussCombinedDirectConfig``; :meth:`from_amplitude` builds the
    ``GaussCombinedConfig`` parametrisation used in the S2 sweeps.

    Attributes:
        sigma_mul: std of the multiplicative factor (dimensionless).
        sigma_add: std of the additive term, in the unit of the activations.
        multiplicative_first: True for y = x ⊙ N(1, σ_mul²) + N(0, σ_add²), False for
            y = (x + N(0, σ_add²)) ⊙ N(1, σ_mul²).
    """

    sigma_mul: float
    sigma_add: float
    multiplicative_first: bool = True

    def __post_init__(self) -> None:
        _check_sigma("MixedNoise", "sigma_mul", self.sigma_mul)
        _check_sigma("MixedNoise", "sigma_add", self.sigma_add)
        if not isinstance(self.multiplicative_first, bool):
            raise SpecError(
                "The 'multiplicative_first' of MixedNoise must be a bool; "
                f"got {self.multiplicative_first!r}."
            )

    @classmethod
    def from_amplitude(
        cls, amplitude: float, ratio: float, multiplicative_first: bool = True
    ) -> MixedNoise:
        """σ_add = A·r and σ_mul = A·(1 − r), the walking-noise ``GaussCombinedConfig``.

        Args:
            amplitude: A, ≥ 0.
            ratio: r, the additive share, in [0, 1].
            multiplicative_first: the order of the two perturbations.

        Returns:
            The equivalent :class:`MixedNoise`.
        """
        _check_sigma("MixedNoise.from_amplitude", "amplitude", amplitude)
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
            raise SpecError(
                f"The 'ratio' of MixedNoise.from_amplitude must be a number in [0, 1]; "
                f"got {ratio!r}."
            )
        return cls(
            sigma_mul=amplitude * (1 - ratio),
            sigma_add=amplitude * ratio,
            multiplicative_first=multiplicative_first,
        )

    def sample(self, x: Tensor, generator: torch.Generator, scale: float = 1.0) -> Tensor:
        """One noisy copy of x, with both σ multiplied by ``scale``."""
        return mixed_noise(
            x,
            self.sigma_mul * scale,
            self.sigma_add * scale,
            generator,
            multiplicative_first=self.multiplicative_first,
        )


NoiseLaw = AdditiveNoise | MultiplicativeNoise | MixedNoise


# ---------------------------------------------------------------------------------- operator


def _check_flag(owner: str, name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise SpecError(f"The '{name}' of {owner} must be a bool; got {value!r}.")


class NoiseOperator(nn.Module):
    """Applies a noise law to its input; the building block of walking noise (S2 §3).

    The operator is noisy when it is :attr:`active` and enabled for the current mode
    (``enable_in_training`` in ``train()``, ``enable_in_eval`` in ``eval()``); otherwise it
    returns its input unchanged. With n = :attr:`repetitions` > 1 it passes the same input
    through n independent draws and returns their mean (guided multi-execution, S2 §8), which
    divides the noise std by √n.

    Gradient (METHODS.md §9): ``grad_mode="sampled"`` differentiates the sampled expression,
    as the walking-noise code does (∂y/∂x = 1 for additive noise, the sampled factor for
    multiplicative noise); ``grad_mode="ste"`` passes the gradient straight through
    (∂y/∂x = 1) while the forward value stays noisy.

    Randomness comes from the operator's own generator: pass ``seed`` (the generator is then
    created on the device of the first input, and again from the same seed if the input moves
    to another device) or a ``generator`` (which must be on the input's device), or call
    :meth:`reseed`. A noisy forward without either raises :class:`StateError`.

    Args:
        noise: the law, :class:`AdditiveNoise`, :class:`MultiplicativeNoise` or
            :class:`MixedNoise`.
        grad_mode: ``"sampled"`` (default) or ``"ste"``.
        enable_in_training: noisy in training mode (default True).
        enable_in_eval: noisy in evaluation mode (default True; S2 evaluates with noise).
        normalize_to_input_size: divide σ by the number of elements per sample, ∏shape[1:]
            (not its square root), as the walking-noise option of that name does.
        repetitions: n ≥ 1, draws averaged per forward.
        seed: seed of the operator's generator (int ≥ 0).
        generator: an explicit generator, instead of ``seed``.

    Shape:
        Input (B, ...) with the batch first; output the same shape.

    Attributes:
        active: False makes the operator the identity regardless of mode (walking noise).
        site: where :func:`insert_noise_operators` placed it (a qualified module name or
            :data:`MODEL_INPUT`), else None.
    """

    def __init__(
        self,
        noise: NoiseLaw,
        *,
        grad_mode: GradMode = "sampled",
        enable_in_training: bool = True,
        enable_in_eval: bool = True,
        normalize_to_input_size: bool = False,
        repetitions: int = 1,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if grad_mode not in GRAD_MODES:
            raise SpecError(
                f"The 'grad_mode' of NoiseOperator must be one of {GRAD_MODES}; got {grad_mode!r}."
            )
        _check_flag("NoiseOperator", "enable_in_training", enable_in_training)
        _check_flag("NoiseOperator", "enable_in_eval", enable_in_eval)
        _check_flag("NoiseOperator", "normalize_to_input_size", normalize_to_input_size)
        if seed is not None and generator is not None:
            raise SpecError("NoiseOperator takes 'seed' or 'generator', not both.")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise SpecError(
                f"The 'generator' of NoiseOperator must be a torch.Generator; got {generator!r}."
            )
        self.noise = noise
        self.repetitions = repetitions
        self.grad_mode: GradMode = grad_mode
        self.enable_in_training = enable_in_training
        self.enable_in_eval = enable_in_eval
        self.normalize_to_input_size = normalize_to_input_size
        self.active = True
        self.site: str | None = None
        self._hook: RemovableHandle | None = None
        self._seed: int | None = None
        self._generator = generator
        if seed is not None:
            self.reseed(seed)

    @property
    def noise(self) -> NoiseLaw:
        """The noise law; assign a new one to sweep σ."""
        return self._noise

    @noise.setter
    def noise(self, law: NoiseLaw) -> None:
        if not isinstance(law, AdditiveNoise | MultiplicativeNoise | MixedNoise):
            raise SpecError(
                "The 'noise' of NoiseOperator must be an AdditiveNoise, MultiplicativeNoise or "
                f"MixedNoise; got {law!r}."
            )
        self._noise = law

    @property
    def repetitions(self) -> int:
        """n_i, the draws averaged per forward (guided multi-execution)."""
        return self._repetitions

    @repetitions.setter
    def repetitions(self, count: int) -> None:
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
            raise SpecError(
                f"The 'repetitions' of NoiseOperator must be an int ≥ 1; got {count!r}."
            )
        self._repetitions = int(count)

    @property
    def is_noisy(self) -> bool:
        """Whether a forward in the current mode adds noise."""
        enabled = self.enable_in_training if self.training else self.enable_in_eval
        return self.active and enabled

    def reseed(self, seed: int) -> None:
        """Restart the operator's random stream from ``seed`` (an int ≥ 0).

        Replaces any generator passed to the constructor; the new one is created on the device
        of the next input.
        """
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise SpecError(f"The 'seed' of NoiseOperator.reseed must be an int ≥ 0; got {seed!r}.")
        self._seed = int(seed)
        self._generator = None

    def _generator_for(self, device: torch.device) -> torch.Generator:
        generator = self._generator
        if generator is not None and generator.device == device:
            return generator
        if self._seed is None:
            if generator is None:
                raise StateError(
                    f"NoiseOperator at site {self.site!r} has no random generator; pass seed= "
                    "or generator= to its constructor, or call reseed(seed)."
                )
            raise StateError(
                f"NoiseOperator at site {self.site!r} has a generator on {generator.device} but "
                f"its input is on {device}; pass a generator on {device} or use reseed(seed)."
            )
        logger.debug(
            "NoiseOperator at site %r: generator from seed %d on %s", self.site, self._seed, device
        )
        self._generator = torch.Generator(device=device).manual_seed(self._seed)
        return self._generator

    def forward(self, x: Tensor) -> Tensor:
        """Noisy x (the mean of n draws), or x itself when not :attr:`is_noisy`."""
        if not self.is_noisy:
            return x
        generator = self._generator_for(x.device)
        scale = 1.0 / math.prod(x.shape[1:]) if self.normalize_to_input_size else 1.0
        noisy = self._noise.sample(x, generator, scale)
        for _ in range(1, self._repetitions):
            noisy = noisy + self._noise.sample(x, generator, scale)
        if self._repetitions > 1:
            noisy = noisy / self._repetitions
        if self.grad_mode == "ste":
            return x + (noisy - x).detach()
        return noisy

    def extra_repr(self) -> str:
        return (
            f"{self._noise}, grad_mode={self.grad_mode!r}, repetitions={self._repetitions}, "
            f"active={self.active}, enable_in_training={self.enable_in_training}, "
            f"enable_in_eval={self.enable_in_eval}, "
            f"normalize_to_input_size={self.normalize_to_input_size}"
        )


# --------------------------------------------------------------------------------- placement


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
    _check_flag("insert_noise_operators", "skip_batchnorm", skip_batchnorm)
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
            operator._hook = model.register_forward_pre_hook(_input_hook(operator))
        else:
            operator._hook = modules[site].register_forward_hook(_output_hook(operator))
    logger.debug("inserted %d noise operators at %s", len(operators), sites)
    return operators


def reseed_operators(operators: Sequence[NoiseOperator], seed: int) -> None:
    """Restart operator k's stream from ``SeedSequence(seed, spawn_key=(k,))``: independent
    streams per operator, reproducible from ``seed`` alone."""
    for k, operator in enumerate(operators):
        seed_k = np.random.SeedSequence(int(seed), spawn_key=(k,)).generate_state(1, np.uint64)
        operator.reseed(int(seed_k[0]))


def remove_noise_operators(operators: Sequence[NoiseOperator]) -> None:
    """Detach operators placed by :func:`insert_noise_operators`; the model is clean again."""
    for operator in operators:
        if operator._hook is not None:
            operator._hook.remove()
        operator._hook = None
        operator.site = None


def activate_operators(operators: Sequence[NoiseOperator], layer_index: int | None = None) -> None:
    """Choose which operators are noisy (S2 §3.1).

    Args:
        operators: the list returned by :func:`insert_noise_operators`.
        layer_index: walking noise: only ``operators[layer_index]`` is noisy and the others
            are the identity. None: global noise, every operator is noisy.
    """
    if layer_index is not None and (
        isinstance(layer_index, bool)
        or not isinstance(layer_index, int | np.integer)
        or not 0 <= layer_index < len(operators)
    ):
        raise SpecError(
            f"The 'layer_index' of activate_operators must be None or an int in "
            f"[0, {len(operators) - 1}]; got {layer_index!r}."
        )
    for index, operator in enumerate(operators):
        operator.active = layer_index is None or index == layer_index


def set_repetitions(operators: Sequence[NoiseOperator], repetitions: Sequence[int]) -> None:
    """Give each operator its n_i of guided multi-execution (S2 §8).

    Args:
        operators: the list returned by :func:`insert_noise_operators`.
        repetitions: n_i per operator, same length, each ≥ 1 (e.g. from
            :func:`~analogsim.profiling.guided.allocate_repetitions`).
    """
    if len(repetitions) != len(operators):
        raise SpecError(
            f"The 'repetitions' of set_repetitions must have one entry per operator "
            f"({len(operators)}); got {len(repetitions)}."
        )
    for index, count in enumerate(repetitions):
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
            raise SpecError(
                f"The 'repetitions' of set_repetitions must be ints ≥ 1; got {count!r} at "
                f"index {index}."
            )
    for operator, count in zip(operators, repetitions, strict=True):
        operator.repetitions = count
