"""Gaussian weight perturbations: which weights, how σ is scaled, perturb and restore.

Shared convention (METHODS.md §0): only the ``.weight`` of convolutions and fully connected
layers (digital or analog) is perturbed, never biases or batch norm.

Scalings of the noise std (METHODS.md §1, §6):

- ``absolute``: σ (S0's attack and naive noise-aware training);
- ``additive_maxabs``: σ · max|W_l| per layer (Jacobson et al. RWP, CrossSim's
  NormalIndependentDevice);
- ``multiplicative``: σ · |W| per weight (CrossSim's NormalProportionalDevice);
- ``filterwise_norm``: σ · ‖W_{l,k,:}‖₂ per output filter k (Li et al. RWP, σ = γ).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn

from analogsim.errors import UsageError
from analogsim.evaluation import Evaluation, evaluate
from analogsim.tiles import ANALOG_LAYERS, AnalogLayer

NoiseKind = Literal["absolute", "additive_maxabs", "multiplicative", "filterwise_norm"]
NOISE_KINDS: tuple[str, ...] = ("absolute", "additive_maxabs", "multiplicative",
                                "filterwise_norm")


def perturbable_weights(model: nn.Module) -> list[nn.Parameter]:
    """The ``.weight`` of every Conv/Linear layer (digital or analog), each once, in order."""
    weights, seen = [], set()
    layer_types = (*ANALOG_LAYERS, AnalogLayer)
    for module in model.modules():
        if isinstance(module, layer_types) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            weights.append(module.weight)
    return weights


def noise_std(weight: torch.Tensor, sigma: float, kind: NoiseKind) -> torch.Tensor | float:
    """The std of the perturbation of ``weight`` for noise level ``sigma`` and scaling ``kind``.

    Returns a float (absolute, additive_maxabs) or a tensor broadcastable to ``weight``.
    """
    magnitude = weight.detach()
    if kind == "absolute":
        return sigma
    if kind == "additive_maxabs":
        return sigma * float(magnitude.abs().max())
    if kind == "multiplicative":
        return sigma * magnitude.abs()
    if kind == "filterwise_norm":
        if magnitude.dim() < 2:
            return sigma * float(magnitude.norm()) + 1e-16
        norms = magnitude.reshape(magnitude.shape[0], -1).norm(dim=1)
        return sigma * norms.reshape(-1, *([1] * (magnitude.dim() - 1)))
    raise UsageError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")


def draw_perturbations(
    weights: list[nn.Parameter], sigma: float, kind: NoiseKind, generator: torch.Generator
) -> list[torch.Tensor]:
    """One Gaussian perturbation per weight tensor, scaled as ``kind`` says."""
    return [torch.randn(w.shape, generator=generator, dtype=w.dtype) * noise_std(w, sigma, kind)
            for w in weights]


@torch.no_grad()
def add_(weights: list[nn.Parameter], perturbations: list[torch.Tensor]) -> None:
    """W ← W + ε for each weight, in place."""
    for weight, epsilon in zip(weights, perturbations, strict=True):
        weight.add_(epsilon)


@contextmanager
def perturbed(
    weights: list[nn.Parameter], perturbations: list[torch.Tensor]
) -> Iterator[None]:
    """Weights at w + ε inside the block, restored exactly (a saved copy) afterwards."""
    saved = [w.detach().clone() for w in weights]
    add_(weights, perturbations)
    try:
        yield
    finally:
        with torch.no_grad():
            for weight, original in zip(weights, saved, strict=True):
                weight.copy_(original)


def attack_evaluations(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    sigma: float,
    kind: NoiseKind,
    draws: int,
    generator: torch.Generator,
    batch_size: int = 512,
) -> list[Evaluation]:
    """Evaluations under a Gaussian weight attack, one full test pass per draw (METHODS.md
    §1): accuracy, and the cross-entropy behind a language model's perplexity.

    Each draw perturbs a copy of the Conv/Linear weights once (std ``sigma`` scaled as
    ``kind`` says; S0: absolute), evaluates the whole test set with it, and restores the
    weights exactly. σ = 0 gives the clean model.

    Returns:
        One :class:`~analogsim.evaluation.Evaluation` per draw.
    """
    weights = perturbable_weights(model)
    results = []
    for _ in range(draws):
        with perturbed(weights, draw_perturbations(weights, sigma, kind, generator)):
            results.append(evaluate(model, data, batch_size=batch_size))
    return results


def attack_accuracy(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    sigma: float,
    kind: NoiseKind,
    draws: int,
    generator: torch.Generator,
    batch_size: int = 512,
) -> list[float]:
    """The accuracy (fraction) of each draw of :func:`attack_evaluations`."""
    return [e.mean for e in attack_evaluations(model, data, sigma, kind, draws, generator,
                                               batch_size)]
