"""Cost budgets: the per-layer bits that minimise energy per inference within a tolerance.

For a model, a card with a ``[cost]`` section and an accuracy tolerance (percentage points
below the card's own accuracy at its own bits, the *card design*), :func:`find_energy_budget`
chooses, per analog layer, a value of each chosen knob (``adc.bits``, ``dac.bits``) from a
grid, and prices every design with :func:`analogsim.cost` (energy of one inference, J):

1. **the card design**: every layer at its card's bits; its mean accuracy is the baseline and
   baseline − tolerance the floor a design must hold;
2. **each layer alone**: one layer's knob walked down the grid, the others at the card's
   bits, to the last value before the first that falls below the floor: that layer's
   minimum;
3. **uniform designs**: every layer at one common value, walked down the grid (knob by knob,
   in the order chosen) while the design holds; the last that holds is the *uniform
   baseline*, the design a chip with one resolution for every layer would use;
4. **greedy**: from the card design, lower by one grid step the (layer, knob) with the largest
   energy saving per accuracy cost, the cost estimated from step 2 (the layer's accuracy
   alone at its current value minus that at the next, at least :data:`MIN_COST`); measure
   the joint design; keep the step if it holds, else freeze that (layer, knob). Steps below
   a layer's own minimum, and steps that save no energy, are not tried. It ends when no
   step is left.

The chosen design is the least energy among all the designs measured that hold the floor
(so never more than the uniform baseline's). Every accuracy is the mean over the same chips
(seeds × instances, programmed identically at every design: common random numbers); the
chosen design's accuracy is measured on the chips it was chosen on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from analogsim.cards import Chip, load_chip
from analogsim.conversion import ChipSpec
from analogsim.cost import cost
from analogsim.errors import SpecError
from analogsim.evaluation import evaluate
from analogsim.experiments.budget import Knob
from analogsim.experiments.sweep import analog_copy, base_layer_chips
from analogsim.programming import drift, program
from analogsim.tiles.cost import card_cost

log = logging.getLogger(__name__)

#: What a cost budget can minimise: the quantity, in the unit :func:`analogsim.cost` gives.
OBJECTIVES = {"energy": "energy per inference (J)"}
#: The knobs a cost budget can choose per layer.
CHOICES = ("adc.bits", "dac.bits")
#: Accuracy cost (fraction) below which a step counts as this costly, so that free steps
#: rank by their energy saving alone: 0.01 pp.
MIN_COST = 1e-4

Bits = tuple[tuple[int, ...], ...]  # bits[knob][layer]


def bits_knob(chip: Chip, name: str, values: Sequence[float] | None = None) -> Knob:
    """The knob ``name`` of ``chip`` over ``values``: the card's bits first, then the values
    below it, descending (default: every value down to 2).

    Raises:
        SpecError: ``name`` is not one of :data:`CHOICES`, the card's converter is ideal (no
            bits), or a value is not an integer from 1 to the card's bits.
    """
    if name not in CHOICES:
        raise SpecError(f"a cost budget chooses per layer one of {list(CHOICES)}; got {name!r}")
    card = chip.value(name)
    if card is None:
        raise SpecError(f"{name}: card {chip.name!r} has an ideal converter (no bits) to "
                        "choose from; give the card bits")
    values = range(card, 1, -1) if values is None else values
    bad = [v for v in values if float(v) != int(v) or not 1 <= v <= card]
    if bad or not values:
        raise SpecError(f"{name}: the values must be integers from 1 to card {chip.name!r}'s "
                        f"{name} = {card} (larger values only cost more than the card "
                        f"design the tolerance is measured against); got {list(values)}")
    grid = sorted({int(card), *(int(v) for v in values)}, reverse=True)
    return Knob(name, tuple(float(v) for v in grid), "bit", "down", float(card), False)


@dataclass(frozen=True, eq=False)
class Design:
    """One measured design.

    Attributes:
        stage: how the search came to it: "card", "alone", "uniform" or "greedy".
        bits: bits[knob][layer], the value of each chosen knob in each layer.
        energy_J: energy of one inference (:func:`analogsim.cost`), J.
        layer_energy_J: that of each analog layer, J.
        accuracy: accuracy per chip, seed-major (seeds × instances), fraction.
        holds: whether the mean accuracy is at or above the floor.
    """

    stage: str
    bits: Bits
    energy_J: float
    layer_energy_J: tuple[float, ...]
    accuracy: np.ndarray
    holds: bool

    @property
    def mean(self) -> float:
        return float(self.accuracy.mean())


def pareto_front(energy: Sequence[float], accuracy: Sequence[float]) -> np.ndarray:
    """Which points no other point dominates: a point is dominated when another has energy
    ≤ and accuracy ≥ its own, one of them strictly. Equal points are both on the front.

    Returns:
        A boolean mask, one entry per point.
    """
    e, a = np.asarray(energy, float), np.asarray(accuracy, float)
    dominated = ((e[None, :] <= e[:, None]) & (a[None, :] >= a[:, None])
                 & ((e[None, :] < e[:, None]) | (a[None, :] > a[:, None]))).any(axis=1)
    return ~dominated


@dataclass(frozen=True, eq=False)
class EnergyBudget:
    """What :func:`find_energy_budget` found.

    Attributes:
        knobs, layers: the chosen knobs and the analog layers, in order.
        baseline: mean accuracy of the card design (fraction).
        tolerance: the accuracy loss allowed (fraction); a design holds at ≥ baseline − it.
        designs: every design measured, in order; the first is the card design.
        minimum: minimum[knob, layer], the fewest bits of each layer alone (bits).
        uniform: index of the uniform baseline in ``designs``.
        chosen: index of the chosen design (least energy among those that hold).
        path: indices of the designs the greedy search stepped through, from the card's.
        notes: what the reader should know (a knob whose steps saved no energy).
    """

    knobs: tuple[Knob, ...]
    layers: tuple[str, ...]
    baseline: float
    tolerance: float
    designs: tuple[Design, ...]
    minimum: np.ndarray
    uniform: int
    chosen: int
    path: tuple[int, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())

    @property
    def floor(self) -> float:
        return self.baseline - self.tolerance

    @property
    def saving(self) -> float:
        """1 − E(chosen) / E(uniform baseline): the chosen design's energy saving (fraction)."""
        return 1 - self.designs[self.chosen].energy_J / self.designs[self.uniform].energy_J

    @property
    def pareto(self) -> np.ndarray:
        """:func:`pareto_front` of the designs' energy and mean accuracy."""
        return pareto_front([d.energy_J for d in self.designs], [d.mean for d in self.designs])


