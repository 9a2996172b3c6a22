"""``evaluate``: accuracy of a (converted, programmed) model over its chip instances."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from analogsim.errors import ShapeError
from analogsim.instances import instances_folded
from analogsim.programming import instance_count, reseed_forward_noise, weights_in_use
from analogsim.statistics import Interval, confidence_interval, interval_over_units

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Evaluation:
    """Accuracy of each chip instance, and their mean with a 95 % confidence interval.

    The chips of one trained model are its independent units: with K ≥ 2 instances the
    interval is Student's t over instances; with one instance (or a digital model) it is the
    Wilson score interval of the test-set proportion. It says nothing of another trained model
    (seed): an interval over seeds is :func:`analogsim.statistics.interval_over_units`.

    ``weights`` says what the model computed with: ``"programmed"`` (its chip instances'
    conductances), ``"live"`` (analog layers on their digital weights, not programmed:
    ``evaluate(..., unprogrammed="live")``) or ``"digital"`` (no analog layer).
    """

    accuracy: np.ndarray  # (K,), fraction correct per instance
    samples: int
    weights: Literal["programmed", "live", "digital"] = "programmed"

    @property
    def mean(self) -> float:
        return float(self.accuracy.mean())

    @property
    def ci95(self) -> tuple[float, float]:
        return confidence_interval(self.accuracy, self.samples)

    @property
    def interval(self) -> Interval:
        """The mean and 95 % CI with n and its unit ("n = 16 chips", "n = 1 chip × 497 test
        samples")."""
        return interval_over_units(self.accuracy, ("chip",), samples=self.samples)

    def __str__(self) -> str:
        low, high = self.ci95
        wilson = f" (Wilson CI over {self.samples} test samples)" if self.accuracy.size < 2 else ""
        return (
            f"{100 * self.mean:.2f} % [{100 * low:.2f}, {100 * high:.2f}] "
            f"over {len(self.accuracy)} instance(s){wilson}"
            + (" on unprogrammed (live) weights" if self.weights == "live" else "")
        )


def _batches(data: Batches | tuple[torch.Tensor, torch.Tensor], batch_size: int) -> Batches:
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        x, y = data
        if x.shape[0] != y.shape[0]:
            raise ShapeError(
                f"inputs and labels disagree: {x.shape[0]} inputs, {y.shape[0]} labels"
            )
        return [
            (x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)
        ]
    return data


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Batches | tuple[torch.Tensor, torch.Tensor],
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = False,
    *,
    unprogrammed: Literal["error", "live"] = "error",
) -> Evaluation:
    """Top-1 accuracy of every chip instance of ``model`` on ``data``.

    The model runs in eval mode (restored afterwards). Each batch is repeated for the K
    programmed instances, instance-major, and pushed through once inside
    :func:`~analogsim.instances.instances_folded`; per-read noise streams
    restart from ``seed``, so the same call gives the same numbers.

    Args:
        model: a digital model, or a converted and programmed one.
        data: a DataLoader (or any iterable of (inputs, labels)) or an (inputs, labels) pair.
        batch_size: samples per batch when ``data`` is a tensor pair.
        seed: seed of the per-read noise.
        progress: show a tqdm bar.
        unprogrammed: ``"error"`` (the default) refuses analog layers that are not
            programmed: they would compute with the digital weights (no programming error,
            no drift), and that accuracy would pass for a chip's. ``"live"`` evaluates them so,
            through the tiles' periphery (DAC, ADC, noise), as hardware-aware training's test
            pass does (:func:`analogsim.train.fit`), and the result says so
            (``Evaluation.weights == "live"``). A digital model evaluates either way.

    Raises:
        StateError: an analog layer is not programmed and ``unprogrammed`` is ``"error"``.
    """
    weights = weights_in_use(model, unprogrammed)
    was_training = model.training
    model.eval()
    reseed_forward_noise(model, seed)
    k = instance_count(model)
    correct = torch.zeros(k, dtype=torch.int64)
    samples = 0
    try:
        with instances_folded(model):
            for x, y in tqdm(
                _batches(data, batch_size), desc="evaluate", disable=not progress, leave=False
            ):
                folded = x.repeat(k, *([1] * (x.dim() - 1))) if k > 1 else x
                logits = model(folded)
                if logits.shape[0] != k * x.shape[0]:
                    raise ShapeError(f"the model returned {logits.shape[0]} rows for a batch "
                                     f"of {k} × {x.shape[0]}")
                predicted = logits.reshape(k, x.shape[0], -1).argmax(dim=-1)
                correct += (predicted == y.to(predicted.device)).sum(dim=1).cpu()
                samples += x.shape[0]
    finally:
        model.train(was_training)
    if samples == 0:
        raise ShapeError("evaluate() got no samples")
    return Evaluation(accuracy=(correct.double() / samples).numpy(), samples=samples,
                      weights=weights)
