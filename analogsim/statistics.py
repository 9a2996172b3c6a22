"""Confidence intervals over independent units (numpy/scipy only, shared by evaluation, the
report and the reproductions).

A result's sampling structure is nested: training seed → chip instance → noise draw. Only the
outermost level present is a set of independent units; values inside one unit share it (the
draws of one chip share its programmed weights, the chips of one seed share its trained model).
An interval over a quantity that varies with the trained model is therefore computed over
seeds (per-seed means, Student's t), an interval for one trained model over chips, and a
single chip's accuracy over its test samples (Wilson). Pooling seeds × chips as if they were
independent gives an interval about √(chips) too narrow when the seeds differ; see
docs/experiments.md, "Confidence intervals: over which unit".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analogsim.errors import ShapeError

_PLURAL = {"seed": "seeds", "chip": "chips", "instance": "chips", "draw": "draws",
           "replicate": "replicates", "sample": "test samples", "repeat": "repeats"}
ONE_SEED = "one seed: no uncertainty over trained models"


@dataclass(frozen=True)
class Interval:
    """A mean and its confidence interval over ``n`` independent ``unit`` (plural noun);
    ``detail`` is the whole sampling structure ("3 seeds × 20 chips"), ``note`` a caveat
    (e.g. :data:`ONE_SEED`, or that a verdict depends on one grid step)."""

    mean: float
    low: float
    high: float
    n: int
    unit: str
    detail: str
    note: str = ""

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def describe(self, scale: float = 100, digits: int = 2) -> str:
        """E.g. "96.51 [95.20, 97.82] (n = 3 seeds × 20 chips)" (``scale`` 100: percent)."""
        m, lo, hi = (f"{scale * v:.{digits}f}" for v in (self.mean, self.low, self.high))
        return f"{m} [{lo}, {hi}] (n = {self.detail})"

    def excludes(self, value: float = 0.0) -> bool:
        """Whether the interval lies wholly above or below ``value`` (False when undefined)."""
        return bool(self.low > value or self.high < value)


def plural(axis: str) -> str:
    """The plural noun of an axis name: "seed" → "seeds", "instance" → "chips"."""
    return _PLURAL.get(axis, axis if axis.endswith("s") else axis + "s")


def count(n: int, axis: str) -> str:
    """"3 seeds", "1 seed", "20 chips"."""
    noun = plural(axis)
    if n == 1 and noun.endswith("s"):
        noun = noun[:-1]
    return f"{n} {noun}"


def _nanmean(values: np.ndarray, axis) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _checked(values, axes: Sequence[str]) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != len(axes):
        raise ShapeError(f"values of shape {values.shape} named by {len(axes)} axes "
                         f"{tuple(axes)}: expected one name per dimension")
    return values


def _structure(values: np.ndarray, axes: Sequence[str]) -> str:
    """"3 seeds × 20 chips", counting the units with a finite value at each level."""
    parts = []
    for depth, axis in enumerate(axes):
        inner = tuple(range(depth + 1, values.ndim))
        present = np.isfinite(values).any(axis=inner) if inner else np.isfinite(values)
        per_parent = present.reshape(-1, values.shape[depth]).sum(axis=1)
        per_parent = per_parent[per_parent > 0] if depth else per_parent
        if per_parent.size == 0:
            per_parent = np.zeros(1, dtype=int)
        lo, hi = int(per_parent.min()), int(per_parent.max())
        text = count(hi, axis)
        parts.append(text if lo == hi else f"{lo}–{text}")
    return " × ".join(parts)


def t_interval(values, level: float = 0.95) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of Student's t over the finite values (NaN bounds when n < 2)."""
    values = np.asarray(values, dtype=float).ravel()
    values = values[np.isfinite(values)]
    n = values.size
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(values.mean())
    if n < 2:
        return mean, float("nan"), float("nan"), n
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * float(values.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half, n


def wilson(mean: float, samples: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``mean`` over ``samples`` trials."""
    z = float(stats.norm.ppf((1 + level) / 2))
    denominator = 1 + z**2 / samples
    centre = (mean + z**2 / (2 * samples)) / denominator
    half = z * math.sqrt(mean * (1 - mean) / samples + z**2 / (4 * samples**2)) / denominator
    return float(centre - half), float(centre + half)


def interval_over_units(values, axes: Sequence[str], level: float = 0.95,
                        samples: int | None = None) -> Interval:
    """Mean and CI over the independent units: the first axis of ``values``.

    Args:
        values: an array whose dimensions are named by ``axes``, outermost first, e.g.
            ("seed", "chip") or ("seed", "draw") or ("chip",). NaN values are ignored; a unit
            with none finite is dropped.
        samples: test samples behind each value (accuracies), for a single value.

    Returns:
        With ≥ 2 units on the first axis: Student's t over the per-unit means (means over the
        inner axes). With one unit there: the same over the next axis, saying so in ``detail``
        and ``note`` ("1 seed × 20 chips", :data:`ONE_SEED` when that unit is a seed). With a
        single value and ``samples``: the Wilson interval over test samples.
    """
    values = _checked(values, axes)
    detail = _structure(values, axes) if axes else "1 value"
    note = ""
    while values.ndim:
        units = _nanmean(values, tuple(range(1, values.ndim)))
        finite = np.isfinite(units)
        if finite.sum() >= 2 or values.ndim == 1:
            mean, low, high, n = t_interval(units, level)
            if n == 1 and samples:
                break
            return Interval(mean, low, high, n, plural(axes[0]), detail, note)
        if axes[0] == "seed" and not note:
            note = ONE_SEED
        values, axes = values[int(np.argmax(finite))], tuple(axes[1:])
    mean = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    if samples and np.isfinite(mean):
        low, high = wilson(mean, samples, level)
        return Interval(mean, low, high, samples, "test samples",
                        f"{detail} × {samples} test samples", note)
    return Interval(mean, float("nan"), float("nan"), int(np.isfinite(mean)), "values",
                    detail, note)


def paired_difference(a, b, axes: Sequence[str], level: float = 0.95) -> Interval:
    """a − b paired by the first axis: per-unit means of each side (over their inner axes,
    which may differ in size), then Student's t over the differences of units finite on both
    sides. With one unit on the first axis, the two sides are not paired below it: Welch's t
    over the per-unit means of the next axis, stated in ``detail``."""
    a, b = _checked(a, axes), _checked(b, axes)
    if a.shape[0] != b.shape[0]:
        raise ShapeError(f"paired difference over {axes[0]!r}: {a.shape[0]} against "
                         f"{b.shape[0]} units; expected the same units on both sides")
    mean_a = _nanmean(a, tuple(range(1, a.ndim)))
    mean_b = _nanmean(b, tuple(range(1, b.ndim)))
    difference = mean_a - mean_b
    detail = _structure(a, axes)
    if a.shape[0] >= 2 or a.ndim == 1:
        mean, low, high, n = t_interval(difference, level)
        return Interval(mean, low, high, n, plural(axes[0]), f"{detail}, paired by "
                        f"{axes[0]}", "")
    note = ONE_SEED if axes[0] == "seed" else ""
    inner_a = _nanmean(a[0], tuple(range(1, a.ndim - 1)))
    inner_b = _nanmean(b[0], tuple(range(1, b.ndim - 1)))
    inner_a, inner_b = inner_a[np.isfinite(inner_a)], inner_b[np.isfinite(inner_b)]
    unit = plural(axes[1])
    if inner_a.size < 2 or inner_b.size < 2:
        return Interval(float(difference[0]), float("nan"), float("nan"), 1, unit,
                        detail, note)
    welch = stats.ttest_ind(inner_a, inner_b, equal_var=False).confidence_interval(level)
    return Interval(float(inner_a.mean() - inner_b.mean()), float(welch.low),
                    float(welch.high), min(inner_a.size, inner_b.size), unit,
                    f"{detail}, unpaired (Welch's t over {unit})", note)


def hierarchical_bootstrap(values, axes: Sequence[str],
                           statistic: Callable[[np.ndarray], float] = np.mean,
                           resamples: int = 2000, seed: int = 0,
                           level: float = 0.95) -> Interval:
    """Percentile interval of ``statistic`` by a cluster bootstrap: resample units of the first
    axis with replacement, then units of the second axis within each (deeper axes are kept
    whole). ``statistic`` maps an array shaped like ``values`` to a number, so a derived
    quantity (a threshold, a crossover) can be computed from each resampled data set.

    With one unit on the first axis the bootstrap resamples the next axis only (``note`` says
    so). The percentile bootstrap undercovers with few clusters (about 88 % at 10 seeds, less at
    3): prefer :func:`interval_over_units` for means, and use ≥ 10 seeds for a bootstrap.
    """
    values = _checked(values, axes)
    detail, note = _structure(values, axes), ""
    if values.shape[0] == 1 and values.ndim >= 2:
        note = ONE_SEED if axes[0] == "seed" else ""
        inner = _bootstrap(values[0], statistic, resamples, seed)
        samples = inner
        unit, n = plural(axes[1]), values.shape[1]
    else:
        samples = _bootstrap(values, statistic, resamples, seed)
        unit, n = plural(axes[0]), values.shape[0]
    samples = samples[np.isfinite(samples)]
    estimate = float(statistic(values))
    if samples.size == 0:
        return Interval(estimate, float("nan"), float("nan"), n, unit, detail, note)
    low, high = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return Interval(estimate, float(low), float(high), n, unit, f"{detail}, cluster bootstrap",
                    note)


def _bootstrap(values: np.ndarray, statistic, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    outer = rng.integers(0, values.shape[0], size=(resamples, values.shape[0]))
    if values.ndim >= 2:
        inner = rng.integers(0, values.shape[1], size=(resamples, *values.shape[:2]))
        drawn = values[outer[..., None], inner]
    else:
        drawn = values[outer]
    if statistic is np.mean or statistic is np.nanmean:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return statistic(drawn.reshape(resamples, -1), axis=1)
    return np.array([statistic(d) for d in drawn], dtype=float)


def derived_over_seeds(per_seed, unit: str = "seeds", grid=None,
                       level: float = 0.95) -> Interval:
    """Mean and Student's t interval of a quantity derived once per seed (a threshold, a
    midpoint μ, a crossover); NaN per-seed values are dropped. One seed gives no interval and
    :data:`ONE_SEED` as its note. With ``grid`` (the values the quantity is read off), the note
    says how many grid steps the per-seed values span, i.e. whether a verdict at the grid's
    resolution depends on the trained model."""
    per_seed = np.asarray(per_seed, dtype=float).ravel()
    mean, low, high, n = t_interval(per_seed, level)
    notes = [ONE_SEED] if n == 1 and unit == "seeds" else []
    if grid is not None and n >= 2:
        steps = spread_in_steps(per_seed, grid)
        if steps:
            notes.append(f"the per-seed values span {steps} grid step{'s' * (steps > 1)}")
    noun = unit[:-1] if n == 1 and unit.endswith("s") else unit
    return Interval(mean, low, high, n, unit, f"{n} {noun}", "; ".join(notes))


def spread_in_steps(per_seed, grid) -> int:
    """How many steps of ``grid`` the finite per-seed values span (0: all at one grid value,
    1: a verdict read off the grid depends on one grid step)."""
    per_seed = np.asarray(per_seed, dtype=float).ravel()
    per_seed = per_seed[np.isfinite(per_seed)]
    if per_seed.size < 2:
        return 0
    grid = np.asarray(grid, dtype=float)
    index = np.abs(per_seed[:, None] - grid[None, :]).argmin(axis=1)
    return int(index.max() - index.min())


def confidence_interval(accuracy: np.ndarray, samples: int) -> tuple[float, float]:
    """95 % CI of the mean accuracy of one trained model over its chip instances.

    Args:
        accuracy: fraction correct per chip instance, shape (K,).
        samples: test samples behind each accuracy.

    Returns:
        (low, high). With K ≥ 2: mean ± t_{0.975, K−1} · s / √K over instances. With K = 1:
        the Wilson score interval of a binomial proportion over ``samples``. Values pooled
        over seeds are not independent: use :func:`interval_over_units` for those.
    """
    accuracy = np.asarray(accuracy, dtype=float)
    k = accuracy.size
    mean = float(accuracy.mean())
    if k >= 2:
        half = stats.t.ppf(0.975, k - 1) * float(accuracy.std(ddof=1)) / math.sqrt(k)
        return mean - half, mean + half
    return wilson(mean, samples)


def welch_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """mean(a) − mean(b) and its 95 % CI by Welch's t (unequal variances), NaN replicates
    dropped; NaN when either side has fewer than two replicates. For independent replicates
    of one model only: a comparison over seeds is :func:`paired_difference`."""
    a, b = (np.asarray(v, dtype=float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        return float("nan"), float("nan"), float("nan")
    interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    return float(a.mean() - b.mean()), float(interval.low), float(interval.high)


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


def thresholds_per_seed(grid: np.ndarray, per_seed: np.ndarray, reference: np.ndarray | float,
                        tolerance_pp: float = 1.0) -> np.ndarray:
    """:func:`tolerance_threshold` of each seed's mean curve (``per_seed`` [grid, seed]; one
    reference per seed or one for all), (seeds,); 0 for a seed that fails even at the grid's
    smallest value (its threshold lies below the grid), so that it counts among the seeds."""
    reference = np.broadcast_to(np.asarray(reference, dtype=float), per_seed.shape[-1:])
    thresholds = np.array([tolerance_threshold(grid, per_seed[:, s], reference[s], tolerance_pp)
                           for s in range(per_seed.shape[-1])])
    return np.where(np.isnan(thresholds), 0.0, thresholds)
