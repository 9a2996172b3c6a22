"""Noise budgets: how much of each noise knob every layer tolerates, alone and together.

For a model, a card and an accuracy tolerance (default 1 percentage point below the card's
own accuracy), :func:`find_budget` walks each knob of each layer from the card's value
towards harsher values while the other layers stay at the card's values:

- a scale knob (``read_noise.scale``, ``programming.scale``, ``drift.scale``, …) multiplies
  the card's value by 1, 1.5, 2, 3, 4, … ×;
- ``drift_time`` ages that layer alone to later times than the evaluation time;
- ``adc.bits``, ``dac.bits`` count down from the card's bits; ``conductance.levels`` from 256.

The layer's limit is the harshest value before the first one that loses more than the
tolerance (refined by geometric bisection for continuous knobs); the accuracies along the
way are the evidence curves. The joint budget then puts every layer at a common fraction
f of the way (geometric for continuous knobs) from the card to its own limit and finds the
largest f that stays within tolerance.

Each accuracy is the mean over K chip instances programmed with the same seed at every
point, so that two points differ by the knob, not by the draw (common random numbers).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from analogsim.cards import Chip, load_chip
from analogsim.conversion import ChipSpec, analog_layers
from analogsim.errors import CardError, SpecError
from analogsim.evaluation import evaluate
from analogsim.experiments.sweep import analog_copy, base_layer_chips
from analogsim.programming import drift, program
from analogsim.units import TIME_RANGE, is_valid_time

log = logging.getLogger(__name__)

DRIFT_TIME = "drift_time"
#: Factors of a scale knob, mildest first.
SCALE_FACTORS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0)
#: Multiples of the evaluation time for ``drift_time``.
TIME_FACTORS = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)
LEVELS = (256, 128, 64, 32, 16, 8, 4, 3, 2)
#: Geometric bisection steps between the last passing and the first failing grid value.
REFINE_STEPS = 3
JOINT_STEPS = 6
DEFAULT_KNOBS = ("read_noise.scale", "programming.scale", DRIFT_TIME, "adc.bits",
                 "conductance.levels")


@dataclass(frozen=True)
class Knob:
    """One noise knob of a layer, and the values it is tried at.

    Attributes:
        name: a card field (``"read_noise.scale"``, ``"adc.bits"``) or ``"drift_time"``.
        grid: the values tried, from the card's (mildest) to the harshest.
        unit: "×" (factor of the card's value), "s", "bit" or "levels".
        harsher: "up" when a larger value is harsher, "down" when a smaller one is.
        card_value: the knob's value on the card (factor 1, the evaluation time, the card's
            bits or levels); NaN when the card leaves the field unset (continuous levels).
        continuous: whether values between grid points are meaningful (refined by bisection).
    """

    name: str
    grid: tuple[float, ...]
    unit: str
    harsher: Literal["up", "down"]
    card_value: float
    continuous: bool

    def between(self, mild: float, harsh: float, fraction: float) -> float:
        """The value a fraction of the way from ``mild`` to ``harsh``: linear in bits,
        geometric otherwise (scales, times, levels); rounded for integer knobs."""
        if self.unit == "bit":
            return float(round(mild + fraction * (harsh - mild)))
        value = mild * (harsh / mild) ** fraction
        return value if self.continuous else float(round(value))


def make_knob(chip: Chip, name: str, time_s: float,
              grid: Sequence[float] | None = None) -> Knob:
    """The knob ``name`` of ``chip``, with its default grid unless one is given.

    Raises:
        SpecError: the card has no such field, or its value cannot be scaled (zero or unset).
    """
    if name == DRIFT_TIME:
        if time_s <= 0:
            raise SpecError("the drift_time knob needs an evaluation time_s > 0")
        if grid and not all(map(is_valid_time, grid)):
            raise SpecError(f"the drift_time knob's grid must hold times, each {TIME_RANGE}; "
                            f"got {list(grid)}")
        values = grid or [time_s * f for f in TIME_FACTORS]
        return Knob(name, tuple(float(v) for v in values), "s", "up", time_s, True)
    try:
        value = chip.value(name)
    except CardError as error:
        raise SpecError(f"noise knob {name!r}: {error}") from None
    field = name.rpartition(".")[2] if "." in name else name
    if field.endswith("bits"):
        if value is None:
            raise SpecError(f"noise knob {name!r}: card {chip.name!r} has an ideal converter "
                            "(no bits) to take bits away from")
        values = grid or range(int(value), 1, -1)
        return Knob(name, tuple(float(v) for v in values), "bit", "down", float(value), False)
    if field == "levels":
        values = grid or [v for v in LEVELS if value is None or v <= value]
        return Knob(name, tuple(float(v) for v in values), "levels", "down",
                    math.nan if value is None else float(value), False)
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise SpecError(f"noise knob {name!r}: card {chip.name!r} has {name} = {value!r}; only "
                        "a positive value can be scaled")
    return Knob(name, tuple(float(v) for v in grid or SCALE_FACTORS), "×", "up", 1.0, True)


def card_knobs(chip: Chip, time_s: float, names: Sequence[str] = DEFAULT_KNOBS) -> list[Knob]:
    """The knobs of ``names`` that ``chip`` has (a knob the card lacks is left out, logged)."""
    knobs = []
    for name in names:
        try:
            knobs.append(make_knob(chip, name, time_s))
        except SpecError as error:
            log.info("noise budget: leaving out %s", error)
    return knobs


@dataclass(frozen=True)
class Budget:
    """What :func:`find_budget` found, for one seed.

    Attributes:
        knobs, layers: the knobs and analog layer names, in order.
        baseline: mean accuracy on the card as it is (fraction).
        tolerance: the accuracy loss allowed (fraction).
        limits: limit[knob, layer], the harshest tolerated value of each knob (its unit).
        curves: per knob, accuracy[layer, grid value, instance] (the evidence; NaN where a
            layer had failed already and the point was not measured).
        censored: censored[knob, layer]: the layer passed the whole grid, so its limit is
            at least the harshest value tried.
        joint_limits: joint_limit[knob, layer], when all layers are pushed together.
        joint_accuracy: mean accuracy at the joint limits, per knob (fraction).
    """

    knobs: tuple[Knob, ...]
    layers: tuple[str, ...]
    baseline: float
    tolerance: float
    limits: np.ndarray
    curves: tuple[np.ndarray, ...]
    joint_limits: np.ndarray
    joint_accuracy: np.ndarray
    censored: np.ndarray

    def sensitivity_ranking(self) -> list[str]:
        """Layers from most to least sensitive: by mean rank over knobs of the tolerated
        harshness (log of limit / card value; bits and levels counted down)."""
        ranks = np.zeros(len(self.layers))
        for i, knob in enumerate(self.knobs):
            reference = knob.card_value if math.isfinite(knob.card_value) else knob.grid[0]
            harshness = np.log(self.limits[i] / reference)
            if knob.harsher == "down":
                harshness = -harshness
            ranks += np.argsort(np.argsort(harshness, kind="stable"), kind="stable")
        return [self.layers[j] for j in np.argsort(ranks, kind="stable")]


class _Evaluator:
    """Accuracy of the model with some layers' knobs set; everything else on the card."""

    def __init__(self, model: nn.Module, test: tuple[torch.Tensor, torch.Tensor],
                 base: dict[str, Chip], time_s: float, instances: int, seed: int) -> None:
        self.model, self.test, self.base = model, test, base
        self.time_s, self.instances, self.seed = time_s, instances, seed
        self.evaluations = 0

    def __call__(self, knob: Knob, values: Mapping[str, float]) -> np.ndarray:
        """accuracy[instance] with ``knob`` at ``values[layer]`` in those layers."""
        chips = dict(self.base)
        if knob.name != DRIFT_TIME:
            for layer, value in values.items():
                chip = self.base[layer]
                setting: Any = int(value) if knob.unit in ("bit", "levels") else (
                    chip.value(knob.name) * value)
                chips[layer] = load_chip(chip, **{knob.name: setting})
        analog = analog_copy(self.model, chips)
        program(analog, seed=self.seed, instances=self.instances)
        drift(analog, self.time_s)
        if knob.name == DRIFT_TIME:
            layers = dict(analog_layers(analog))
            for layer, t in values.items():
                layers[layer].tile.drift(t)
        self.evaluations += 1
        return evaluate(analog, self.test, batch_size=1024, seed=self.seed).accuracy


