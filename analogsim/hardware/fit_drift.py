"""Fitting the ``pcm_power_law`` drift law (step 4 of :mod:`analogsim.hardware.device_fit`):
per-device exponents binned in ln g_rel, and the clipped lines of their mean and spread."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy import optimize

from analogsim.errors import DataError
from analogsim.hardware.fit_reads import Slopes
from analogsim.hardware.fit_results import Bins, ClippedLine, DriftFit
from analogsim.hardware.measurements import Measurements

DRIFT_BINS = 16
MIN_PER_DRIFT_BIN = 20


def fit_drift(m: Measurements, slopes: Slopes, candidates: int, t0: float, g_max: float,
               notes: list[str]) -> DriftFit:
    needed = 3 * MIN_PER_DRIFT_BIN
    device, nu, error, intercept = slopes.device, slopes.nu, slopes.error, slopes.intercept
    if len(device) < needed:
        raise DataError(f"{m.source}: the drift fit needs ≥ {needed} devices ({MIN_PER_DRIFT_BIN} "
                        "in each of ≥ 3 conductance bins) with reads at ≥ 2 later times, none "
                        f"at 0 µS; found {len(device)}")
    skipped = candidates - len(device)
    if skipped:
        notes.append(f"drift: {skipped} devices left out (a read at 0 µS, a target of 0 µS or "
                     "fewer than 2 later read times)")
    log_g = np.log(m.target_uS[device] / g_max)
    edges = np.linspace(log_g.min(), log_g.max(), DRIFT_BINS + 1)
    index = np.clip(np.digitize(log_g, edges) - 1, 0, DRIFT_BINS - 1)
    rows, spread_rows = [], []
    for b in range(DRIFT_BINS):
        members = index == b
        n = int(members.sum())
        if n < MIN_PER_DRIFT_BIN:
            continue
        x, values = float(log_g[members].mean()), nu[members]
        var = float(values.var(ddof=1))
        rows.append((x, values.mean(), np.sqrt(var / n), n))
        signal = var - float(np.mean(error[members] ** 2))
        if signal > 0:  # var(ν̂) has SE var·√(2/(n−1)); σ = √signal carries it over
            spread_rows.append((x, np.sqrt(signal), var * np.sqrt(2 / (n - 1)) / 2 / np.sqrt(
                signal), n))
    if len(rows) < 3:
        raise DataError(f"{m.source}: the drift fit needs ≥ 3 conductance bins of ≥ "
                        f"{MIN_PER_DRIFT_BIN} devices; the {len(device)} devices with later "
                        f"reads fill {len(rows)}")
    mean_bins, mean_law = _clipped_bins(rows)
    std_bins, std_law = (None, None) if len(spread_rows) < 3 else _clipped_bins(spread_rows)
    if std_law is None:
        notes.append("drift: the spread of ν is not resolved above its estimation noise in ≥ 3 "
                     "bins; σ_ν law kept from the base card")
    return DriftFit(t0_s=t0, device=device, nu=nu, nu_error=error, intercept=intercept,
                    mean=mean_bins, std=std_bins, mean_law=mean_law, std_law=std_law)


def _clipped_bins(rows: list[tuple[float, ...]]) -> tuple[Bins, ClippedLine]:
    """Bins from (x, y, error, count) rows and the clipped line fitted to them."""
    x, y, error, count = map(np.array, zip(*rows, strict=True))
    line = fit_clipped_line(x, y, error)
    return Bins(x=x, y=y, error=error, fit=line(x), count=count,
                parameters=len(line.free)), line


def _clip_model(free: tuple[str, ...]) -> Callable[..., np.ndarray]:
    def model(x: np.ndarray, *p: float) -> np.ndarray:
        values = dict(zip(free, p, strict=True))
        return np.clip(values["slope"] * x + values["offset"], values.get("low", -np.inf),
                       values.get("high", np.inf))
    return model


def fit_clipped_line(x: np.ndarray, y: np.ndarray, error: np.ndarray) -> ClippedLine:
    """Weighted least squares of y = clip(slope · x + offset, low, high) over ≥ 3 points.

    Every split of the points sorted by x into a left plateau, a line of ≥ 2 points and a right
    plateau (each plateau empty or of ≥ 2 points) gives a start: the line fitted to its points,
    each plateau's weighted mean as its clip. The best start of each shape (no clip, low, high,
    both) is refined by ``curve_fit``; a shape counts only if ≥ 2 points still sit on each of
    its clips, and the one with the lowest AICc (χ² + 2k + 2k(k + 1)/(n − k − 1) for k
    parameters and n points) wins.

    Raises:
        DataError: no shape fits, not even the straight line (degenerate bins).
    """
    order = np.argsort(x)
    x, y, error = x[order], y[order], error[order]
    n, weight = len(x), 1 / error**2
    starts: dict[tuple[str, ...], tuple[float, list[float]]] = {}
    for left in (0, *range(2, n - 1)):
        for right in (n, *range(left + 2, n - 1)):
            slope, offset = np.polyfit(x[left:right], y[left:right], 1, w=1 / error[left:right])
            clips = {}
            if left:
                clips["high" if slope < 0 else "low"] = np.average(y[:left], weights=weight[:left])
            if right < n:
                clips["low" if slope < 0 else "high"] = np.average(y[right:],
                                                                   weights=weight[right:])
            free = ("slope", "offset", *sorted(clips, key=("low", "high").index))
            p0 = [slope, offset, *(clips[c] for c in free[2:])]
            chi2 = float(np.sum(weight * (_clip_model(free)(x, *p0) - y) ** 2))
            if free not in starts or chi2 < starts[free][0]:
                starts[free] = (chi2, p0)
    best: tuple[float, ClippedLine] | None = None
    for free, (_, p0) in starts.items():
        try:
            with warnings.catch_warnings():  # a singular covariance rules the shape out
                warnings.simplefilter("error", optimize.OptimizeWarning)
                p, covariance = optimize.curve_fit(_clip_model(free), x, y, p0=p0, sigma=error,
                                                   absolute_sigma=True)
        except (RuntimeError, optimize.OptimizeWarning):
            continue
        values = dict(zip(free, p, strict=True))
        line = ClippedLine(slope=values["slope"], offset=values["offset"],
                           low=values.get("low", -np.inf), high=values.get("high", np.inf),
                           free=free, covariance=covariance)
        raw = line.slope * x + line.offset
        if ("low" in free and np.sum(raw <= line.low) < 2) or (
                "high" in free and np.sum(raw >= line.high) < 2):
            continue
        if not np.all(np.isfinite(covariance)):
            continue
        k = len(free)  # AICc: the AIC corrected for few points
        aic = float(np.sum(weight * (line(x) - y) ** 2)) + 2 * k + 2 * k * (k + 1) / max(
            n - k - 1, 1e-9)
        if best is None or aic < best[0]:
            best = (aic, line)
    if best is None:  # even the straight line failed: the bins are degenerate
        raise DataError(f"no line y = clip(slope · x + offset) fits the {n} bins at x = "
                        f"{np.round(x, 3).tolist()}, y = {np.round(y, 4).tolist()}; expected "
                        "≥ 3 bins of distinct conductance with finite, non-zero spreads")
    return best[1]
