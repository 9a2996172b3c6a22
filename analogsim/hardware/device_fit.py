"""Fit a device card to measurements: programming noise, drift, read noise, stuck devices, levels.

``fit_device("chip42.csv", base="pcm")`` reads a measurement file (layout:
:mod:`analogsim.hardware.measurements`) and fits the laws the simulated chip draws from
(shared/METHODS.md §14, :mod:`analogsim.device_model`), each by weighted least squares with
``scipy.optimize.curve_fit`` and its covariance. Conductances are in µS, times in s, and
g_rel = g / g_max with g_max the base card's. In order:

1. **Stuck devices.** A device is stuck low (high) when every read of it lies within 1 % of
   g_max − g_min of g_min (g_max) while its target is more than 4 robust σ (median absolute
   deviation of programmed − target among devices of similar target) plus that tolerance away.
   The fraction is counted among the devices whose target is that far from the rail (a device
   programmed near a rail cannot be told from a stuck one); its uncertainty is the 68.27 %
   Clopper–Pearson interval. Stuck devices are left out of every other fit, and so is, in each
   target bin, the expected number of the stuck devices that could not be told apart (those
   reading at the rail with targets farthest from it).
2. **Read noise** (only with repeated reads, ≥ 2 per device and time, at ≥ 2 times): the
   variance of the repeats is fitted to the card's ``pcm_1_over_f`` law,
   (g · Q_s(g_prog) · √ln((t + t0 + t_read)/(2 t_read)))² with
   Q_s = min(q_coefficient / max(g_rel^q_exponent, q_floor), q_max), in 12 bins of
   ln(g_prog/g_max) at each time; q_coefficient and q_exponent are fitted, q_floor, q_max and
   t_read kept. g² is estimated without bias as mean² − variance/repeats, and g_prog as the
   drift line's value at the first read (step 4; less noisy than the first read alone). Bins
   whose relative read noise exceeds 25 % are left out (reads clamped at 0 bias them). Without
   repeats the base card's read-noise law is kept.
3. **Programming noise**: σ_prog(g_T) = Σ c_i (g_T/g_max)^i (degree of the base card's
   polynomial, or 2), fitted to the spread of programmed − target around 0 in B =
   max(min(n/100, 50), min(n/30, 20)) target bins of equal count (or one per distinct target
   when there are ≤ B), ≥ 30 devices each. The fitted curve is compared with each bin's RMS of
   σ_prog over its devices, so wide bins do not bias it. Where first reads were clamped at 0 µS
   the spread is a censored-normal fit; bins with more than half of them clamped are left out,
   or more than 1 % when the card has read noise at t0 (then the spread near 0 is not
   Gaussian). The first read is taken at t0, where the card's read-noise law already adds
   (g · Q_s · √ln((t0 + t_read)/(2 t_read)))²: that variance is subtracted, so the fitted card
   reproduces the measured spread of the first read.
4. **Drift** (with later reads): ν per device is minus the slope of ln g against
   ln((t + t0)/t0) over the first read and the mean of the reads at each later time (weighted by
   the number of reads averaged; ≥ 2 later times), with its standard error. Binned in
   ln(g_T/g_max) (16 equal-width bins, ≥ 20 devices each), the bin means give μ_ν and the bin
   spreads, with the estimation noise of ν removed (var ν̂ − mean SE²), give σ_ν; each is fitted
   to the card's clip(slope · ln g_rel + offset, min, max). A clip is fitted only where ≥ 2
   bins sit on it and it lowers the AICc; otherwise the base card's clip is kept when it does not
   cut into the data's range, or moved just outside it.
5. **Distinguishable levels**: from g_min up, each next level is placed where its spacing from
   the previous one equals σ_prog(l_k) + σ_prog(l_k+1), so the ±1 σ ranges of neighbours touch
   (≈ 2 σ spacing); the count of levels in [g_min, g_max], with its spread over 200 draws of the
   programming coefficients from their covariance. It is reported, not written to
   ``conductance.levels`` (which would round targets on top of the programming noise).

Everything else — conductance range, periphery, mapping, coding — comes from the base card;
:meth:`DeviceFit.toml` says which fields were fitted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomli_w
import torch
from scipy import optimize, stats

from analogsim.chip import (
    Chip,
    PcmOneOverFReadNoise,
    PcmPowerLawDrift,
    PolynomialProgrammingNoise,
    ReadNoise,
    chip_from_dict,
    chip_to_dict,
    load_chip,
)
from analogsim.errors import DataError
from analogsim.hardware.measurements import Measurements, load_measurements
from analogsim.physics import pcm

MIN_PER_PROGRAMMING_BIN = 30
#: Target bins with more of their first reads clamped at 0 µS are left out: their spread is
#: mostly unobserved. With read noise at t0 (which scales with the clamped state) the spread
#: near 0 is not Gaussian, and the censored-normal fit is used only up to a smaller fraction.
MAX_CLAMPED = 0.5
MAX_CLAMPED_WITH_READ_NOISE = 0.01
DRIFT_BINS = 16
MIN_PER_DRIFT_BIN = 20
READ_NOISE_BINS = 12
MIN_PER_READ_NOISE_BIN = 20
#: Read-noise bins noisier than this (relative std) are left out: reads clamped at 0 bias them.
MAX_RELATIVE_READ_NOISE = 0.25
#: Stuck devices: reads within this fraction of g_max − g_min of a rail ...
STUCK_TOLERANCE = 0.01
#: ... while the target is this many robust σ_prog (plus the tolerance) away from it.
STUCK_SIGMAS = 4.0
LEVEL_DRAWS = 200
_SIGNIFICANT = 5  # digits of the fitted numbers written to the card
_ONE_SIGMA = 0.6827


# ------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class FittedValue:
    """One fitted card field, ``section.field``, with its 1-σ uncertainty (None: not fitted
    from the data, see ``comment``)."""

    key: str
    value: float | tuple[float, ...]
    error: float | tuple[float, ...] | None
    comment: str = ""


@dataclass(frozen=True)
class Bins:
    """Binned data of one law: position, value and its 1-σ error, the fit there, counts, and
    the number of fitted parameters."""

    x: np.ndarray
    y: np.ndarray
    error: np.ndarray
    fit: np.ndarray
    count: np.ndarray
    parameters: int

    @property
    def reduced_chi2(self) -> float:
        """χ² per degree of freedom (bins − parameters); about 1 when the law fits."""
        chi2 = np.sum(((self.y - self.fit) / self.error) ** 2)
        return float(chi2 / max(len(self.y) - self.parameters, 1))


@dataclass(frozen=True)
class StuckFit:
    """Devices stuck at g_min (low) or g_max (high): counts among the devices that could tell."""

    low: np.ndarray  # (N,) bool: stuck at g_min
    high: np.ndarray  # (N,) bool: stuck at g_max
    low_eligible: int  # devices whose target is far enough from g_min to tell
    high_eligible: int
    at_low: np.ndarray  # (N,) bool: every read within the tolerance of g_min
    at_high: np.ndarray  # (N,) bool

    @property
    def usable(self) -> np.ndarray:
        """(N,) bool: the devices not found stuck."""
        return ~(self.low | self.high)

    def fraction(self, side: str) -> tuple[float, tuple[float, float]]:
        """The stuck fraction on one side and its 68.27 % Clopper–Pearson interval."""
        stuck, eligible = (int(self.low.sum()), self.low_eligible) if side == "low" else (
            int(self.high.sum()), self.high_eligible)
        interval = stats.binomtest(stuck, eligible).proportion_ci(confidence_level=_ONE_SIGMA)
        return stuck / eligible, (float(interval.low), float(interval.high))


@dataclass(frozen=True)
class ReadNoiseFit:
    """The fitted 1/f read-noise law and its data: bins of g_prog/g_max (x) at each time."""

    law: PcmOneOverFReadNoise
    covariance: np.ndarray  # (2, 2): q_coefficient, q_exponent
    time_s: np.ndarray  # time of each bin
    bins: Bins  # y: relative std of the repeats, σ/g


@dataclass(frozen=True)
class ProgrammingFit:
    """The fitted σ_prog polynomial and its data: bins of target conductance (x, µS)."""

    coefficients_uS: tuple[float, ...]
    covariance: np.ndarray
    g_max_uS: float
    bins: Bins  # y: σ_prog with the read noise at t0 removed
    spread_uS: np.ndarray  # spread of the first read around the target, per bin
    read_std_uS: np.ndarray  # read-noise std at t0 removed from it, per bin

    def std(self, g_uS: np.ndarray) -> np.ndarray:
        """σ_prog (µS, floored at 0) at targets ``g_uS`` (µS)."""
        values = np.polynomial.polynomial.polyval(g_uS / self.g_max_uS, self.coefficients_uS)
        return np.maximum(values, 0.0)

    def std_error(self, g_uS: np.ndarray) -> np.ndarray:
        """1-σ error of σ_prog(g_uS) from the coefficient covariance."""
        design = np.vander(g_uS / self.g_max_uS, len(self.coefficients_uS), increasing=True)
        return np.sqrt(np.einsum("ij,jk,ik->i", design, self.covariance, design))


@dataclass(frozen=True)
class ClippedLine:
    """y = clip(slope · x + offset, low, high); ``free`` names the fitted parameters (a clip
    not fitted is ±inf here), ``covariance`` is over them."""

    slope: float
    offset: float
    low: float
    high: float
    free: tuple[str, ...]
    covariance: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.clip(self.slope * x + self.offset, self.low, self.high)

    def error(self, name: str) -> float | None:
        if name not in self.free:
            return None
        i = self.free.index(name)
        return float(np.sqrt(self.covariance[i, i]))


@dataclass(frozen=True)
class DriftFit:
    """Drift exponents per device and the fitted laws of their mean and spread vs ln g_rel."""

    t0_s: float
    device: np.ndarray  # (n,) index into the measurements
    nu: np.ndarray  # (n,) ν̂ per device
    nu_error: np.ndarray  # (n,) its standard error
    intercept: np.ndarray  # (n,) fitted ln g at the first read
    mean: Bins  # x: mean ln(g_T/g_max) of the bin
    std: Bins | None  # σ_ν with the estimation noise removed; None: not measurable
    mean_law: ClippedLine
    std_law: ClippedLine | None


@dataclass(frozen=True)
class LevelsFit:
    """Distinguishable levels (µS) under the fitted programming noise, and the spread of their
    count over draws of the coefficients."""

    levels_uS: np.ndarray
    count_error: float

    @property
    def count(self) -> int:
        return len(self.levels_uS)


@dataclass(frozen=True)
class DeviceFit:
    """A card fitted to one measurement file, with the data and fits behind every number."""

    chip: Chip
    measurements: Measurements
    base: Chip
    values: tuple[FittedValue, ...]
    notes: tuple[str, ...]
    stuck: StuckFit
    programming: ProgrammingFit
    levels: LevelsFit
    read_noise: ReadNoiseFit | None
    drift: DriftFit | None
    fitted_sections: tuple[str, ...]

    def toml(self) -> str:
        """The card as TOML: fitted numbers with their 1-σ uncertainties as comments, the
        measurement file in ``[card] source``; ``load_chip`` reads it back to :attr:`chip`."""
        comments = {v.key: _comment(v) for v in self.values}
        kept = [s for s in chip_to_dict(self.chip) if s not in (*self.fitted_sections,
                                                                "format_version", "card")]
        lines = [f"# {self.chip.name}: device card fitted to measurements by "
                 "analogsim.hardware.fit_device",
                 f"# measurements: {self.measurements.source} ({self.measurements.devices} "
                 f"devices, {len(self.measurements.time_s)} later reads)",
                 f"# fitted: {', '.join(self.fitted_sections)}; from the base card "
                 f"{self.base.name!r}: {', '.join(kept)}",
                 "# ± values are 1-σ standard errors from the least-squares covariances "
                 "(faults: 68 % binomial intervals)"]
        lines += [f"# note: {note}" for note in self.notes]
        data = chip_to_dict(self.chip)
        lines.append(f"format_version = {data.pop('format_version')}")
        for section, table in data.items():
            lines += ["", f"[{section}]"]
            if section not in self.fitted_sections and section != "card":
                lines[-1] += f"  # from the base card {self.base.name!r}"
            if section == "conductance":
                lines.append(f"# distinguishable levels (spacing σ_prog(l_k) + σ_prog(l_k+1)): "
                             f"{self.levels.count} ± {self.levels.count_error:.2g}; not written "
                             "to levels, which would round targets on top of the noise")
            for key, value in table.items():
                comment = comments.get(f"{section}.{key}")
                if comment is None and section in self.fitted_sections:
                    comment = _UNFITTED.get(key, "base card")
                lines.append(f"{key} = {_toml_value(value)}" + (f"  # {comment}" if comment
                                                                 else ""))
        return "\n".join(lines) + "\n"


#: Comments on the fields of a fitted section that are not fitted numbers.
_UNFITTED = {"law": "", "scale": "1: the fitted numbers carry the whole scale",
             "reference_g_max_uS": "µS; g_max of the base card, the fit's reference",
             "t0_s": "s; time of the first read (t0)"}


def _toml_value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).partition("=")[2].strip()


def _comment(value: FittedValue) -> str:
    if value.error is None:
        return value.comment
    if isinstance(value.error, tuple):
        error = "[" + ", ".join(f"{e:.2g}" for e in value.error) + "]"
    else:
        error = f"{value.error:.2g}"
    return f"± {error}, fitted" + (f"; {value.comment}" if value.comment else "")


def _round(value: float) -> float:
    return float(f"{value:.{_SIGNIFICANT}g}")


# ---------------------------------------------------------------------------------- fitting


def fit_device(measurements: str | Path | Measurements, *, name: str | None = None,
               base: str | Path | Chip = "pcm", degree: int | None = None) -> DeviceFit:
    """Fit a device card to a measurement file (see the module docstring for what and how).

    Args:
        measurements: a measurement file (CSV or HDF5, layout in
            :mod:`analogsim.hardware.measurements`) or measurements already read.
        name: ``[card] name`` of the fitted card; default the file's stem.
        base: the card whose other fields the fitted card keeps (name, path or Chip); it also
            sets the conductance range g_min…g_max and t0 of the first read.
        degree: degree of the programming-noise polynomial; default the base card's, or 2.

    Raises:
        DataError: the file breaks the layout, its targets lie outside the base card's range,
            or it has too few devices or reads for a fit (the message says how many are needed).
    """
    m = measurements if isinstance(measurements, Measurements) else load_measurements(
        measurements)
    base_chip = load_chip(base)
    cond = base_chip.conductance
    if m.target_uS.max() > cond.g_max_uS * (1 + 1e-6) or m.target_uS.min() < cond.g_min_uS - (
            1e-6 * cond.g_max_uS):
        raise DataError(f"{m.source}: targets span {m.target_uS.min():g}…{m.target_uS.max():g} "
                        f"µS, outside the range {cond.g_min_uS:g}…{cond.g_max_uS:g} µS of the "
                        f"base card {base_chip.name!r}; fit with a base card whose conductance "
                        "range holds the targets")
    if degree is None:
        law = base_chip.programming
        degree = len(law.coefficients_uS) - 1 if isinstance(law, PolynomialProgrammingNoise) else 2
    t0 = _first_read_time(base_chip)
    notes: list[str] = []
    stuck = _find_stuck(m, base_chip)
    usable = stuck.usable
    groups = _ReadGroups.of(m)
    slopes = _device_slopes(m, np.flatnonzero(usable & _all_reads_positive(m) & (m.target_uS > 0)),
                            groups, t0)
    read_noise = _fit_read_noise(m, slopes, groups, base_chip, t0)
    if read_noise is None:
        read_law = base_chip.read_noise
        notes.append(f"no repeated reads at ≥ 2 times: read-noise law {read_law.law!r} kept "
                     f"from the base card {base_chip.name!r}")
    else:
        read_law = read_noise.law
    if isinstance(read_law, PcmOneOverFReadNoise):
        notes.append("programming: the read noise of the card's pcm_1_over_f law at t0 is "
                     "removed from the spread of the first read")
    programming = _fit_programming(m, stuck, read_law, cond.g_max_uS, degree, notes)
    if m.has_reads:
        drift = _fit_drift(m, slopes, int(usable.sum()), t0, cond.g_max_uS, notes)
        if not isinstance(base_chip.drift, PcmPowerLawDrift):
            notes.append(f"drift: the base card's law {base_chip.drift.law!r} replaced by "
                         "pcm_power_law, the law fit_device fits")
    else:
        drift = None
        notes.append(f"no later reads: drift law {base_chip.drift.law!r} kept from the base card")
    levels = _count_levels(programming, cond.g_min_uS, cond.g_max_uS)
    return _assemble(m, base_chip, name, stuck, programming, read_noise, drift, levels, notes)


def _first_read_time(chip: Chip) -> float:
    """t0 (s): the base card's drift (or read-noise) t0, or the pcm_power_law default."""
    for law in (chip.drift, chip.read_noise):
        if isinstance(law, PcmPowerLawDrift | PcmOneOverFReadNoise):
            return law.t0_s
    return PcmPowerLawDrift.t0_s


