"""The three Gaussian laws of activation noise (S2 §3; METHODS.md §9), as pure functions and
frozen dataclasses:

- :class:`AdditiveNoise`:       y = x + N(0, σ²)
- :class:`MultiplicativeNoise`: y = x ⊙ N(1, σ²)
- :class:`MixedNoise`:          y = x ⊙ N(1, σ_mul²) + N(0, σ_add²)   (multiplicative first)
                                y = (x + N(0, σ_add²)) ⊙ N(1, σ_mul²) (additive first)

σ is absolute (the unit of the activations), the same for every element. The walking-noise
repository (UniHD-CEG/walking-noise ``noise_operator/impl.py``) draws with ``torch.normal`` from
the global RNG; here every draw comes from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from analogsim.errors import SpecError


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
