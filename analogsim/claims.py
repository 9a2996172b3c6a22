"""Claims a spec states before its run, and their verdicts, evaluated by code from the results.

A reproduction spec lists the paper's claims as ``[[claims]]`` tables, each with a test that
decides it; the engine stores them with the spec and does not act on them, and
:func:`evaluate_claims` judges them against the results file afterwards. A claim compares
*quantities*, each computed once per training seed so that its uncertainty is over seeds::

    [[claims]]
    id = "sign_doubles_tolerance"
    claim = "sign protection alone roughly doubles the tolerable noise"
    paper = "0.01 → 0.05"
    test = "ratio_at_least"       # mean(a) / mean(b) ≥ value, over seeds
    value = 1.5
    a = { run = "sweep", tolerance = "device_noise", at = { scheme = "sign" } }
    b = { run = "sweep", tolerance = "device_noise", at = { scheme = "none" } }

A quantity is a metric at a point (``{ run, metric = "accuracy", at = {axis: value} }``,
averaged over the point's chips or draws per seed; a metric without replicates, such as a
coding cost, is its one value), a constant (``{ value = 1.006 }``) or a tolerance
(``tolerance = axis``: the largest value of that noise axis up to which the mean accuracy
stays within ``within_pp`` (default 1) percentage points of the seed's digital accuracy, every
smaller value too; 0 when even the smallest fails). Tests:

- ``greater``: a − b > ``margin`` (default 0): holds when the 95 % CI of the difference paired
  by seed lies above the margin, does not hold when it lies below, else is not resolved;
- ``ratio_at_least`` / ``ratio_at_most``: a / b ≥ (≤) ``value``, by the per-seed ratios' CI
  likewise;
- ``ratio_within``: 1/``value`` ≤ a / b ≤ ``value`` (agreement within a factor, e.g. with a
  paper's number given as a constant);
- ``increasing``: ``quantities`` (a list) each greater than the one before;
- ``within``: |a − b| ≤ ``value``: holds when the CI of the difference lies inside ±value.

With one training seed there is no interval over trained models: the verdict compares the
means and says so; a tolerance whose per-seed values span grid steps says that too. A quantity
with no finite value (a run not finished) gives the verdict "no data".
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from analogsim.errors import SpecError
from analogsim.results import Results, RunData
from analogsim.sampling import sampled
from analogsim.statistics import (
    ONE_SEED,
    Interval,
    spread_in_steps,
    t_interval,
    thresholds_per_seed,
    welch_difference,
)

TESTS = ("greater", "ratio_at_least", "ratio_at_most", "ratio_within", "increasing", "within")
HOLDS, FAILS, UNRESOLVED = "holds", "does not hold", "not resolved"
NO_DATA = "no data"  # a quantity has no finite value (a run not finished, a model diverged)


@dataclass(frozen=True)
class Claim:
    """One claim of a spec: what the paper says and the test that decides it here."""

    id: str
    claim: str
    paper: str
    test: str
    quantities: tuple[Mapping[str, Any], ...]
    value: float


@dataclass(frozen=True)
class Verdict:
    """A claim judged: the verdict, the numbers behind it, and caveats."""

    claim: Claim
    verdict: str
    ours: str
    notes: tuple[str, ...]


def parse_claims(tables: Any, source: str) -> tuple[Claim, ...]:
    """The ``[[claims]]`` of a spec, checked: each names its id, claim, test and quantities."""
    if not isinstance(tables, list):
        raise SpecError(f"{source}: claims must be an array of tables ([[claims]]), got "
                        f"{type(tables).__name__}")
    claims = []
    for i, table in enumerate(tables):
        where = f"{source}: claims[{i}]"
        if not isinstance(table, dict):
            raise SpecError(f"{where} must be a table, got {table!r}")
        unknown = sorted(set(table) - {"id", "claim", "paper", "test", "value", "margin", "a",
                                       "b", "quantities"})
        if unknown:
            raise SpecError(f"{where}: unknown key {unknown[0]!r}")
        for key in ("id", "claim", "test"):
            if not isinstance(table.get(key), str):
                raise SpecError(f"{where}: {key} must be a string, got {table.get(key)!r}")
        test = table["test"]
        if test not in TESTS:
            raise SpecError(f"{where}: test must be one of {list(TESTS)}, got {test!r}")
        quantities = (table.get("quantities") if test == "increasing"
                      else [table.get("a"), table.get("b")])
        if (not isinstance(quantities, list) or len(quantities) < 2
                or not all(isinstance(q, dict) and (isinstance(q.get("run"), str)
                                                    or _is_number(q.get("value")))
                           for q in quantities)):
            raise SpecError(f"{where}: test {test!r} needs "
                            + ("quantities, a list of ≥ 2 tables" if test == "increasing"
                               else "a and b, tables") + " each naming its run (or a value)")
        default = 0.0 if test in ("greater", "increasing") else None
        value = table.get("margin" if test == "greater" else "value", default)
        if not _is_number(value):
            raise SpecError(f"{where}: test {test!r} needs a number "
                            f"({'margin' if test == 'greater' else 'value'}), got {value!r}")
        claims.append(Claim(table["id"], table["claim"], str(table.get("paper", "")), test,
                            tuple(quantities), float(value)))
    return tuple(claims)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def per_seed(results: Results, quantity: Mapping[str, Any]) -> tuple[np.ndarray, str]:
    """A quantity once per training seed, (seeds,), and how to print one value of it: a
    constant (``value``), a tolerance, or a metric at a point; a metric without replicates
    (a coding cost) is one value."""
    if "run" not in quantity:
        return np.array([float(quantity["value"])]), "{:.5g}"
    run = results.runs.get(quantity["run"])
    if run is None:
        raise SpecError(f"claim quantity {dict(quantity)}: the results have no run "
                        f"{quantity['run']!r}; runs are {sorted(results.runs)}")
    if "tolerance" in quantity:
        return tolerance_per_seed(run, quantity), "{:.3g}"
    metric = quantity.get("metric", "accuracy")
    if metric not in run.data:
        raise SpecError(f"claim quantity {dict(quantity)}: run {run.name!r} has no metric "
                        f"{metric!r}; its metrics are {sorted(run.data)}")
    if run.dims[metric][-1] == "seed":  # one value per seed already (training time)
        return _fixed(run, run.dims[metric][:-1], run.data[metric], quantity.get("at", {})), (
            "{:.4g}")
    if run.dims[metric][-1] != run.dims["accuracy"][-1]:  # no replicates: one value
        value = _fixed(run, run.dims[metric], run.data[metric], quantity.get("at", {}))
        return np.atleast_1d(value), "{:.5g}"
    values, axes = _at(run, metric, quantity.get("at", {}))
    return _means_per_seed(values, axes), "{:.2%}" if metric == "accuracy" else "{:.4g}"


def tolerance_per_seed(run: RunData, quantity: Mapping[str, Any]) -> np.ndarray:
    """Per seed, the largest value of the noise axis ``quantity["tolerance"]`` up to which the
    mean accuracy stays within ``within_pp`` of that seed's digital accuracy; 0 when even the
    grid's smallest value fails (the tolerance lies below the grid)."""
    noise = quantity["tolerance"]
    values, axes = _at(run, "accuracy", quantity.get("at", {}), keep=noise)
    seeds = np.stack([_means_per_seed(row, axes[1:]) for row in values])  # (grid, seeds)
    digital = np.atleast_1d(np.asarray(run.attrs.get("digital_accuracy_per_seed",
                                                     run.attrs["digital_accuracy"]), float))
    return thresholds_per_seed(np.asarray(run.axes[noise], float), seeds, digital,
                               float(quantity.get("within_pp", 1.0)))


