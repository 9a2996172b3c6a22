"""Training methods: each a small object that says what one epoch start and one step do.

All work on any model, digital or converted (training a converted model is hardware-aware
training: the tiles' forward non-idealities are on, with fresh noise every batch). Noise is
drawn from the trainer's generator, so a seed gives the same run.

- :class:`Standard` — plain SGD-family training.
- :class:`NoiseAware` — S0's naive noise-aware training (METHODS.md §2): absolute Gaussian
  noise added to Conv/Linear weights, ``persistent_per_epoch`` (the paper's literal procedure:
  W ← W + σZ at the start of every epoch, never removed) or ``per_batch_restore``.
- :class:`Sharpness` — SAM / ASAM (§3–§4) with ρ from a schedule (multi-step SAM, §5), and
  the batch-norm bypass on the second pass.
- :class:`RandomWeightPerturbation` — RWP (§6): loss at w + ε with ε freshly drawn per step
  and scaled as ``kind`` says, mixed with the clean loss by α, weights restored exactly
  before the update; σ from a schedule (ramped RWP, §8).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from analogsim.errors import ArgumentTypeError, UsageError
from analogsim.train import perturbation
from analogsim.train.perturbation import NoiseKind
from analogsim.train.sam import SAM
from analogsim.train.schedules import Schedule, as_schedule, value_at

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class StepOutcome:
    """What one training step reports: loss (mean per prediction, nats), correct predictions
    (per sample, or per token for a language model), ‖∇L‖ of the update."""

    loss: float
    correct: int
    gradient_norm: float


@dataclass
class TrainingContext:
    """What a method may use: the model, its loss, the optimiser and the noise generator."""

    model: nn.Module
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    step_index: int = 0
    epoch: int = 0  # the 0-indexed epoch in progress, set by the trainer


def gradient_norm(parameters: Iterator[nn.Parameter] | list[nn.Parameter]) -> float:
    """Global L2 norm of the gradients present."""
    norms = [p.grad.detach().norm() for p in parameters if p.grad is not None]
    return float(torch.norm(torch.stack(norms))) if norms else 0.0


def _forward_backward(ctx: TrainingContext, x: torch.Tensor, y: torch.Tensor,
                      weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    logits = ctx.model(x)
    loss = ctx.loss_fn(logits, y)
    (loss * weight).backward()
    return loss.detach(), logits.detach()


def _outcome(ctx: TrainingContext, loss: torch.Tensor, logits: torch.Tensor,
             y: torch.Tensor) -> StepOutcome:
    return StepOutcome(loss=float(loss), correct=int((logits.argmax(dim=-1) == y).sum()),
                       gradient_norm=gradient_norm(list(ctx.model.parameters())))


class Method:
    """Base class: a method builds its optimiser and does one epoch start and one step."""

    name = "method"

    def make_optimizer(self, model: nn.Module, optimizer_class: type[torch.optim.Optimizer],
                       **kwargs: float) -> torch.optim.Optimizer:
        return optimizer_class(model.parameters(), **kwargs)

    def start_epoch(self, ctx: TrainingContext, epoch: int) -> None:
        """Called before the first step of every 0-indexed epoch."""

    def step(self, ctx: TrainingContext, x: torch.Tensor, y: torch.Tensor) -> StepOutcome:
        """One training step on the batch ``(x, y)``; every method overrides it."""
        raise NotImplementedError(f"{type(self).__name__} does not define step(); a training "
                                  "method must override Method.step")

    def describe(self) -> dict[str, object]:
        """The method's settings, for the results file."""
        return {"method": self.name}


def _plain_step(ctx: TrainingContext, x: torch.Tensor, y: torch.Tensor,
                optimizer: torch.optim.Optimizer | None = None) -> StepOutcome:
    """Forward, backward, step of ``optimizer`` (default the context's)."""
    optimizer = optimizer or ctx.optimizer
    optimizer.zero_grad()
    loss, logits = _forward_backward(ctx, x, y)
    outcome = _outcome(ctx, loss, logits, y)
    optimizer.step()
    return outcome