def _layer_limit(knob: Knob, layer: str, evaluate_at: _Evaluator, floor: float,
                 curve: np.ndarray) -> float:
    """Fill ``curve[value, instance]`` along the grid until the first failure; the limit."""
    last_pass, first_fail = knob.grid[0], None
    for j, value in enumerate(knob.grid):
        curve[j] = evaluate_at(knob, {layer: value})
        if curve[j].mean() < floor:
            first_fail = value
            break
        last_pass = value
    if first_fail is not None and knob.continuous and j > 0:
        for _ in range(REFINE_STEPS):
            middle = knob.between(last_pass, first_fail, 0.5)
            if evaluate_at(knob, {layer: middle}).mean() >= floor:
                last_pass = middle
            else:
                first_fail = middle
    return last_pass


def _joint(knob: Knob, limits: np.ndarray, layers: Sequence[str], evaluate_at: _Evaluator,
           floor: float) -> tuple[np.ndarray, float]:
    """The joint limits (every layer a common fraction f of the way to its own limit)."""
    mild = knob.card_value if math.isfinite(knob.card_value) else knob.grid[0]

    def at(fraction: float) -> tuple[np.ndarray, float]:
        values = np.array([knob.between(mild, limit, fraction) for limit in limits])
        accuracy = evaluate_at(knob, dict(zip(layers, values, strict=True))).mean()
        return values, float(accuracy)

    values, accuracy = at(1.0)
    if accuracy >= floor:
        return values, accuracy
    low, high = 0.0, 1.0
    best = (np.full(len(layers), mild), math.nan)
    for _ in range(JOINT_STEPS):
        middle = (low + high) / 2
        values, accuracy = at(middle)
        if accuracy >= floor:
            low, best = middle, (values, accuracy)
        else:
            high = middle
    if not math.isfinite(best[1]):
        best = at(0.0)
    return best