@dataclass(frozen=True)
class _ReadGroups:
    """Later reads grouped by (device, time): count, mean and sample variance (µS, µS²)."""

    device: np.ndarray
    time: np.ndarray
    count: np.ndarray
    mean: np.ndarray
    var: np.ndarray

    @classmethod
    def of(cls, m: Measurements) -> _ReadGroups:
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


def _all_reads_positive(m: Measurements) -> np.ndarray:
    """(N,) bool: the first read and every later read of the device are > 0 (not clamped)."""
    positive = m.programmed_uS > 0
    positive[m.read_device[m.conductance_uS <= 0]] = False
    return positive


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


def _find_stuck(m: Measurements, chip: Chip) -> StuckFit:
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


def _relative_read_noise(law: PcmOneOverFReadNoise, g_rel: np.ndarray, coefficient: float,
                         exponent: float) -> np.ndarray:
    """Q_s of the card's 1/f law (analogsim.physics.pcm) at g_prog/g_max = ``g_rel``."""
    q = pcm.relative_read_noise(torch.from_numpy(g_rel), 1.0, coefficient, exponent,
                                law.q_floor, law.q_max)
    return q.numpy()


def _fit_read_noise(m: Measurements, slopes: _Slopes, groups: _ReadGroups, base: Chip,
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
        q = _relative_read_noise(law, g_rel, coefficient, exponent)
        return np.bincount(point, square * q**2 * factor, size) / n

    (coefficient, exponent), covariance = optimize.curve_fit(
        model, None, y, p0=(law.q_coefficient, law.q_exponent), sigma=error,
        absolute_sigma=True, bounds=([1e-9, 0.0], [10.0, 10.0]))
    scale = np.bincount(point, square, size) / n
    law = dataclasses.replace(law, q_coefficient=_round(coefficient), q_exponent=_round(exponent))
    bins = Bins(x=np.exp(np.bincount(point, np.log(g_rel), size) / n),
                y=np.sqrt(y / scale), error=error / (2 * np.sqrt(y * scale)),
                fit=np.sqrt(model(None, law.q_coefficient, law.q_exponent) / scale), count=n,
                parameters=2)
    return ReadNoiseFit(law=law, covariance=covariance, time_s=times[kept_points % len(times)],
                        bins=bins)


def _first_read_noise_var(m: Measurements, law: ReadNoise, g_max: float) -> np.ndarray:
    """(N,) variance (µS²) the card's read-noise law adds to the first read, at t0."""
    if not isinstance(law, PcmOneOverFReadNoise):
        return np.zeros(m.devices)
    g = np.abs(m.programmed_uS)
    q = _relative_read_noise(law, g / g_max, law.q_coefficient, law.q_exponent)
    factor = pcm.read_noise_time_factor(0.0, law.t0_s, law.t_read_s)
    return (g * q * factor * law.scale) ** 2


def _spread(residual: np.ndarray, target: np.ndarray, clamped: np.ndarray) -> float:
    """Std (µS) of programmed − target around 0; a censored-normal fit when reads were clamped
    at 0 (then programmed − target ≤ −target is all that is known)."""
    if not clamped.any():
        return float(np.sqrt(np.mean(residual**2)))
    data = stats.CensoredData(uncensored=residual[~clamped], left=-target[clamped])
    return float(stats.norm.fit(data, floc=0.0)[1])


def _fit_programming(m: Measurements, stuck: StuckFit, read_law: ReadNoise, g_max: float,
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
    read_var = _first_read_noise_var(m, read_law, g_max)
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
    coefficients = tuple(_round(c) for c in coefficients)
    bins = Bins(x=target, y=std, error=error, fit=model(None, *coefficients), count=count,
                parameters=degree + 1)
    return ProgrammingFit(coefficients_uS=coefficients, covariance=covariance, g_max_uS=g_max,
                          bins=bins, spread_uS=spread, read_std_uS=read)


@dataclass(frozen=True)
class _Slopes:
    """Per-device straight lines of ln g against ln((t + t0)/t0): ν̂ = −slope, its SE, and
    the intercept (ln g at the first read), for the devices in ``device``."""

    device: np.ndarray
    nu: np.ndarray
    error: np.ndarray
    intercept: np.ndarray


def _device_slopes(m: Measurements, devices: np.ndarray, groups: _ReadGroups,
                   t0: float) -> _Slopes:
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
        return _Slopes(np.empty(0, int), np.empty(0), np.empty(0), np.empty(0))
    return _Slopes(*(np.concatenate(a) for a in (result_device, nu, error, intercept)))


def _fit_drift(m: Measurements, slopes: _Slopes, candidates: int, t0: float, g_max: float,
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
    line = _fit_clipped_line(x, y, error)
    return Bins(x=x, y=y, error=error, fit=line(x), count=count,
                parameters=len(line.free)), line


def _clip_model(free: tuple[str, ...]) -> Callable[..., np.ndarray]:
    def model(x: np.ndarray, *p: float) -> np.ndarray:
        values = dict(zip(free, p, strict=True))
        return np.clip(values["slope"] * x + values["offset"], values.get("low", -np.inf),
                       values.get("high", np.inf))
    return model


def _fit_clipped_line(x: np.ndarray, y: np.ndarray, error: np.ndarray) -> ClippedLine:
    """Weighted least squares of y = clip(slope · x + offset, low, high) over ≥ 3 points.

    Every split of the points sorted by x into a left plateau, a line of ≥ 2 points and a right
    plateau (each plateau empty or of ≥ 2 points) gives a start: the line fitted to its points,
    each plateau's weighted mean as its clip. The best start of each shape (no clip, low, high,
    both) is refined by ``curve_fit``; a shape counts only if ≥ 2 points still sit on each of
    its clips, and the one with the lowest AICc (χ² + 2k + 2k(k + 1)/(n − k − 1) for k
    parameters and n points) wins.
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
    assert best is not None  # the straight line always fits ≥ 3 points
    return best[1]


def _levels(coefficients: np.ndarray, g_min: float, g_max: float) -> np.ndarray:
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


def _count_levels(programming: ProgrammingFit, g_min: float, g_max: float) -> LevelsFit:
    levels = _levels(np.array(programming.coefficients_uS), g_min, g_max)
    draws = np.random.default_rng(0).multivariate_normal(
        programming.coefficients_uS, programming.covariance, LEVEL_DRAWS)
    counts = [len(_levels(c, g_min, g_max)) for c in draws]
    return LevelsFit(levels_uS=levels, count_error=float(np.std(counts)))


# --------------------------------------------------------------------------------- assembly


def _clip_value(line: ClippedLine, name: str, x: np.ndarray, base: float
                ) -> tuple[float, float | None, str]:
    """A card clip: the fitted one, or the base card's if it does not cut into the data's
    range, or the fitted line's extreme over that range (≥ 0)."""
    if name in line.free:
        return _round(getattr(line, name)), line.error(name), ""
    ends = line.slope * np.array([x.min(), x.max()]) + line.offset
    value = max(min(base, ends.min()), 0.0) if name == "low" else max(base, ends.max())
    how = "base card's value" if value == base else "moved to the line's end over the data"
    return _round(value), None, f"not reached by the data: {how}"


def _drift_law(drift: DriftFit, base: Chip, values: list[FittedValue]) -> PcmPowerLawDrift:
    law = base.drift if isinstance(base.drift, PcmPowerLawDrift) else PcmPowerLawDrift()
    fitted: dict[str, float] = {}
    for prefix, line, bins in (("mean", drift.mean_law, drift.mean),
                               ("std", drift.std_law, drift.std)):
        if line is None or bins is None:
            continue
        for name in ("slope", "offset"):
            fitted[f"{prefix}_{name}"] = _round(getattr(line, name))
            values.append(FittedValue(f"drift.{prefix}_{name}", fitted[f"{prefix}_{name}"],
                                      line.error(name)))
        for name, card in (("low", "min"), ("high", "max")):
            value, error, comment = _clip_value(line, name, bins.x,
                                                getattr(law, f"{prefix}_{card}"))
            fitted[f"{prefix}_{card}"] = value
            values.append(FittedValue(f"drift.{prefix}_{card}", value, error, comment))
    return dataclasses.replace(law, t0_s=drift.t0_s, scale=1.0, **fitted)


def _assemble(m: Measurements, base: Chip, name: str | None, stuck: StuckFit,
              programming: ProgrammingFit, read_noise: ReadNoiseFit | None,
              drift: DriftFit | None, levels: LevelsFit, notes: list[str]) -> DeviceFit:
    cond = base.conductance
    errors = tuple(float(e) for e in np.sqrt(np.diag(programming.covariance)))
    values = [FittedValue("programming.coefficients_uS", programming.coefficients_uS, errors,
                          f"reduced χ² {programming.bins.reduced_chi2:.2g} over "
                          f"{len(programming.bins.x)} target bins")]
    sections: dict[str, object] = {"programming": PolynomialProgrammingNoise(
        coefficients_uS=programming.coefficients_uS, reference_g_max_uS=cond.g_max_uS)}
    faults = {}
    for side, rail in (("low", "g_min"), ("high", "g_max")):
        eligible = stuck.low_eligible if side == "low" else stuck.high_eligible
        key = f"stuck_{side}_fraction"
        if eligible == 0:
            notes.append(f"faults: no device has its target far from {rail}; {key} kept from "
                         "the base card")
            continue
        fraction, (low, high) = stuck.fraction(side)
        faults[key] = _round(fraction)
        count = int((stuck.low if side == "low" else stuck.high).sum())
        values.append(FittedValue(f"faults.{key}", faults[key], None,
                                  f"fitted: {count} of {eligible} devices far from {rail} stuck "
                                  f"there; 68 % interval [{low:.2g}, {high:.2g}]"))
    sections["faults"] = dataclasses.replace(base.faults, **faults)
    if read_noise is not None:
        sections["read_noise"] = read_noise.law
        for i, key in enumerate(("q_coefficient", "q_exponent")):
            values.append(FittedValue(f"read_noise.{key}", getattr(read_noise.law, key),
                                      float(np.sqrt(read_noise.covariance[i, i])),
                                      f"reduced χ² {read_noise.bins.reduced_chi2:.2g}"
                                      if i == 0 else ""))
    if drift is not None:
        sections["drift"] = _drift_law(drift, base, values)
    source = Path(m.source)
    is_file = source.is_file()
    digest = f" (sha256 {hashlib.sha256(source.read_bytes()).hexdigest()[:16]})" if is_file else ""
    fitted = tuple(s for s in ("programming", "drift", "read_noise", "faults") if s in sections)
    card = dataclasses.replace(
        base.card, name=name or (source.stem if is_file else "fitted"),
        description=f"fitted to {source.name if is_file else m.source} ({', '.join(fitted)}); "
                    f"the rest from card {base.name!r}",
        source=f"measurements {m.source}{digest}; unfitted fields from card {base.name!r} "
               f"({base.card.source})")
    chip = chip_from_dict(chip_to_dict(dataclasses.replace(base, card=card, **sections)),
                          source=f"card fitted to {m.source}")
    return DeviceFit(chip=chip, measurements=m, base=base, values=tuple(values),
                     notes=tuple(notes), stuck=stuck, programming=programming, levels=levels,
                     read_noise=read_noise, drift=drift, fitted_sections=fitted)
