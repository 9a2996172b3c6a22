"""Schedules of a perturbation strength (σ of noise, ρ of SAM) over training.

- :class:`Constant` — the same value throughout.
- :class:`Ramp` — linear from ``start`` to ``end`` over ``length`` epochs (or steps), then
  held (METHODS.md §8: default linear, per epoch, over the whole run, from 0).
- :class:`Staircase` — ``start + increment · ⌊e / every⌋`` (multi-step SAM, METHODS.md §5:
  ρ(e) = 0.02 · ⌊e/10⌋ for 0-indexed epoch e, so the last value used in 200 epochs is 0.38).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

from analogsim.errors import UsageError

Unit = Literal["epoch", "step"]


class Schedule(Protocol):
    """A value per epoch (or per optimiser step, if ``unit == "step"``)."""

    unit: Unit

    def __call__(self, index: int) -> float:
        """The value at 0-indexed epoch or step ``index``."""


@dataclass(frozen=True)
class Constant:
    value: float
    unit: Unit = "epoch"

    def __call__(self, index: int) -> float:
        return self.value


@dataclass(frozen=True)
class Ramp:
    """Linear ramp from ``start`` to ``end`` over ``length`` units, then held at ``end``."""

    end: float
    length: int
    start: float = 0.0
    unit: Unit = "epoch"

    def __post_init__(self) -> None:
        if self.length < 1:
            raise UsageError(f"The 'length' of a Ramp must be ≥ 1 {self.unit}; got "
                             f"{self.length!r}.")

    def __call__(self, index: int) -> float:
        return self.start + (self.end - self.start) * min(1.0, index / self.length)


@dataclass(frozen=True)
class Staircase:
    """``start + increment · ⌊index / every⌋``, optionally capped at ``maximum``."""

    increment: float
    every: int
    start: float = 0.0
    maximum: float = math.inf
    unit: Unit = "epoch"

    def __post_init__(self) -> None:
        if self.every < 1:
            raise UsageError(f"The 'every' of a Staircase must be ≥ 1 {self.unit}; got "
                             f"{self.every!r}.")

    def __call__(self, index: int) -> float:
        return min(self.maximum, self.start + self.increment * (index // self.every))


def multi_step_sam_rho() -> Staircase:
    """S0's multi-step SAM: ρ from 0, +0.02 every 10 epochs."""
    return Staircase(increment=0.02, every=10)


def as_schedule(value: float | Schedule) -> Schedule:
    """A schedule for a number or a schedule (a number becomes :class:`Constant`)."""
    return value if callable(value) else Constant(float(value))


def value_at(schedule: Schedule, epoch: int, step: int) -> float:
    """The schedule's value at this 0-indexed epoch or optimiser step, as its unit says."""
    return schedule(step if schedule.unit == "step" else epoch)