def find_budget(
    model: nn.Module,
    test: tuple[torch.Tensor, torch.Tensor],
    chip: Chip | str,
    *,
    knobs: Sequence[Knob] | None = None,
    tolerance_pp: float = 1.0,
    time_s: float = 86400.0,
    instances: int = 8,
    seed: int = 0,
    per_layer: Mapping[str, ChipSpec] | None = None,
    exclude: Sequence[str] = (),
    progress: bool = False,
) -> Budget:
    """The per-layer and joint noise budget of ``model`` on ``chip``.

    Args:
        model: the digital model (not modified).
        test: (inputs, labels) the accuracy is measured on.
        chip: the card; every layer not being pushed stays on it.
        knobs: the knobs (default: :func:`card_knobs` of the card, evaluation time ``time_s``).
        tolerance_pp: accuracy loss allowed below the card's own accuracy, in percentage
            points.
        time_s: time after programming at which accuracy is measured, in seconds.
        instances: K chip instances per evaluation.
        seed: programming, drift and read seed.
        per_layer: fixed per-layer chips, as for :func:`convert`.
        exclude: layer names or globs kept digital (and out of the budget).
        progress: show a tqdm bar.
    """
    if not tolerance_pp > 0:
        raise SpecError(f"tolerance_pp must be > 0 percentage points, got {tolerance_pp!r}")
    chip = load_chip(chip)
    base = base_layer_chips(model, chip, per_layer, exclude)
    knobs = tuple(knobs if knobs is not None else card_knobs(chip, time_s))
    if not knobs:
        raise SpecError(f"card {chip.name!r} has none of the noise knobs {DEFAULT_KNOBS}")
    layers = tuple(base)
    evaluate_at = _Evaluator(model, test, base, time_s, instances, seed)
    baseline = float(evaluate_at(knobs[0], {}).mean())
    floor = baseline - tolerance_pp / 100
    limits = np.full((len(knobs), len(layers)), np.nan)
    joint_limits, joint_accuracy = np.full_like(limits, np.nan), np.full(len(knobs), np.nan)
    curves = []
    bar = tqdm(total=len(knobs) * (len(layers) + 1), desc="noise budget", disable=not progress)
    for i, knob in enumerate(knobs):
        curve = np.full((len(layers), len(knob.grid), instances), np.nan)
        for j, layer in enumerate(layers):
            limits[i, j] = _layer_limit(knob, layer, evaluate_at, floor, curve[j])
            bar.update()
        joint_limits[i], joint_accuracy[i] = _joint(knob, limits[i], layers, evaluate_at, floor)
        bar.update()
        curves.append(curve)
    bar.close()
    log.info("noise budget of %d knobs × %d layers: %d evaluations", len(knobs), len(layers),
             evaluate_at.evaluations)
    censored = np.array([[np.isfinite(curve[j, -1]).all() and curve[j, -1].mean() >= floor
                          for j in range(len(layers))] for curve in curves])
    return Budget(knobs, layers, baseline, tolerance_pp / 100, limits, tuple(curves),
                  joint_limits, joint_accuracy, censored)