def _perturbed_step(ctx: TrainingContext, x: torch.Tensor, y: torch.Tensor, sigma: float,
                    kind: NoiseKind, alpha: float) -> StepOutcome:
    """Gradient of (1 − α) L(w) + α L(w + ε) with fresh ε, weights restored, then the step.

    The reported loss is the clean one when α < 1, the perturbed one otherwise.
    """
    ctx.optimizer.zero_grad()
    weights = perturbation.perturbable_weights(ctx.model)
    loss = logits = None
    if alpha < 1.0:
        loss, logits = _forward_backward(ctx, x, y, weight=1.0 - alpha)
    noise = perturbation.draw_perturbations(weights, sigma, kind, ctx.generator)
    with perturbation.perturbed(weights, noise):
        noisy_loss, noisy_logits = _forward_backward(ctx, x, y, weight=alpha)
    if loss is None:
        loss, logits = noisy_loss, noisy_logits
    outcome = _outcome(ctx, loss, logits, y)
    ctx.optimizer.step()
    return outcome


class Standard(Method):
    """Forward, backward, optimiser step."""

    name = "standard"

    def step(self, ctx: TrainingContext, x: torch.Tensor, y: torch.Tensor) -> StepOutcome:
        return _plain_step(ctx, x, y)


@dataclass
class NoiseAware(Method):
    """S0's naive noise-aware training with absolute weight noise of std ``sigma``.

    Args:
        sigma: std of the noise (absolute; S0: 0.1), or a schedule of it.
        mode: ``persistent_per_epoch`` (default, S0 literally: noise added at each epoch start
            and kept, so it accumulates as σ√epochs without training) or
            ``per_batch_restore`` (perturb, forward/backward, restore, update).
        kind: how σ scales (default absolute, as S0).
    """

    sigma: float | Schedule = 0.1
    mode: Literal["persistent_per_epoch", "per_batch_restore"] = "persistent_per_epoch"
    kind: NoiseKind = "absolute"
    name: str = field(default="noise_aware", init=False)

    def __post_init__(self) -> None:
        self._schedule = as_schedule(self.sigma)

    def start_epoch(self, ctx: TrainingContext, epoch: int) -> None:
        if self.mode == "persistent_per_epoch":
            weights = perturbation.perturbable_weights(ctx.model)
            sigma = value_at(self._schedule, epoch, ctx.step_index)
            perturbation.add_(weights, perturbation.draw_perturbations(
                weights, sigma, self.kind, ctx.generator))

    def step(self, ctx: TrainingContext, x: torch.Tensor, y: torch.Tensor) -> StepOutcome:
        if self.mode == "persistent_per_epoch":
            return _plain_step(ctx, x, y)
        sigma = value_at(self._schedule, ctx.epoch, ctx.step_index)
        return _perturbed_step(ctx, x, y, sigma, self.kind, alpha=1.0)

    def describe(self) -> dict[str, object]:
        return {"method": self.name, "sigma": repr(self.sigma), "mode": self.mode,
                "kind": self.kind}