def _at(run: RunData, metric: str, at: Mapping[str, Any], keep: str | None = None
        ) -> tuple[np.ndarray, tuple[str, ...]]:
    """``metric`` at the point ``at`` (every grid axis but ``keep`` fixed, unless it has one
    value): (kept axis?, seed, inner sampling levels…)."""
    values, axes = sampled(run, metric)
    levels = axes[len(run.dims[metric]) - 1:]
    grid = axes[:len(axes) - len(levels)]
    return _fixed(run, grid, values, at, keep), (*([keep] if keep in grid else []), *levels)


def _fixed(run: RunData, grid: tuple[str, ...], values: np.ndarray, at: Mapping[str, Any],
           keep: str | None = None) -> np.ndarray:
    """``values`` (grid axes first) with every grid axis but ``keep`` fixed by ``at``."""
    index: list[Any] = []
    for axis in grid:
        options = list(run.axes[axis])
        if axis == keep:
            index.append(slice(None))
        elif axis in at:
            wanted = at[axis]
            match = [i for i, v in enumerate(options) if v == wanted or
                     (isinstance(wanted, int | float) and not isinstance(v, str)
                      and np.isclose(float(v), float(wanted)))]
            if not match:
                raise SpecError(f"claim quantity at {axis} = {wanted!r}: the run's {axis} "
                                f"values are {options}")
            index.append(match[0])
        elif len(options) == 1:
            index.append(0)
        else:
            raise SpecError(f"claim quantity on run {run.name!r} fixes no value of the axis "
                            f"{axis!r} ({options}); give it in at = {{ {axis} = ... }}")
    return values[tuple(index)]


