"""``evaluate``: accuracy, and the cross-entropy behind perplexity, of a (converted,
programmed) model over its chip instances.

A prediction is one label: a classifier makes one per sample (labels (B,), logits (B, C)), a
language model one per position (labels (B, T), the next token at each; logits (B, T, V)).
The shape of the labels says which, so the same call, and every experiment built on it
(sweeps over drift and chips, training methods, budgets), serves both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from analogsim.errors import ShapeError
from analogsim.instances import instances_folded
from analogsim.programming import instance_count, reseed_forward_noise, weights_in_use
from analogsim.statistics import Interval, confidence_interval, interval_over_units

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]

#: The unit of each metric an experiment records from an :class:`Evaluation`.
METRIC_UNITS = {"accuracy": "fraction", "perplexity": "exp(nats/token)"}


def task_metrics(task: str) -> tuple[str, ...]:
    """The metrics an experiment records for a data set's task
    (:attr:`analogsim.datasets.DataSplit.task`): accuracy, and for a language model the
    perplexity too."""
    return ("accuracy", "perplexity") if task == "language_model" else ("accuracy",)


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

    For a language model ``accuracy`` is the fraction of next tokens predicted right (top-1)
    and :attr:`perplexity` is exp(mean NLL per token), per instance; ``samples`` counts test
    sequences and ``predictions`` their tokens.
    """

    accuracy: np.ndarray  # (K,), fraction of predictions right per instance
    samples: int  # test samples (sequences for a language model)
    weights: Literal["programmed", "live", "digital"] = "programmed"
    nll: np.ndarray | None = None  # (K,), mean negative log-likelihood per prediction (nats)
    predictions: int = 0  # labels scored per instance: samples, or samples × positions

    @property
    def mean(self) -> float:
        return float(self.accuracy.mean())

    @property
    def perplexity(self) -> np.ndarray:
        """(K,) exp(mean NLL per prediction) of each instance (dimensionless; 1 is perfect,
        the vocabulary size is a uniform guess)."""
        if self.nll is None:
            raise ShapeError("this Evaluation has no cross-entropy (nll is None), so no "
                             "perplexity; evaluate() computes both")
        return np.exp(self.nll)

    def values(self, metrics: Iterable[str]) -> dict[str, np.ndarray]:
        """(K,) per instance of each metric named (``accuracy``, ``perplexity``)."""
        return {name: getattr(self, name) for name in metrics}

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
        per_token = self.predictions > self.samples
        return (
            f"{100 * self.mean:.2f} % [{100 * low:.2f}, {100 * high:.2f}] "
            + ("of next tokens, " if per_token else "")
            + (f"perplexity {self.perplexity.mean():.3f}, " if per_token and self.nll is not None
               else "")
            + f"over {len(self.accuracy)} instance(s){wilson}"
            + (" on unprogrammed (live) weights" if self.weights == "live" else "")
        )


def prediction_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                             reduction: Literal["mean", "sum", "none"] = "mean") -> torch.Tensor:
    """Cross-entropy (nats) of ``logits`` (..., C) against integer ``labels`` (...): per
    sample for a classifier, per position for a language model (mean over all of them)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                           reduction=reduction)


def _scores(logits: torch.Tensor, y: torch.Tensor, k: int) -> tuple[torch.Tensor,
                                                                      torch.Tensor]:
    """Correct predictions and summed NLL (nats) of each of the k instances, (k,) each."""
    batch = y.shape[0]
    if y.dim() == 1:  # one label per sample (trailing singleton logits dimensions allowed)
        logits = logits.reshape(k * batch, -1)
    elif tuple(logits.shape[:-1]) != (k * batch, *y.shape[1:]):
        raise ShapeError(f"labels of shape {tuple(y.shape)} (one per position) need logits of "
                         f"shape ({k} × {batch}, {', '.join(map(str, y.shape[1:]))}, classes); "
                         f"the model returned {tuple(logits.shape)}")
    labels = y.to(logits.device).repeat(k, *([1] * (y.dim() - 1)))  # instance-major as logits
    correct = (logits.argmax(dim=-1) == labels).reshape(k, -1).sum(dim=1)
    nll = prediction_cross_entropy(logits, labels, "none").double().reshape(k, -1).sum(dim=1)
    return correct.cpu(), nll.cpu()


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
    """Top-1 accuracy and mean cross-entropy of every chip instance of ``model`` on ``data``.

    Labels of shape (B,) score one prediction per sample; labels of shape (B, T) (a language
    model's next tokens) score one per position, the model returning (B, T, classes) logits:
    accuracy is then per token and :attr:`Evaluation.perplexity` is exp(mean NLL per token).

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
    nll = torch.zeros(k, dtype=torch.float64)
    samples = predictions = 0
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
                batch_correct, batch_nll = _scores(logits, y, k)
                correct += batch_correct
                nll += batch_nll
                samples += x.shape[0]
                predictions += y.numel()
    finally:
        model.train(was_training)
    if samples == 0:
        raise ShapeError("evaluate() got no samples")
    return Evaluation(accuracy=(correct.double() / predictions).numpy(), samples=samples,
                      weights=weights, nll=(nll / predictions).numpy(), predictions=predictions)
