"""Confidence intervals of accuracies (numpy/scipy only, shared by evaluation and reports)."""

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