def _means_per_seed(values: np.ndarray, axes: tuple[str, ...]) -> np.ndarray:
    """Mean over the sampling levels inside the seed: (..., seed, inner…) → (..., seeds); NaN
    where a seed has no finite value (judged as "no data")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of an all-NaN slice
        return _nanmean_per_seed(values, axes)


def _nanmean_per_seed(values: np.ndarray, axes: tuple[str, ...]) -> np.ndarray:
    if "seed" not in axes:  # one trained model: its chips or draws are the inner level
        return np.atleast_1d(np.nanmean(values, axis=tuple(range(values.ndim)) if
                                        values.ndim else None))
    seed = axes.index("seed")
    inner = tuple(range(seed + 1, values.ndim))
    return np.nanmean(values, axis=inner) if inner else values


def _over_seeds(results: Results, quantity: Mapping[str, Any]) -> bool:
    """Whether a quantity is computed per trained model (not a constant or a coding cost)."""
    if "run" not in quantity:
        return False
    run = results.runs[quantity["run"]]
    metric = quantity.get("metric", "accuracy")
    return ("tolerance" in quantity or run.dims[metric][-1] == "seed"
            or run.dims[metric][-1] == run.dims.get("accuracy", ("",))[-1])


def evaluate_claims(results: Results, claims: tuple[Claim, ...]) -> list[Verdict]:
    """Judge every claim against ``results``."""
    return [_judge_in(results, claim) for claim in claims]


def _judge_in(results: Results, claim: Claim) -> Verdict:
    """One claim on one results file: its quantities are paired by training seed."""
    series = [per_seed(results, q) for q in claim.quantities]
    one_seed = any(s.size == 1 and _over_seeds(results, q)
                   for q, (s, _) in zip(claim.quantities, series, strict=True))
    notes = [ONE_SEED] if one_seed else []
    for q, (v, _) in zip(claim.quantities, series, strict=True):
        if "tolerance" in q and v.size > 1:
            run = results.runs[q["run"]]
            steps = spread_in_steps(v, np.asarray(run.axes[q["tolerance"]], float))
            where = ", ".join(f"{axis} = {value}" for axis, value in q.get("at", {}).items())
            if steps:
                notes.append(f"the tolerance at {where} varies by {steps} grid "
                             f"step{'s' * (steps > 1)} between seeds")
    return judge(claim, series, paired=True, notes=tuple(notes))


def judge(claim: Claim, series: list[tuple[np.ndarray, str]], *, paired: bool,
          notes: tuple[str, ...] = ()) -> Verdict:
    """The verdict of ``claim`` on its quantities' per-seed values, each with its print
    format. ``paired``: the quantities come from the same trained models (one results file),
    compared seed by seed; otherwise they are independent samples (different specs), compared
    by Welch's interval (of the difference, or of the log ratio for the ratio tests)."""
    values = [s for s, _ in series]
    shown = [", ".join(fmt.format(v) for v in s) if s.size == 1 else
             f"{fmt.format(_mean(s))} (seeds: {', '.join(fmt.format(v) for v in s)})"
             for s, fmt in series]
    if not all(np.isfinite(v).any() for v in values):
        return Verdict(claim, NO_DATA, " vs ".join(shown), notes)
    if claim.test == "increasing":
        verdicts = [_compare(a, b, "greater", claim.value, paired)
                    for a, b in zip(values[1:], values[:-1], strict=True)]
        verdict = (HOLDS if all(v == HOLDS for v in verdicts) else
                   FAILS if any(v == FAILS for v in verdicts) else UNRESOLVED)
        ours = " → ".join(shown)
    else:
        verdict = _compare(values[0], values[1], claim.test, claim.value, paired)
        ours = f"{shown[0]} vs {shown[1]}"
    return Verdict(claim, verdict, ours, notes)


