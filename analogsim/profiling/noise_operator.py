"""The activation-noise operator: an ``nn.Module`` that applies a noise law (S2 §3, §7;
METHODS.md §9, §12).

A noise operator perturbs the output of the module before it, with a fresh i.i.d. draw per
element, per sample and per forward pass, from the operator's own ``torch.Generator``.
:class:`NoiseOperator` has the switches of the original ``NoiseOperator`` (enable in training /
in eval, normalisation to the input size), the gradient choice of METHODS.md §9 and the n_i
repetitions of guided multi-execution (§12). The functions below act on the operators a model
holds: :func:`activate_operators` switches between walking noise (one operator noisy) and
global noise (all noisy).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from analogsim.errors import SpecError, StateError
from analogsim.profiling.noise_laws import (
    AdditiveNoise,
    MixedNoise,
    MultiplicativeNoise,
    NoiseLaw,
)

logger = logging.getLogger(__name__)

GradMode = Literal["sampled", "ste"]
GRAD_MODES: tuple[GradMode, ...] = ("sampled", "ste")


def check_flag(owner: str, name: str, value: object) -> None:
    """Refuse a switch that is not a bool, naming its owner and the value."""
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
        check_flag("NoiseOperator", "enable_in_training", enable_in_training)
        check_flag("NoiseOperator", "enable_in_eval", enable_in_eval)
        check_flag("NoiseOperator", "normalize_to_input_size", normalize_to_input_size)
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
        self.hook: RemovableHandle | None = None  # set by insert_noise_operators
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


def reseed_operators(operators: Sequence[NoiseOperator], seed: int) -> None:
    """Restart operator k's stream from ``SeedSequence(seed, spawn_key=(k,))``: independent
    streams per operator, reproducible from ``seed`` alone."""
    for k, operator in enumerate(operators):
        seed_k = np.random.SeedSequence(int(seed), spawn_key=(k,)).generate_state(1, np.uint64)
        operator.reseed(int(seed_k[0]))


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
