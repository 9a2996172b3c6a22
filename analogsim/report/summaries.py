"""Statistics the report derives from a run's replicates (the last axis of a metric)."""

from __future__ import annotations

import numpy as np

from analogsim.results import RunData
from analogsim.statistics import confidence_interval


def summarise(run: RunData, metric: str = "accuracy") -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """Mean and 95 % CI bounds over the last (replicate) axis; arrays shaped by the other axes.

    The CI is Student's t over the replicates (Wilson over ``test_samples`` for one replicate),
    as :func:`analogsim.statistics.confidence_interval`; NaN where a point is incomplete.
    """
    data = run.data[metric]
    samples = int(run.attrs.get("test_samples", 1000))
    flat = data.reshape(-1, data.shape[-1])
    mean = np.full(flat.shape[0], np.nan)
    low, high = mean.copy(), mean.copy()
    for i, row in enumerate(flat):
        if np.isfinite(row).all():
            mean[i] = row.mean()
            low[i], high[i] = confidence_interval(row, samples)
    shape = data.shape[:-1]
    return mean.reshape(shape), low.reshape(shape), high.reshape(shape)


def mean_and_spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (ddof = 1) over the last axis, NaN where a point is
    incomplete: the y and Δy the walking-noise midpoint fit weights by (S2 Eq. 2)."""
    values = np.asarray(values, dtype=float)
    complete = np.isfinite(values).all(axis=-1)
    mean = np.where(complete, values.mean(axis=-1), np.nan)
    replicates = values.shape[-1]
    spread = values.std(axis=-1, ddof=1) if replicates > 1 else np.zeros_like(mean)
    return mean, np.where(complete, spread, np.nan)


def tolerance_threshold(values: np.ndarray, accuracy: np.ndarray, reference: float,
                        tolerance_pp: float = 1.0) -> float:
    """The largest noise value up to which the mean accuracy stays within ``tolerance_pp``
    percentage points of ``reference`` (every smaller value of the grid too); NaN when even the
    smallest value fails. S3's noise tolerance, read off a grid.

    Args:
        values: the noise grid, increasing (a harsher value is larger).
        accuracy: mean accuracy per grid value (fraction).
        reference: the clean accuracy (fraction).
    """
    passing = np.asarray(accuracy) >= reference - tolerance_pp / 100
    if not passing[0]:
        return float("nan")
    first_fail = np.flatnonzero(~passing)
    return float(values[first_fail[0] - 1] if first_fail.size else values[-1])
