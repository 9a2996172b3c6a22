"""Fitting stuck devices, the programming-noise polynomial and the distinguishable levels
(steps 1, 3 and 5 of :mod:`analogsim.hardware.device_fit`)."""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from analogsim.cards import Chip, ReadNoise
from analogsim.errors import DataError
from analogsim.hardware.fit_read_noise import first_read_noise_var
from analogsim.hardware.fit_results import (
    Bins,
    LevelsFit,
    ProgrammingFit,
    StuckFit,
    round_fitted,
)
from analogsim.hardware.measurements import Measurements

MIN_PER_PROGRAMMING_BIN = 30
#: Target bins with more of their first reads clamped at 0 µS are left out: their spread is
#: mostly unobserved. With read noise at t0 (which scales with the clamped state) the spread
#: near 0 is not Gaussian, and the censored-normal fit is used only up to a smaller fraction.
MAX_CLAMPED = 0.5
MAX_CLAMPED_WITH_READ_NOISE = 0.01
#: Stuck devices: reads within this fraction of g_max − g_min of a rail ...
STUCK_TOLERANCE = 0.01
#: ... while the target is this many robust σ_prog (plus the tolerance) away from it.
STUCK_SIGMAS = 4.0
LEVEL_DRAWS = 200


def _target_bins(target: np.ndarray, devices: np.ndarray, minimum: int) -> list[np.ndarray]:
    """Index arrays of ``devices`` grouped by target: B = max(min(n/100, 50), min(n/30, 20))
    groups of equal count, or one per distinct target when there are at most B; groups of fewer
    than ``minimum`` devices are left out."""
    values = target[devices]
    count = max(min(len(devices) // 100, 50), min(len(devices) // 30, 20), 1)
    distinct = np.unique(values)
    if len(distinct) <= count:
        groups = [devices[values == v] for v in distinct]
    else:
        groups = np.array_split(devices[np.argsort(values, kind="stable")], count)
    return [g for g in groups if len(g) >= minimum]


def find_stuck(m: Measurements, chip: Chip) -> StuckFit:
    cond = chip.conductance
    tolerance = STUCK_TOLERANCE * (cond.g_max_uS - cond.g_min_uS)
    residual = m.programmed_uS - m.target_uS
    sigma = np.zeros(m.devices)
    for group in _target_bins(m.target_uS, np.arange(m.devices), 1):
        sigma[group] = stats.median_abs_deviation(residual[group], scale="normal")
    lowest, highest = m.programmed_uS.copy(), m.programmed_uS.copy()
    np.minimum.at(lowest, m.read_device, m.conductance_uS)
    np.maximum.at(highest, m.read_device, m.conductance_uS)
    margin = tolerance + STUCK_SIGMAS * sigma
    far_low = m.target_uS - cond.g_min_uS > margin
    far_high = cond.g_max_uS - m.target_uS > margin
    at_low, at_high = highest <= cond.g_min_uS + tolerance, lowest >= cond.g_max_uS - tolerance
    return StuckFit(low=far_low & at_low, high=far_high & at_high,
                    low_eligible=int(far_low.sum()), high_eligible=int(far_high.sum()),
                    at_low=at_low, at_high=at_high)


def _without_unresolved_stuck(group: np.ndarray, stuck: StuckFit,
                              target: np.ndarray) -> np.ndarray:
    """``group`` without the stuck devices that could not be told apart: at each rail, the
    expected number (stuck fraction × group size) among those reading at that rail, targets
    farthest from the rail first."""
    drop = []
    for at, found, eligible, sign in ((stuck.at_low, stuck.low, stuck.low_eligible, -1),
                                      (stuck.at_high, stuck.high, stuck.high_eligible, 1)):
        candidates = group[at[group]]
        expected = round(found.sum() / eligible * len(group)) if eligible else 0
        drop.append(candidates[np.argsort(sign * target[candidates])][:expected])
    return np.setdiff1d(group, np.concatenate(drop))


def _spread(residual: np.ndarray, target: np.ndarray, clamped: np.ndarray) -> float:
    """Std (µS) of programmed − target around 0; a censored-normal fit when reads were clamped
    at 0 (then programmed − target ≤ −target is all that is known)."""
    if not clamped.any():
        return float(np.sqrt(np.mean(residual**2)))
    data = stats.CensoredData(uncensored=residual[~clamped], left=-target[clamped])
    return float(stats.norm.fit(data, floc=0.0)[1])


def fit_programming(m: Measurements, stuck: StuckFit, read_law: ReadNoise, g_max: float,
                     degree: int, notes: list[str]) -> ProgrammingFit:
    needed = degree + 2
    usable = stuck.usable
    groups = [_without_unresolved_stuck(group, stuck, m.target_uS) for group in
              _target_bins(m.target_uS, np.flatnonzero(usable), MIN_PER_PROGRAMMING_BIN)]
    if len(groups) < needed:
        raise DataError(f"{m.source}: the programming-noise polynomial of degree {degree} needs "
                        f"≥ {needed} target bins of ≥ {MIN_PER_PROGRAMMING_BIN} devices (≥ "
                        f"{needed * MIN_PER_PROGRAMMING_BIN} devices spread over ≥ {needed} "
                        f"targets); found {len(groups)} such bins among {int(usable.sum())} "
                        "devices")
    read_var = first_read_noise_var(m, read_law, g_max)
    residual = m.programmed_uS - m.target_uS
    rows, members = [], []
    limit = MAX_CLAMPED_WITH_READ_NOISE if np.any(read_var > 0) else MAX_CLAMPED
    for group in groups:
        clamped = m.programmed_uS[group] <= 0
        target = float(np.mean(m.target_uS[group]))
        if clamped.mean() > limit:
            notes.append(f"target bin at {target:.3g} µS left out: {clamped.mean():.0%} of its "
                         "first reads are clamped at 0 µS")
            continue
        spread = _spread(residual[group], m.target_uS[group], clamped)
        read = float(np.mean(read_var[group]))
        if spread**2 <= read:
            notes.append(f"target bin at {target:.3g} µS left out: the read noise at t0 "
                         f"({np.sqrt(read):.3g} µS) exceeds the measured spread "
                         f"({spread:.3g} µS)")
            continue
        std = np.sqrt(spread**2 - read)
        # SE of a normal sample std is σ/√(2n) (n: the reads not clamped); σ_prog² =
        # spread² − read carries it over
        error = spread**2 / std / np.sqrt(2 * np.sum(~clamped))
        rows.append((target, std, error, len(group), spread, np.sqrt(read)))
        members.append(group)
    if len(rows) < needed:
        raise DataError(f"{m.source}: only {len(rows)} target bins have a spread above the read "
                        f"noise; the polynomial of degree {degree} needs ≥ {needed}")
    target, std, error, count, spread, read = map(np.array, zip(*rows, strict=True))
    x = m.target_uS[np.concatenate(members)] / g_max
    member_bin = np.repeat(np.arange(len(members)), [len(g) for g in members])

    def model(_: object, *c: float) -> np.ndarray:
        """Each bin's RMS of σ_prog over its devices, as its spread is measured."""
        sigma = np.maximum(np.polynomial.polynomial.polyval(x, c), 0.0)
        return np.sqrt(np.bincount(member_bin, sigma**2) / count)

    start = np.polynomial.polynomial.polyfit(target / g_max, std, degree, w=1 / error)
    coefficients, covariance = optimize.curve_fit(model, None, std, p0=start, sigma=error,
                                                  absolute_sigma=True)
    coefficients = tuple(round_fitted(c) for c in coefficients)
    bins = Bins(x=target, y=std, error=error, fit=model(None, *coefficients), count=count,
                parameters=degree + 1)
    return ProgrammingFit(coefficients_uS=coefficients, covariance=covariance, g_max_uS=g_max,
                          bins=bins, spread_uS=spread, read_std_uS=read)


def distinguishable_levels(coefficients: np.ndarray, g_min: float, g_max: float) -> np.ndarray:
    """Levels (µS) from g_min up, each σ(l_k) + σ(l_k+1) above the previous one."""
    floor = 1e-3 * (g_max - g_min)  # a σ of 0 would give infinitely many levels

    def sigma(g: float) -> float:
        value = 0.0
        for c in coefficients[::-1]:
            value = value * (g / g_max) + c
        return max(value, floor)

    levels = [g_min]
    while True:
        last = levels[-1]
        step = sigma(last)

        def gap(g: float, last: float = last, step: float = step) -> float:
            return g - last - step - sigma(g)

        if gap(g_max) < 0:
            return np.array(levels)
        levels.append(optimize.brentq(gap, last, g_max))


def count_levels(programming: ProgrammingFit, g_min: float, g_max: float) -> LevelsFit:
    levels = distinguishable_levels(np.array(programming.coefficients_uS), g_min, g_max)
    draws = np.random.default_rng(0).multivariate_normal(
        programming.coefficients_uS, programming.covariance, LEVEL_DRAWS)
    counts = [len(distinguishable_levels(c, g_min, g_max)) for c in draws]
    return LevelsFit(levels_uS=levels, count_error=float(np.std(counts)))