@contextmanager
def _batch_norm_frozen(model: nn.Module) -> Iterator[None]:
    """BN running statistics untouched inside the block (davda54 bypass_bn)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum


@dataclass
class Sharpness(Method):
    """SAM (``adaptive=False``) or ASAM, ρ constant or scheduled (multi-step SAM).

    Args:
        rho: ρ, or a schedule of it (written into every ``param_group["rho"]``).
        adaptive, eta, weight_only: see :class:`analogsim.train.sam.SAM`.
        bypass_batch_norm: keep BN running statistics from the second pass out (default on).
    """

    rho: float | Schedule = 0.05
    adaptive: bool = False
    eta: float = 0.0
    weight_only: bool = False
    bypass_batch_norm: bool = True
    name: str = field(default="sam", init=False)

    def __post_init__(self) -> None:
        self._schedule = as_schedule(self.rho)

    def make_optimizer(self, model: nn.Module, optimizer_class: type[torch.optim.Optimizer],
                       **kwargs: float) -> torch.optim.Optimizer:
        return SAM(model.named_parameters(), optimizer_class, rho=self._schedule(0),
                   adaptive=self.adaptive, eta=self.eta, weight_only=self.weight_only,
                   **kwargs)

    def _set_rho(self, ctx: TrainingContext, value: float) -> None:
        for group in ctx.optimizer.param_groups:
            group["rho"] = value

    def start_epoch(self, ctx: TrainingContext, epoch: int) -> None:
        if self._schedule.unit == "epoch":
            self._set_rho(ctx, self._schedule(epoch))

    def step(self, ctx: TrainingContext, x: torch.Tensor, y: torch.Tensor) -> StepOutcome:
        optimizer = ctx.optimizer
        if not isinstance(optimizer, SAM):
            raise ArgumentTypeError(f"Sharpness needs the SAM optimiser its make_optimizer builds; "
                                    f"got a {type(optimizer).__name__}")
        if self._schedule.unit == "step":
            self._set_rho(ctx, self._schedule(ctx.step_index))
        if all(group["rho"] == 0 for group in optimizer.param_groups):
            # ε = 0: the second pass would repeat the first (and BN is bypassed on it)
            return _plain_step(ctx, x, y, optimizer.base_optimizer)
        optimizer.zero_grad()
        loss, logits = _forward_backward(ctx, x, y)
        optimizer.first_step(zero_grad=True)
        frozen = _batch_norm_frozen(ctx.model) if self.bypass_batch_norm else _no_op()
        with frozen:
            _forward_backward(ctx, x, y)
        outcome = _outcome(ctx, loss, logits, y)  # ‖g'‖: the gradient the update uses
        optimizer.second_step()
        return outcome

    def describe(self) -> dict[str, object]:
        return {"method": self.name, "rho": repr(self.rho), "adaptive": self.adaptive,
                "eta": self.eta, "weight_only": self.weight_only,
                "bypass_batch_norm": self.bypass_batch_norm}


@contextmanager
def _no_op() -> Iterator[None]:
    yield


@dataclass
class RandomWeightPerturbation(Method):
    """RWP: L = (1 − α) L(w) + α L(w + ε), ε ~ N(0, (σ·scale)²) drawn fresh every step.

    Args:
        sigma: noise level (γ for ``filterwise_norm``), or a schedule (ramped RWP).
        kind: ``additive_maxabs`` (Jacobson et al., default), ``filterwise_norm`` (Li et al.,
            σ = γ = 0.01, α = 0.5), ``multiplicative`` or ``absolute``.
        alpha: weight of the perturbed loss; 1 is vanilla RWP (default, Jacobson et al.).
            Both terms use the same mini-batch (Li et al.'s m-RWP draws a second one).
    """

    sigma: float | Schedule = 0.05
    kind: NoiseKind = "additive_maxabs"
    alpha: float = 1.0
    name: str = field(default="rwp", init=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise UsageError(f"The 'alpha' of RandomWeightPerturbation must be in [0, 1]; got "
                             f"{self.alpha!r}.")
        if self.kind not in perturbation.NOISE_KINDS:
            raise UsageError(f"The 'kind' of RandomWeightPerturbation must be one of "
                             f"{perturbation.NOISE_KINDS}; got {self.kind!r}.")
        self._schedule = as_schedule(self.sigma)

    def current_sigma(self, ctx: TrainingContext) -> float:
        return value_at(self._schedule, ctx.epoch, ctx.step_index)

    def step(self, ctx: TrainingContext, x: torch.Tensor, y: torch.Tensor) -> StepOutcome:
        return _perturbed_step(ctx, x, y, self.current_sigma(ctx), self.kind, self.alpha)

    def describe(self) -> dict[str, object]:
        return {"method": self.name, "sigma": repr(self.sigma), "kind": self.kind,
                "alpha": self.alpha}