class _Designs:
    """Measures designs once each (energy and accuracy), in the order they are asked for."""

    def __init__(self, model: nn.Module, test: tuple[torch.Tensor, torch.Tensor],
                 base: dict[str, Chip], knobs: Sequence[Knob], example_input: torch.Tensor,
                 time_s: float, instances: int, seeds: Sequence[int]) -> None:
        self.model, self.test, self.base, self.knobs = model, test, base, knobs
        self.example, self.time_s, self.instances, self.seeds = (example_input, time_s,
                                                                 instances, seeds)
        self.measured: dict[Bits, Design] = {}
        self.order: list[Bits] = []
        self.energies: dict[Bits, tuple[float, tuple[float, ...]]] = {}
        self.floor = -np.inf

    def chips(self, bits: Bits) -> dict[str, Chip]:
        """Layer → its chip with the design's bits."""
        return {layer: load_chip(chip, **{k.name: bits[i][j] for i, k in enumerate(self.knobs)})
                for j, (layer, chip) in enumerate(self.base.items())}

    def energy(self, bits: Bits) -> float:
        """Energy of one inference of the design (unprogrammed: the targets of the weights)."""
        if bits not in self.energies:
            report = cost(analog_copy(self.model, self.chips(bits)), self.example)
            self.energies[bits] = (report.energy_J,
                                   tuple(layer.energy_J for layer in report.layers))
        return self.energies[bits][0]

    def __call__(self, bits: Bits, stage: str) -> Design:
        if bits in self.measured:
            return self.measured[bits]
        self.energy(bits)
        analog = analog_copy(self.model, self.chips(bits))
        accuracy = []
        for seed in self.seeds:  # the same chips at every design
            program(analog, seed=seed, instances=self.instances)
            drift(analog, self.time_s)
            accuracy.append(evaluate(analog, self.test, batch_size=1024, seed=seed).accuracy)
        values = np.concatenate(accuracy)
        design = Design(stage, bits, *self.energies[bits], values,
                        bool(values.mean() >= self.floor))
        self.measured[bits] = design
        self.order.append(bits)
        return design


def _with(bits: Bits, knob: int, layer: int, value: int) -> Bits:
    """``bits`` with one entry changed."""
    row = list(bits[knob])
    row[layer] = value
    return (*bits[:knob], tuple(row), *bits[knob + 1:])


def _lower(knob: Knob, value: int) -> int | None:
    """The next grid value below ``value``, or None."""
    below = [int(v) for v in knob.grid if v < value]
    return max(below) if below else None


