"""A cost budget's designs measured again on fresh chips, never used in the search.

The search (:mod:`.budget_energy`) keeps a design when its mean accuracy holds the floor on
its chips, so the chosen design's accuracy there is biased upwards: of the designs near the
floor, those that happened to do well on those chips are kept (selection bias; the winner's
curse). :func:`confirm_designs` programs the card design, the uniform baseline and the chosen
design onto chips of program seeds the search did not use (the seeds after its largest, each
with the search's instances per seed, the last with what is left), the same fresh chips for
each design (common random numbers, so their differences are paired by chip), and measures
their accuracy at the search's time after programming.

On the fresh chips the chosen design *holds* when its mean accuracy is at or above the card
design's mean on the same chips minus the tolerance: the search's criterion, re-measured.
Whether it holds with 95 % confidence is whether the upper end of the 95 % CI of the paired
drop (Student's t over the fresh chips) is within the tolerance. The test samples are the
search's: fresh chips remove the selection over chips, not over test samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from analogsim.cards import Chip, load_chip
from analogsim.conversion import ChipSpec
from analogsim.errors import SpecError
from analogsim.evaluation import evaluate
from analogsim.experiments.budget_energy import EnergyBudget
from analogsim.experiments.budget_energy_choices import design_chips
from analogsim.experiments.sweep import analog_copy, base_layer_chips
from analogsim.programming import drift, program
from analogsim.statistics import Interval, interval_over_units, paired_difference


def fresh_seeds(search_seeds: Sequence[int], chips: int, instances: int
                ) -> list[tuple[int, int]]:
    """(seed, instances) of ``chips`` fresh chips: the seeds after the search's largest, each
    with ``instances`` chips (the last with the rest). Chip k of seed s is drawn from streams
    derived from (s, layer, k) (:func:`analogsim.program`), so these share nothing with the
    search's chips."""
    first = max(search_seeds) + 1
    return [(first + n, min(instances, chips - n * instances))
            for n in range(-(-chips // instances))]


@dataclass(frozen=True, eq=False)
class Confirmation:
    """Accuracy of some designs of a cost budget on fresh chips.

    Attributes:
        designs: indices into the budget's designs: the card design, the uniform baseline
            and the chosen design, each once (in that order).
        seeds: the fresh program seeds, with the chips of each: ((seed, instances), …).
        accuracy: accuracy[design, chip] on the fresh chips, seed-major, fraction.
        tolerance: the accuracy loss allowed below the card design (fraction).
        card, chosen: rows of the card and the chosen design in ``accuracy``.
    """

    designs: tuple[int, ...]
    seeds: tuple[tuple[int, int], ...]
    accuracy: np.ndarray
    tolerance: float
    card: int
    chosen: int

    @property
    def chips(self) -> int:
        return self.accuracy.shape[1]

    def interval(self, row: int) -> Interval:
        """Mean accuracy of design row ``row`` and its 95 % CI over the fresh chips (one
        trained model: Student's t over chips)."""
        return interval_over_units(self.accuracy[row][None], ("seed", "chip"))

    def drop(self, row: int) -> Interval:
        """Card design − design row ``row`` (fraction), and its 95 % CI, paired by chip."""
        return paired_difference(self.accuracy[self.card], self.accuracy[row], ("chip",))

    @property
    def floor(self) -> float:
        """The card design's mean on the fresh chips minus the tolerance (fraction)."""
        return float(self.accuracy[self.card].mean()) - self.tolerance

    @property
    def holds(self) -> bool:
        """Whether the chosen design's mean accuracy on the fresh chips is at or above
        :attr:`floor`."""
        return bool(self.accuracy[self.chosen].mean() >= self.floor)

    @property
    def holds_confidently(self) -> bool:
        """Whether the upper end of the 95 % CI of the chosen design's drop is within the
        tolerance."""
        return bool(self.drop(self.chosen).high <= self.tolerance)


def confirm_designs(
    model: nn.Module,
    test: tuple[torch.Tensor, torch.Tensor],
    chip: Chip | str,
    budget: EnergyBudget,
    *,
    chips: int,
    search_seeds: Sequence[int],
    instances: int,
    time_s: float = 86400.0,
    per_layer: Mapping[str, ChipSpec] | None = None,
    exclude: Sequence[str] = (),
) -> Confirmation:
    """The card design, the uniform baseline and the chosen design of ``budget`` measured on
    ``chips`` fresh chips (module docstring).

    Args:
        model, test, chip, per_layer, exclude: as given to
            :func:`~.budget_energy.find_energy_budget`.
        budget: what it found.
        chips: fresh chips, ≥ 2.
        search_seeds: the program seeds the search used; the fresh seeds follow the largest.
        instances: chips per fresh seed (the search's instances per seed).
        time_s: time after programming at which accuracy is measured, s.

    Raises:
        SpecError: fewer than 2 chips.
    """
    if chips < 2:
        raise SpecError(f"a confirmation on fresh chips needs chips ≥ 2 (a CI over chips), "
                        f"got {chips!r}")
    base = base_layer_chips(model, load_chip(chip), per_layer, exclude)
    order = list(dict.fromkeys((0, budget.uniform, budget.chosen)))
    seeds = fresh_seeds(search_seeds, chips, instances)
    accuracy = np.empty((len(order), chips))
    for row, index in enumerate(order):
        design = budget.designs[index]
        analog = analog_copy(model, design_chips(base, budget.knobs, design.bits,
                                                 budget.model_knobs, design.setting))
        values = []
        for seed, count in seeds:  # the same fresh chips for every design
            program(analog, seed=seed, instances=count)
            drift(analog, time_s)
            values.append(evaluate(analog, test, batch_size=1024, seed=seed).accuracy)
        accuracy[row] = np.concatenate(values)
    return Confirmation(tuple(order), tuple(seeds), accuracy, budget.tolerance, 0,
                        order.index(budget.chosen))
