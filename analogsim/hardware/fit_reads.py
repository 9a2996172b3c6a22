"""Measurements arranged for the fits: later reads grouped by device and time, and each
device's drift line (ln g against ln((t + t0)/t0)), shared by the read-noise and drift fits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analogsim.hardware.measurements import Measurements


@dataclass(frozen=True)
class ReadGroups:
    """Later reads grouped by (device, time): count, mean and sample variance (µS, µS²)."""

    device: np.ndarray
    time: np.ndarray
    count: np.ndarray
    mean: np.ndarray
    var: np.ndarray

    @classmethod
    def of(cls, m: Measurements) -> ReadGroups:
        order = np.lexsort((m.time_s, m.read_device))
        device, time, g = m.read_device[order], m.time_s[order], m.conductance_uS[order]
        new = np.r_[True, (device[1:] != device[:-1]) | (time[1:] != time[:-1])][:len(device)]
        start, group = np.flatnonzero(new), np.cumsum(new) - 1
        count = np.diff(np.r_[start, len(device)])
        mean = np.bincount(group, g, minlength=len(start)) / count
        squares = np.bincount(group, (g - mean[group]) ** 2, minlength=len(start))
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(count > 1, squares / (count - 1), np.nan)
        return cls(device[start], time[start], count, mean, var)


def all_reads_positive(m: Measurements) -> np.ndarray:
    """(N,) bool: the first read and every later read of the device are > 0 (not clamped)."""
    positive = m.programmed_uS > 0
    positive[m.read_device[m.conductance_uS <= 0]] = False
    return positive


@dataclass(frozen=True)
class Slopes:
    """Per-device straight lines of ln g against ln((t + t0)/t0): ν̂ = −slope, its SE, and
    the intercept (ln g at the first read), for the devices in ``device``."""

    device: np.ndarray
    nu: np.ndarray
    error: np.ndarray
    intercept: np.ndarray


def device_slopes(m: Measurements, devices: np.ndarray, groups: ReadGroups,
                   t0: float) -> Slopes:
    """ν̂, its SE and the intercept per device, from a weighted straight line of ln g against
    ln((t + t0)/t0) through the first read and the mean read at each later time. Devices with
    the same read times and repeat counts are fitted in one call."""
    wanted = np.isin(groups.device, devices)
    device, time, count, mean = (a[wanted] for a in (groups.device, groups.time, groups.count,
                                                     groups.mean))
    starts = np.flatnonzero(np.r_[True, device[1:] != device[:-1]])
    ends = np.r_[starts[1:], len(device)]
    patterns: dict[tuple, list[int]] = {}
    for s, e in zip(starts, ends, strict=True):
        if e - s >= 2:
            patterns.setdefault((tuple(time[s:e]), tuple(count[s:e])), []).append(s)
    result_device, nu, error, intercept = [], [], [], []
    for (times, counts), firsts in patterns.items():
        firsts_arr = np.array(firsts)
        which = device[firsts_arr]
        reads = mean[firsts_arr[:, None] + np.arange(len(times))].T  # (times, devices)
        y = np.log(np.vstack([m.programmed_uS[which], reads]))
        x = np.r_[0.0, np.log((np.array(times) + t0) / t0)]
        p, cov = np.polyfit(x, y.reshape(len(x), -1), 1, w=np.sqrt(np.r_[1.0, counts]),
                            cov=True)
        result_device.append(which)
        nu.append(-p[0])
        error.append(np.sqrt(cov[0, 0]))
        intercept.append(p[1])
    if not result_device:
        return Slopes(np.empty(0, int), np.empty(0), np.empty(0), np.empty(0))
    return Slopes(*(np.concatenate(a) for a in (result_device, nu, error, intercept)))
