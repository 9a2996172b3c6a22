"""Fitting the card's ``pcm_1_over_f`` read-noise law to repeated reads (step 2 of
:mod:`analogsim.hardware.device_fit`), and the read-noise variance the law adds at t0."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy import optimize

from analogsim.cards import Chip, PcmOneOverFReadNoise, ReadNoise
from analogsim.errors import DataError
from analogsim.hardware.fit_reads import ReadGroups, Slopes
from analogsim.hardware.fit_results import Bins, ReadNoiseFit, round_fitted
from analogsim.hardware.measurements import Measurements
from analogsim.physics import pcm

READ_NOISE_BINS = 12
MIN_PER_READ_NOISE_BIN = 20
#: Read-noise bins noisier than this (relative std) are left out: reads clamped at 0 bias them.
MAX_RELATIVE_READ_NOISE = 0.25


def relative_read_noise(law: PcmOneOverFReadNoise, g_rel: np.ndarray, coefficient: float,
                         exponent: float) -> np.ndarray:
    """Q_s of the card's 1/f law (analogsim.physics.pcm) at g_prog/g_max = ``g_rel``."""
    q = pcm.relative_read_noise(torch.from_numpy(g_rel), 1.0, coefficient, exponent,
                                law.q_floor, law.q_max)
    return q.numpy()


def fit_read_noise(m: Measurements, slopes: Slopes, groups: ReadGroups, base: Chip,
                    t0: float) -> ReadNoiseFit | None:
    g_prog = np.full(m.devices, np.nan)  # the drift line's ln g at the first read, less noisy
    g_prog[slopes.device] = np.exp(slopes.intercept)  # than the first read alone
    keep = (groups.count >= 2) & np.isfinite(g_prog[groups.device])
    if len(np.unique(groups.time[keep])) < 2:
        return None
    law = base.read_noise if isinstance(base.read_noise, PcmOneOverFReadNoise) else (
        PcmOneOverFReadNoise())
    law = dataclasses.replace(law, t0_s=t0, scale=1.0)
    g_max = base.conductance.g_max_uS
    device, time, var = groups.device[keep], groups.time[keep], groups.var[keep]
    square = groups.mean[keep] ** 2 - var / groups.count[keep]  # unbiased estimate of g²
    g_rel = g_prog[device] / g_max
    log_g = np.log(g_rel)
    edges = np.linspace(log_g.min(), log_g.max(), READ_NOISE_BINS + 1)
    times, time_index = np.unique(time, return_inverse=True)
    point = np.clip(np.digitize(log_g, edges) - 1, 0, READ_NOISE_BINS - 1) * len(times) + (
        time_index)
    size = READ_NOISE_BINS * len(times)
    n = np.bincount(point, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.sqrt(np.bincount(point, var, size) / np.bincount(point, square, size))
    kept_points = np.flatnonzero((n >= MIN_PER_READ_NOISE_BIN)
                                 & (relative <= MAX_RELATIVE_READ_NOISE))
    if len(kept_points) < 3 or len(np.unique(kept_points % len(times))) < 2:
        raise DataError(f"{m.source}: the read-noise fit needs repeated reads of ≥ "
                        f"{MIN_PER_READ_NOISE_BIN} devices in each of ≥ 3 conductance bins and "
                        f"≥ 2 times, with a relative read noise ≤ {MAX_RELATIVE_READ_NOISE:.0%} "
                        f"(≥ {3 * MIN_PER_READ_NOISE_BIN} devices with repeats); found "
                        f"{len(np.unique(device))} devices with repeats")
    member = np.isin(point, kept_points)
    point = np.searchsorted(kept_points, point[member])
    device, time, var, square, g_rel = (a[member] for a in (device, time, var, square, g_rel))
    n, size = np.bincount(point), len(kept_points)
    y = np.bincount(point, var, size) / n
    error = np.sqrt(np.bincount(point, (var - y[point]) ** 2, size) / (n - 1) / n)
    factor = np.log((time + t0 + law.t_read_s) / (2 * law.t_read_s))

    def model(_: object, coefficient: float, exponent: float) -> np.ndarray:
        q = relative_read_noise(law, g_rel, coefficient, exponent)
        return np.bincount(point, square * q**2 * factor, size) / n

    (coefficient, exponent), covariance = optimize.curve_fit(
        model, None, y, p0=(law.q_coefficient, law.q_exponent), sigma=error,
        absolute_sigma=True, bounds=([1e-9, 0.0], [10.0, 10.0]))
    scale = np.bincount(point, square, size) / n
    law = dataclasses.replace(law, q_coefficient=round_fitted(coefficient),
                              q_exponent=round_fitted(exponent))
    bins = Bins(x=np.exp(np.bincount(point, np.log(g_rel), size) / n),
                y=np.sqrt(y / scale), error=error / (2 * np.sqrt(y * scale)),
                fit=np.sqrt(model(None, law.q_coefficient, law.q_exponent) / scale), count=n,
                parameters=2)
    return ReadNoiseFit(law=law, covariance=covariance, time_s=times[kept_points % len(times)],
                        bins=bins)


def first_read_noise_var(m: Measurements, law: ReadNoise, g_max: float) -> np.ndarray:
    """(N,) variance (µS²) the card's read-noise law adds to the first read, at t0."""
    if not isinstance(law, PcmOneOverFReadNoise):
        return np.zeros(m.devices)
    g = np.abs(m.programmed_uS)
    q = relative_read_noise(law, g / g_max, law.q_coefficient, law.q_exponent)
    factor = pcm.read_noise_time_factor(0.0, law.t0_s, law.t_read_s)
    return (g * q * factor * law.scale) ** 2
