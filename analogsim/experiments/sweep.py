"""Monte-Carlo sweeps: accuracy over a grid of card fields × drift times × chip instances.

For every point of the card grid the model is converted with each layer's chip, programmed
once on K chip instances (one vectorised draw per layer, not K re-programmings) and aged to
each drift time; every time is one :func:`~analogsim.evaluation.evaluate` of all K instances
at once. The seed is the same at every point, so neighbouring points share their random
numbers (common random numbers): a difference between two points is the effect of the
field, not a different draw.

A job records ``metrics``: accuracy, and for a language model perplexity as well
(:func:`~analogsim.evaluation.task_metrics`); each point gives metric[time, instance].
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from analogsim.cards import Chip, load_chip
from analogsim.conversion import ChipSpec, analog_layers, convert
from analogsim.errors import UsageError
from analogsim.evaluation import evaluate
from analogsim.experiments.card_grid import CardAxis, check_axes, grid_points, layer_chips
from analogsim.experiments.interruption import check_stop
from analogsim.programming import coding_cost, drift, program
from analogsim.tiles.coding import CodingCost
from analogsim.units import TIME_RANGE, is_valid_time

#: A point's values: metric name → values[time, instance].
PointValues = dict[str, np.ndarray]
PointCallback = Callable[[tuple[int, ...], PointValues, CodingCost], None]


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
        if not self.times_s or not all(map(is_valid_time, self.times_s)):
            raise UsageError(f"times_s must be a non-empty list of times, each {TIME_RANGE}; "
                             f"got {list(self.times_s)}")
        if self.instances < 1:
            raise UsageError(f"instances must be ≥ 1, got {self.instances!r}")

    @property
    def shape(self) -> tuple[int, ...]:
        """accuracy[axis…, time, instance]."""
        return (*(len(a.values) for a in self.axes), len(self.times_s), self.instances)


def base_layer_chips(model: nn.Module, chip: Chip | str,
                     per_layer: Mapping[str, ChipSpec] | None = None,
                     exclude: Sequence[str] = ()) -> dict[str, Chip]:
    """Analog layer name → its chip, as ``convert(model, chip, per_layer=per_layer,
    exclude=exclude)`` assigns (excluded layers stay digital and are not in the result)."""
    converted = convert(model, chip, per_layer=per_layer, exclude=exclude)
    return {name: layer.tile.chip for name, layer in analog_layers(converted)}


def analog_copy(model: nn.Module, chips: Mapping[str, Chip]) -> nn.Module:
    """``model`` converted with exactly these layers on these chips; the rest stay digital."""
    return convert(model, next(iter(chips.values())), per_layer=chips,
                   exclude=lambda module, name: name not in chips)


@dataclass(frozen=True)
class SweepJob:
    """What it takes to evaluate points of a sweep anywhere: in this process or on a cluster
    worker (it pickles).

    Attributes:
        model: the digital model.
        test: (inputs, labels).
        chip: the card.
        base: analog layer name → its chip before the sweep.
        plan: axes, times, instances and seed.
        batch_size: test samples per forward.
        metrics: what each evaluation records (:func:`~analogsim.evaluation.task_metrics`).
    """

    model: nn.Module
    test: tuple[torch.Tensor, torch.Tensor]
    chip: Chip
    base: dict[str, Chip]
    plan: SweepPlan
    batch_size: int = 1024
    metrics: tuple[str, ...] = ("accuracy",)

    def evaluate(self, index: tuple[int, ...]) -> tuple[PointValues, CodingCost]:
        """metric[time, instance] of each metric at card-grid point ``index``, and its coding
        cost.

        The model is programmed once on K instances from the plan's seed, the same at every
        point, and aged to each time in turn.
        """
        plan = self.plan
        values = tuple(axis.values[i] for axis, i in zip(plan.axes, index, strict=True))
        analog = analog_copy(self.model, layer_chips(self.base, plan.axes, values))
        program(analog, seed=plan.seed, instances=plan.instances)
        point = {m: np.empty((len(plan.times_s), plan.instances)) for m in self.metrics}
        for j, t in enumerate(plan.times_s):
            drift(analog, t)
            evaluation = evaluate(analog, self.test, batch_size=self.batch_size, seed=plan.seed)
            for metric, per_instance in evaluation.values(self.metrics).items():
                point[metric][j] = per_instance
        return point, coding_cost(analog)


PointResult = tuple[tuple[int, ...], PointValues, CodingCost]
#: Evaluates a job's points somewhere and yields (index, metric → values[time, instance],
#: cost) as they finish, in any order.
PointRunner = Callable[[SweepJob, list[tuple[int, ...]]], Iterator[PointResult]]


def run_in_process(job: SweepJob, indices: list[tuple[int, ...]]) -> Iterator[PointResult]:
    """The points one after the other, in this process."""
    for index in indices:
        yield (index, *job.evaluate(index))


def sweep_accuracy(
    model: nn.Module,
    test: tuple[torch.Tensor, torch.Tensor],
    chip: Chip | str,
    plan: SweepPlan,
    *,
    per_layer: Mapping[str, ChipSpec] | None = None,
    exclude: Sequence[str] = (),
    batch_size: int = 1024,
    metrics: tuple[str, ...] = ("accuracy",),
    skip: Callable[[tuple[int, ...]], bool] = lambda index: False,
    on_point: PointCallback | None = None,
    runner: PointRunner = run_in_process,
    progress: bool = False,
) -> np.ndarray:
    """Accuracy of ``model`` on ``test`` at every point of ``plan``.

    Args:
        model: the digital model (not modified).
        test: (inputs, labels).
        chip: the card.
        plan: axes, times, instances and seed.
        per_layer: fixed per-layer chips before the sweep, as for :func:`convert`.
        exclude: layer names or globs kept digital, as for :func:`convert`.
        batch_size: test samples per forward (each repeated for the K instances).
        metrics: what to record at each point: ``("accuracy",)``, or with ``"perplexity"``
            for a language model (:func:`~analogsim.evaluation.task_metrics`).
        skip: says which card-grid points are already done (resume); they stay NaN here.
        on_point: called with (card-grid index, metric → values[time, instance], the model's
            coding cost: cells, devices, side bits) after each point, in this process.
        runner: where the points are evaluated: :func:`run_in_process` (default) or a
            cluster (:class:`analogsim.experiments.cluster.ClusterRunner`); the numbers are
            the same either way.
        progress: show a tqdm bar.

    Returns:
        accuracy[axis…, time, instance] as fractions; NaN at skipped points.
    """
    chip = load_chip(chip)
    base = base_layer_chips(model, chip, per_layer, exclude)
    check_axes(plan.axes, list(base), next(iter(base.values())))
    job = SweepJob(model, test, chip, base, plan, batch_size, tuple(metrics))
    accuracy = np.full(plan.shape, np.nan)
    points = [index for index, _ in grid_points(plan.axes)]
    indices = [index for index in points if not skip(index)]
    with tqdm(total=len(points), initial=len(points) - len(indices), desc="sweep points",
              disable=not progress or not indices) as bar:
        for index, values, cost in runner(job, indices):
            accuracy[index] = values["accuracy"]
            if on_point is not None:
                on_point(index, values, cost)
            bar.update()
            check_stop()
    return accuracy
