"""Statistics the report derives from a run's replicates (the last axis of a metric), each
over its independent unit (:mod:`analogsim.sampling`, :mod:`analogsim.statistics`)."""

from __future__ import annotations

import numpy as np

from analogsim.results import RunData
from analogsim.sampling import describe_levels, sample_levels, sampled
from analogsim.statistics import (
    ONE_SEED,
    Interval,
    derived_over_seeds,
    interval_over_units,
    plural,
    thresholds_per_seed,
)


def intervals(run: RunData, metric: str = "accuracy") -> np.ndarray:
    """One :class:`~analogsim.statistics.Interval` per point (an object array shaped by the
    metric's axes but its last): over seeds when the replicates span several, else over the
    chips (or draws) of one model, else Wilson over ``test_samples``; NaN values ignored."""
    values, _ = sampled(run, metric)
    names, _ = sample_levels(run, metric)
    samples = int(run.attrs.get("test_samples", 1000))
    points = values.shape[:values.ndim - len(names)]
    cells = np.empty(points, dtype=object)
    for index in np.ndindex(points):
        cells[index] = interval_over_units(values[index], names, samples=samples)
    return cells


def summarise(run: RunData, metric: str = "accuracy") -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """Mean and 95 % CI bounds of each point (:func:`intervals`); arrays shaped by the other
    axes, NaN where a point is not measured."""
    cells = intervals(run, metric)
    return tuple(np.array([getattr(c, field) for c in cells.flat], dtype=float)
                 .reshape(cells.shape) for field in ("mean", "low", "high"))


def sampling(run: RunData, metric: str = "accuracy") -> str:
    """The sampling structure of a run's replicates: "3 seeds × 8 chips"."""
    return describe_levels(*sample_levels(run, metric))


def ci_basis(run: RunData, metric: str = "accuracy") -> str:
    """What a run's CIs are over: "95 % CI over seeds, n = 3 seeds × 8 chips", or for one
    trained model "95 % CI over chips, n = 1 seed × 8 chips; one seed: no uncertainty over
    trained models"."""
    names, shape = sample_levels(run, metric)
    detail = sampling(run, metric)
    level = next((i for i, n in enumerate(shape) if n >= 2), None)
    if level is None:
        samples = int(run.attrs.get("test_samples", 1000))
        text = f"95 % CI over test samples (Wilson), n = {detail} × {samples} test samples"
    else:
        text = f"95 % CI over {plural(names[level])}, n = {detail}"
    if names[0] == "seed" and shape[0] == 1:
        text += f"; {ONE_SEED}"
    return text


def per_seed_curves(run: RunData, metric: str = "accuracy") -> np.ndarray | None:
    """The metric averaged within each seed, seeds as the last axis, when the run's replicates
    span ≥ 2 seeds; else None."""
    values, _ = sampled(run, metric)
    names, shape = sample_levels(run, metric)
    if names[0] != "seed" or shape[0] < 2:
        return None
    inner = tuple(range(values.ndim - len(names) + 1, values.ndim))
    with np.errstate(all="ignore"):
        return np.nanmean(values, axis=inner) if inner else values


def threshold_over_seeds(grid: np.ndarray, per_seed: np.ndarray, reference: np.ndarray | float,
                         tolerance_pp: float = 1.0) -> Interval:
    """:func:`tolerance_threshold` of each seed's mean curve (``per_seed`` [grid, seed]; one
    reference per seed or one for all), as an interval over seeds whose note says how many
    grid steps the per-seed thresholds span."""
    return derived_over_seeds(thresholds_per_seed(grid, per_seed, reference, tolerance_pp),
                              grid=grid)


def knife_edge(low: np.ndarray, high: np.ndarray, reference: float,
               tolerance_pp: float = 1.0) -> np.ndarray:
    """Which grid values' CIs contain the tolerance floor: a threshold next to one of them may
    move a grid step with another trained model or other chips."""
    floor = reference - tolerance_pp / 100
    return (np.asarray(low) <= floor) & (np.asarray(high) >= floor)


def mean_and_spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (ddof = 1) over the last axis, NaN where a point is
    incomplete: the y and Δy the walking-noise midpoint fit weights by (S2 Eq. 2)."""
    values = np.asarray(values, dtype=float)
    complete = np.isfinite(values).all(axis=-1)
    mean = np.where(complete, values.mean(axis=-1), np.nan)
    replicates = values.shape[-1]
    spread = values.std(axis=-1, ddof=1) if replicates > 1 else np.zeros_like(mean)
    return mean, np.where(complete, spread, np.nan)
