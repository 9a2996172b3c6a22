"""Confidence intervals of accuracies and their differences (numpy/scipy only, shared by
evaluation and reports)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def confidence_interval(accuracy: np.ndarray, samples: int) -> tuple[float, float]:
    """95 % CI of the mean accuracy.

    Args:
        accuracy: fraction correct per chip instance, shape (K,).
        samples: test samples behind each accuracy.

    Returns:
        (low, high). With K ≥ 2: mean ± t_{0.975, K−1} · s / √K over instances. With K = 1:
        the Wilson score interval of a binomial proportion over ``samples``.
    """
    accuracy = np.asarray(accuracy, dtype=float)
    k = accuracy.size
    mean = float(accuracy.mean())
    if k >= 2:
        half = stats.t.ppf(0.975, k - 1) * float(accuracy.std(ddof=1)) / math.sqrt(k)
        return mean - half, mean + half
    z = float(stats.norm.ppf(0.975))
    denominator = 1 + z**2 / samples
    centre = (mean + z**2 / (2 * samples)) / denominator
    half = z * math.sqrt(mean * (1 - mean) / samples + z**2 / (4 * samples**2)) / denominator
    return centre - half, centre + half


def welch_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """mean(a) − mean(b) and its 95 % CI by Welch's t (unequal variances), NaN replicates
    dropped; NaN when either side has fewer than two replicates."""
    a, b = (np.asarray(v, dtype=float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        return float("nan"), float("nan"), float("nan")
    interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    return float(a.mean() - b.mean()), float(interval.low), float(interval.high)
