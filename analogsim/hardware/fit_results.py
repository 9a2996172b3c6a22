"""What :func:`~analogsim.hardware.fit_device` returns: the fitted card and, per law, the
binned data and fits behind every number (:class:`DeviceFit` and its parts).

:meth:`DeviceFit.toml` writes the card with each fitted number's 1-σ uncertainty as a comment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tomli_w
from scipy import stats

from analogsim.cards import Chip, PcmOneOverFReadNoise, chip_to_dict
from analogsim.hardware.measurements import Measurements

_SIGNIFICANT = 5  # digits of the fitted numbers written to the card
_ONE_SIGMA = 0.6827


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


def round_fitted(value: float) -> float:
    """``value`` to the significant digits a fitted number keeps on the card."""
    return float(f"{value:.{_SIGNIFICANT}g}")