def find_energy_budget(
    model: nn.Module,
    test: tuple[torch.Tensor, torch.Tensor],
    chip: Chip | str,
    knobs: Sequence[Knob],
    *,
    tolerance_pp: float = 1.0,
    time_s: float = 86400.0,
    instances: int = 8,
    seeds: Sequence[int] = (0,),
    per_layer: Mapping[str, ChipSpec] | None = None,
    exclude: Sequence[str] = (),
    progress: bool = False,
) -> EnergyBudget:
    """The per-layer bits of least energy per inference within ``tolerance_pp`` (module
    docstring: the algorithm).

    Args:
        model: the digital model (not modified).
        test: (inputs, labels) the accuracy is measured on; its first input, as a batch of
            one, is the inference :func:`analogsim.cost` prices.
        chip: the card, with a ``[cost]`` section.
        knobs: the knobs chosen per layer (:func:`bits_knob`).
        tolerance_pp: accuracy loss allowed below the card design's, percentage points.
        time_s: time after programming at which accuracy is measured, s.
        instances: chip instances per seed.
        seeds: programming and read seeds; every design is measured on seeds × instances
            chips.
        per_layer: fixed per-layer overrides, as for :func:`analogsim.convert`; a layer whose
            bits they set starts there.
        exclude: layer names or globs kept digital (priced as digital MACs).
        progress: show a tqdm bar.

    Raises:
        SpecError: a tolerance ≤ 0 or no knob.
        CardError: the card has no ``[cost]`` section.
    """
    if not tolerance_pp > 0:
        raise SpecError(f"tolerance_pp must be > 0 percentage points, got {tolerance_pp!r}")
    if not knobs:
        raise SpecError(f"a cost budget needs a knob to choose, one of {list(CHOICES)}")
    chip = load_chip(chip)
    card_cost(chip, "a cost budget's design")
    base = base_layer_chips(model, chip, per_layer, exclude)
    layers = tuple(base)
    designs = _Designs(model, test, base, knobs, test[0][:1], time_s, instances, seeds)
    start: Bits = tuple(tuple(int(c.value(k.name)) for c in base.values()) for k in knobs)
    bar = tqdm(desc="cost budget", unit="design", disable=not progress)

    def measure(bits: Bits, stage: str) -> Design:
        bar.update(bits not in designs.measured)
        return designs(bits, stage)

    baseline = measure(start, "card").mean  # holds: the floor is not set yet
    designs.floor = baseline - tolerance_pp / 100
    idle = {knob.name for i, knob in enumerate(knobs)  # knobs whose first step saves nothing
            if not any(designs.energy(start) > designs.energy(_with(start, i, j, lower))
                       for j in range(len(layers))
                       if (lower := _lower(knob, start[i][j])) is not None)}
    # 2. each layer alone: its accuracy at every value down to its minimum, and one past
    alone: dict[tuple[int, int, int], float] = {}
    minimum = np.array(start, dtype=float)
    for i, knob in enumerate(knobs):
        for j in range(len(layers)):
            alone[i, j, start[i][j]] = baseline
            value = start[i][j]
            while (lower := _lower(knob, value)) is not None:
                design = measure(_with(start, i, j, lower), "alone")
                alone[i, j, lower] = design.mean
                if not design.holds:
                    break
                value = lower
            minimum[i, j] = value
    # 3. uniform: one common value per knob, knob by knob (a knob that saves nothing stays)
    uniform = start
    for i, knob in enumerate(knobs):
        for value in (int(v) for v in knob.grid if knob.name not in idle):
            trial = (*uniform[:i], tuple(min(value, s) for s in start[i]), *uniform[i + 1:])
            if not measure(trial, "uniform").holds:
                break
            uniform = trial
    # 4. greedy: the largest saving per accuracy cost first, re-measured jointly
    current, frozen, path = start, set[tuple[int, int]](), [start]
    while True:
        steps = []
        for i, knob in enumerate(knobs):
            for j in range(len(layers)):
                lower = _lower(knob, current[i][j])
                if (i, j) in frozen or lower is None or lower < minimum[i, j]:
                    continue
                saving = designs.energy(current) - designs.energy(_with(current, i, j, lower))
                if saving <= 0:
                    frozen.add((i, j))
                    continue
                loss = alone[i, j, current[i][j]] - alone[i, j, lower]
                steps.append((saving / max(loss, MIN_COST), i, j, lower))
        if not steps:
            break
        _, i, j, lower = max(steps)
        trial = _with(current, i, j, lower)
        if measure(trial, "greedy").holds:
            current = trial
            path.append(trial)
        else:
            frozen.add((i, j))
    bar.close()
    measured = tuple(designs.measured[bits] for bits in designs.order)
    holding = [n for n, d in enumerate(measured) if d.holds]
    chosen = min(holding, key=lambda n: (measured[n].energy_J, -measured[n].mean))
    notes = tuple(f"{name}: no step of it saves energy on this card (its [cost] does not "
                  "price it), so every layer keeps the card's value" for name in sorted(idle))
    log.info("cost budget of %d layers: %d designs measured; chosen %s, %.1f %% below the "
             "uniform baseline", len(layers), len(measured), measured[chosen].bits,
             100 * (1 - measured[chosen].energy_J / designs.energy(uniform)))
    return EnergyBudget(tuple(knobs), layers, baseline, tolerance_pp / 100, measured,
                        minimum, designs.order.index(uniform), chosen,
                        tuple(designs.order.index(bits) for bits in path), notes)