def _mean(values: np.ndarray) -> float:
    """The mean of the finite values (NaN when there is none)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


#: test → (statistic, its bounds for "holds"): "difference" a − b, "ratio" a / b
_BOUNDS = {"greater": ("difference", lambda v: (v, np.inf)),
           "within": ("difference", lambda v: (-v, v)),
           "ratio_at_least": ("ratio", lambda v: (v, np.inf)),
           "ratio_at_most": ("ratio", lambda v: (-np.inf, v)),
           "ratio_within": ("ratio", lambda v: (1 / v, v))}


def _compare(a: np.ndarray, b: np.ndarray, test: str, value: float, paired: bool) -> str:
    """The verdict of one test between per-seed values a and b: holds when the 95 % CI of the
    statistic lies inside the bounds, does not hold when it lies outside, else not resolved;
    with one seed (no interval) the mean decides."""
    statistic, bounds_of = _BOUNDS[test]
    low_bound, high_bound = bounds_of(value)
    interval = _statistic_interval(a, b, statistic, paired)
    two_sided = np.isfinite(low_bound) and np.isfinite(high_bound)

    def inside(low: float, high: float) -> bool:
        if two_sided:
            return low_bound <= low and high <= high_bound
        return low_bound < low and high < high_bound

    if not np.isfinite(interval.low):  # one seed (or too few): the means decide
        return HOLDS if inside(interval.mean, interval.mean) else FAILS
    if inside(interval.low, interval.high):
        return HOLDS
    return FAILS if interval.high < low_bound or interval.low > high_bound else UNRESOLVED


def _statistic_interval(a: np.ndarray, b: np.ndarray, statistic: str,
                        paired: bool) -> Interval:
    """The 95 % CI over seeds of a − b or a / b: per seed when paired (or when one side is a
    constant), else by Welch's t (on the logs for a ratio: the ratio of geometric means)."""
    if paired or a.size == 1 or b.size == 1:
        per_seed_values = a - b if statistic == "difference" else a / b
        mean, low, high, n = t_interval(per_seed_values)
        return Interval(mean, low, high, n, "seeds", f"{n} seeds")
    if statistic == "difference":
        mean, low, high = welch_difference(a, b)
    else:
        mean, low, high = np.exp(welch_difference(np.log(a), np.log(b)))
    n = int(np.isfinite(a).sum() + np.isfinite(b).sum())
    return Interval(float(mean), float(low), float(high), n, "seeds", f"{n} seeds")
