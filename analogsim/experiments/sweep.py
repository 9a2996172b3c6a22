"""Monte-Carlo sweeps: accuracy over a grid of card fields × drift times × chip instances.

For every point of the card grid the model is converted with each layer's chip, programmed
once on K chip instances (one vectorised draw per layer, not K re-programmings) and aged to
each drift time; every time is one :func:`~analogsim.evaluation.evaluate` of all K instances
at once. The seed is the same at every point, so neighbouring points share their random
numbers (common random numbers): a difference between two points is the effect of the
field, not a different draw.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from analogsim.chip import Chip, load_chip
from analogsim.coding import CodingCost
from analogsim.conversion import ChipSpec, analog_layers, convert
from analogsim.evaluation import evaluate
from analogsim.experiments.card_grid import CardAxis, check_axes, grid_points, layer_chips
from analogsim.experiments.interruption import check_stop
from analogsim.programming import coding_cost, drift, program

log = logging.getLogger(__name__)

PointCallback = Callable[[tuple[int, ...], np.ndarray, CodingCost], None]


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep evaluates: card axes, drift times and chip instances.

    Attributes:
        axes: the card fields swept (outer axes of the result, in order).
        times_s: drift times after programming, in seconds (≥ 0).
        instances: K chip instances per point.
        seed: the programming, drift and read seed (the same at every point).
    """

    axes: tuple[CardAxis, ...] = ()
    times_s: tuple[float, ...] = (0.0,)
    instances: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.times_s or any(not t >= 0 for t in self.times_s):
            raise ValueError(f"times_s must be a non-empty list of times ≥ 0 s, got "
                             f"{list(self.times_s)}")
        if self.instances < 1:
            raise ValueError(f"instances must be ≥ 1, got {self.instances}")

    @property
    def shape(self) -> tuple[int, ...]:
        """accuracy[axis…, time, instance]."""
        return (*(len(a.values) for a in self.axes), len(self.times_s), self.instances)


def base_layer_chips(model: nn.Module, chip: Chip | str,
                     per_layer: Mapping[str, ChipSpec] | None = None) -> dict[str, Chip]:
    """Analog layer name → its chip, as ``convert(model, chip, per_layer=per_layer)`` assigns."""
    converted = convert(model, chip, per_layer=per_layer)
    return {name: layer.tile.chip for name, layer in analog_layers(converted)}


def sweep_accuracy(
    model: nn.Module,
    test: tuple[torch.Tensor, torch.Tensor],
    chip: Chip | str,
    plan: SweepPlan,
    *,
    per_layer: Mapping[str, ChipSpec] | None = None,
    batch_size: int = 1024,
    skip: Callable[[tuple[int, ...]], bool] = lambda index: False,
    on_point: PointCallback | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Accuracy of ``model`` on ``test`` at every point of ``plan``.

    Args:
        model: the digital model (not modified).
        test: (inputs, labels).
        chip: the card.
        plan: axes, times, instances and seed.
        per_layer: fixed per-layer chips before the sweep, as for :func:`convert`.
        batch_size: test samples per forward (each repeated for the K instances).
        skip: says which card-grid points are already done (resume); they stay NaN here.
        on_point: called with (card-grid index, accuracy[time, instance], the model's coding
            cost: cells, devices, side bits) after each point.
        progress: show a tqdm bar.

    Returns:
        accuracy[axis…, time, instance] as fractions; NaN at skipped points.
    """
    base = base_layer_chips(model, load_chip(chip), per_layer)
    check_axes(plan.axes, list(base), next(iter(base.values())))
    accuracy = np.full(plan.shape, np.nan)
    points = [(i, v) for i, v in grid_points(plan.axes) if not skip(i)]
    bar = tqdm(total=len(points) * len(plan.times_s), desc="sweep", disable=not progress)
    for index, values in points:
        analog = convert(model, chip, per_layer=layer_chips(base, plan.axes, values))
        program(analog, seed=plan.seed, instances=plan.instances)
        for j, t in enumerate(plan.times_s):
            drift(analog, t)
            accuracy[(*index, j)] = evaluate(analog, test, batch_size=batch_size,
                                              seed=plan.seed).accuracy
            bar.update()
        if on_point is not None:
            on_point(index, accuracy[index], coding_cost(analog))
        log.debug("sweep point %s = %s done", index, values)
        check_stop()
    bar.close()
    return accuracy
