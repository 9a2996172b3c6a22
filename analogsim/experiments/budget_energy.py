"""Cost budgets: the per-layer bits (and model-wide tile size, redundancy) that minimise
energy per inference within a tolerance.

For a model, a card with a ``[cost]`` section and an accuracy tolerance (percentage points
below the card's own accuracy at its own values, the *card design*), :func:`find_energy_budget`
chooses, per analog layer, a value of each per-layer knob (``adc.bits``, ``dac.bits``) from a
grid, and optionally one value for the whole model of each model-wide knob (tile size,
redundancy; :mod:`.budget_energy_choices` says why those are model-wide), and prices every
design with :func:`analogsim.cost` (energy of one inference, J):

1. **the card design**: every layer at its card's values; its mean accuracy is the baseline
   and baseline − tolerance the floor a design must hold. Then, for each *setting* (a
   combination of model-wide values, the card's first; without model-wide knobs only the
   card's), from that setting with the card's bits (stage "setting" for the others; a
   setting that fails the floor there is not searched further, as fewer bits are taken
   never to restore accuracy):
2. **each layer alone**: one layer's knob walked down the grid, the others at the card's
   bits, to the last value before the first that falls below the floor: that layer's
   minimum;
3. **uniform designs**: every layer at one common value, walked down the grid (knob by knob,
   in the order chosen) while the design holds; the last that holds is the setting's uniform
   design, and the least energy of these over the settings the *uniform baseline*, the design
   a chip with one resolution for every layer would use;
4. **greedy**: from the setting's start, lower by one grid step the (layer, knob) with the
   largest energy saving per accuracy cost, the cost estimated from step 2 (the layer's
   accuracy alone at its current value minus that at the next, at least :data:`MIN_COST`);
   measure the joint design; keep the step if it holds, else freeze that (layer, knob). Steps
   below a layer's own minimum, and steps that save no energy, are not tried. It ends when no
   step is left.

The chosen design is the least energy among all the designs measured that hold the floor
(so never more than the uniform baseline's). Every accuracy is the mean over the same chips
(seeds × instances, programmed identically at every design: common random numbers); the
chosen design's accuracy is measured on the chips it was chosen on, which biases it upwards
(the search keeps designs that happened to hold there): :mod:`.budget_energy_confirm`
measures it again on fresh chips.
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
from analogsim.experiments.budget_energy_choices import (
    CHOICES,
    PER_LAYER,
    Bits,
    Setting,
    design_chips,
    is_model_wide,
    setting_text,
    settings,
)
from analogsim.experiments.sweep import analog_copy, base_layer_chips
from analogsim.programming import drift, program
from analogsim.tiles.cost import card_cost

log = logging.getLogger(__name__)

#: What a cost budget can minimise: the quantity, in the unit :func:`analogsim.cost` gives.
OBJECTIVES = {"energy": "energy per inference (J)"}
#: Accuracy cost (fraction) below which a step counts as this costly, so that free steps
#: rank by their energy saving alone: 0.01 pp.
MIN_COST = 1e-4

Key = tuple[Bits, Setting]


@dataclass(frozen=True, eq=False)
class Design:
    """One measured design.

    Attributes:
        stage: how the search came to it: "card", "setting", "alone", "uniform" or "greedy".
        bits: bits[knob][layer], the value of each per-layer knob in each layer (bits).
        energy_J: energy of one inference (:func:`analogsim.cost`), J.
        layer_energy_J: that of each analog layer, J.
        accuracy: accuracy per chip, seed-major (seeds × instances), fraction.
        holds: whether the mean accuracy is at or above the floor.
        setting: the value of each model-wide knob (rows, columns, cells); () without any.
    """

    stage: str
    bits: Bits
    energy_J: float
    layer_energy_J: tuple[float, ...]
    accuracy: np.ndarray
    holds: bool
    setting: Setting = ()

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
        knobs, layers: the per-layer knobs and the analog layers, in order.
        baseline: mean accuracy of the card design (fraction).
        tolerance: the accuracy loss allowed (fraction); a design holds at ≥ baseline − it.
        designs: every design measured, in order; the first is the card design.
        minimum: minimum[knob, layer], the fewest bits of each layer alone (bits), in the
            chosen design's setting.
        uniform: index of the uniform baseline in ``designs``.
        chosen: index of the chosen design (least energy among those that hold).
        path: indices of the designs the greedy search stepped through in the chosen
            design's setting, from that setting's start.
        notes: what the reader should know (a knob whose steps saved no energy).
        model_knobs: the model-wide knobs (tile size, redundancy), in order; () without any.
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
    model_knobs: tuple[Knob, ...] = field(default=())

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
                 base: dict[str, Chip], knobs: Sequence[Knob], model_knobs: Sequence[Knob],
                 time_s: float, instances: int, seeds: Sequence[int]) -> None:
        self.model, self.test, self.base = model, test, base
        self.knobs, self.model_knobs = knobs, model_knobs
        self.time_s, self.instances, self.seeds = time_s, instances, seeds
        self.setting: Setting = ()
        self.measured: dict[Key, Design] = {}
        self.order: list[Key] = []
        self.energies: dict[Key, tuple[float, tuple[float, ...]]] = {}
        self.floor = -np.inf

    def analog(self, bits: Bits) -> nn.Module:
        return analog_copy(self.model, design_chips(self.base, self.knobs, bits,
                                                    self.model_knobs, self.setting))

    def energy(self, bits: Bits) -> float:
        """Energy of one inference of the design in the current setting (unprogrammed: the
        targets of the weights), J."""
        key = (bits, self.setting)
        if key not in self.energies:
            report = cost(self.analog(bits), self.test[0][:1])
            self.energies[key] = (report.energy_J,
                                  tuple(layer.energy_J for layer in report.layers))
        return self.energies[key][0]

    def index(self, bits: Bits) -> int:
        return self.order.index((bits, self.setting))

    def __call__(self, bits: Bits, stage: str) -> Design:
        key = (bits, self.setting)
        if key in self.measured:
            return self.measured[key]
        self.energy(bits)
        analog = self.analog(bits)
        accuracy = []
        for seed in self.seeds:  # the same chips at every design
            program(analog, seed=seed, instances=self.instances)
            drift(analog, self.time_s)
            accuracy.append(evaluate(analog, self.test, batch_size=1024, seed=seed).accuracy)
        values = np.concatenate(accuracy)
        design = Design(stage, bits, *self.energies[key], values,
                        bool(values.mean() >= self.floor), self.setting)
        self.measured[key] = design
        self.order.append(key)
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


@dataclass
class _SettingSearch:
    """Steps 2–4 of the module docstring in one setting: its layers' minima, uniform design
    and greedy path."""

    minimum: np.ndarray
    uniform: Bits
    path: list[Bits]


def _search_setting(designs: _Designs, knobs: Sequence[Knob], start: Bits, baseline: float,
                    idle: set[str], measure) -> _SettingSearch:
    """Each layer alone, the uniform designs, then the greedy steps, from ``start``."""
    layers = len(designs.base)
    # 2. each layer alone: its accuracy at every value down to its minimum, and one past
    alone: dict[tuple[int, int, int], float] = {}
    minimum = np.array(start, dtype=float).reshape(len(knobs), layers)
    for i, knob in enumerate(knobs):
        for j in range(layers):
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
            for j in range(layers):
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
    return _SettingSearch(minimum, uniform, path)


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
    """The per-layer bits (and model-wide setting) of least energy per inference within
    ``tolerance_pp`` (module docstring: the algorithm).

    Args:
        model: the digital model (not modified).
        test: (inputs, labels) the accuracy is measured on; its first input, as a batch of
            one, is the inference :func:`analogsim.cost` prices.
        chip: the card, with a ``[cost]`` section.
        knobs: the knobs chosen: per layer (:func:`~.budget_energy_choices.bits_knob`) and
            for the whole model (:func:`~.budget_energy_choices.model_knob`), in any order.
        tolerance_pp: accuracy loss allowed below the card design's, percentage points.
        time_s: time after programming at which accuracy is measured, s.
        instances: chip instances per seed.
        seeds: programming and read seeds; every design is measured on seeds × instances
            chips.
        per_layer: fixed per-layer overrides, as for :func:`analogsim.convert`; a layer whose
            bits they set starts there (a model-wide knob overrides them).
        exclude: layer names or globs kept digital (priced as digital MACs).
        progress: show a tqdm bar.

    Raises:
        SpecError: a tolerance ≤ 0 or no per-layer knob.
        CardError: the card has no ``[cost]`` section.
    """
    if not tolerance_pp > 0:
        raise SpecError(f"tolerance_pp must be > 0 percentage points, got {tolerance_pp!r}")
    if not knobs:
        raise SpecError(f"a cost budget needs a knob to choose, one of {list(CHOICES)}")
    chip = load_chip(chip)
    card_cost(chip, "a cost budget's design")
    model_knobs = tuple(k for k in knobs if is_model_wide(k))
    knobs = tuple(k for k in knobs if not is_model_wide(k))
    if not knobs:
        raise SpecError(f"a cost budget needs a per-layer knob to choose, one of "
                        f"{list(PER_LAYER)}, beside {[k.name for k in model_knobs]}")
    base = base_layer_chips(model, chip, per_layer, exclude)
    layers = tuple(base)
    designs = _Designs(model, test, base, knobs, model_knobs, time_s, instances, seeds)
    start: Bits = tuple(tuple(int(c.value(k.name)) for c in base.values()) for k in knobs)
    bar = tqdm(desc="cost budget", unit="design", disable=not progress)

    def measure(bits: Bits, stage: str) -> Design:
        bar.update((bits, designs.setting) not in designs.measured)
        return designs(bits, stage)

    all_settings = settings(chip, model_knobs)
    for setting in all_settings:  # a tile size the model does not fit fails here, up front
        designs.setting = setting
        designs.energy(start)
    designs.setting = all_settings[0]
    baseline = measure(start, "card").mean  # holds: the floor is not set yet
    designs.floor = baseline - tolerance_pp / 100
    idle = {knob.name for i, knob in enumerate(knobs)  # knobs whose first step saves nothing
            if not any(designs.energy(start) > designs.energy(_with(start, i, j, lower))
                       for j in range(len(layers))
                       if (lower := _lower(knob, start[i][j])) is not None)}
    searches: dict[Setting, _SettingSearch] = {}
    skipped = []
    for setting in all_settings:
        designs.setting = setting
        if not measure(start, "setting").holds:
            skipped.append(setting)
            continue
        searches[setting] = _search_setting(designs, knobs, start, baseline, idle, measure)
    bar.close()
    measured = tuple(designs.measured[key] for key in designs.order)
    holding = [n for n, d in enumerate(measured) if d.holds]
    chosen = min(holding, key=lambda n: (measured[n].energy_J, -measured[n].mean))
    uniform = min((designs.order.index((s.uniform, setting))
                   for setting, s in searches.items()),
                  key=lambda n: (measured[n].energy_J, -measured[n].mean))
    best = searches[measured[chosen].setting]
    notes = tuple(f"{name}: no step of it saves energy on this card (its [cost] does not "
                  "price it), so every layer keeps the card's value" for name in sorted(idle))
    notes += tuple(f"{setting_text(model_knobs, s)}: below the floor at the card's bits, "
                   "so not searched further" for s in skipped)
    log.info("cost budget of %d layers: %d designs measured; chosen %s %s, %.1f %% below the "
             "uniform baseline", len(layers), len(measured), measured[chosen].bits,
             measured[chosen].setting,
             100 * (1 - measured[chosen].energy_J / measured[uniform].energy_J))
    return EnergyBudget(knobs, layers, baseline, tolerance_pp / 100, measured, best.minimum,
                        uniform, chosen,
                        tuple(designs.order.index((bits, measured[chosen].setting))
                              for bits in best.path), notes, model_knobs)

