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
from pathlib import Path

import numpy as np

from analogsim.cards import (
    Chip,
    PcmOneOverFReadNoise,
    PcmPowerLawDrift,
    PolynomialProgrammingNoise,
    chip_from_dict,
    chip_to_dict,
    load_chip,
)
from analogsim.errors import DataError
from analogsim.hardware.fit_drift import fit_drift
from analogsim.hardware.fit_programming import count_levels, find_stuck, fit_programming
from analogsim.hardware.fit_read_noise import fit_read_noise
from analogsim.hardware.fit_reads import ReadGroups, all_reads_positive, device_slopes
from analogsim.hardware.fit_results import (
    ClippedLine,
    DeviceFit,
    DriftFit,
    FittedValue,
    LevelsFit,
    ProgrammingFit,
    ReadNoiseFit,
    StuckFit,
    round_fitted,
)
from analogsim.hardware.measurements import Measurements, load_measurements


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
    stuck = find_stuck(m, base_chip)
    usable = stuck.usable
    groups = ReadGroups.of(m)
    slopes = device_slopes(m, np.flatnonzero(usable & all_reads_positive(m) & (m.target_uS > 0)),
                            groups, t0)
    read_noise = fit_read_noise(m, slopes, groups, base_chip, t0)
    if read_noise is None:
        read_law = base_chip.read_noise
        notes.append(f"no repeated reads at ≥ 2 times: read-noise law {read_law.law!r} kept "
                     f"from the base card {base_chip.name!r}")
    else:
        read_law = read_noise.law
    if isinstance(read_law, PcmOneOverFReadNoise):
        notes.append("programming: the read noise of the card's pcm_1_over_f law at t0 is "
                     "removed from the spread of the first read")
    programming = fit_programming(m, stuck, read_law, cond.g_max_uS, degree, notes)
    if m.has_reads:
        drift = fit_drift(m, slopes, int(usable.sum()), t0, cond.g_max_uS, notes)
        if not isinstance(base_chip.drift, PcmPowerLawDrift):
            notes.append(f"drift: the base card's law {base_chip.drift.law!r} replaced by "
                         "pcm_power_law, the law fit_device fits")
    else:
        drift = None
        notes.append(f"no later reads: drift law {base_chip.drift.law!r} kept from the base card")
    levels = count_levels(programming, cond.g_min_uS, cond.g_max_uS)
    return _assemble(m, base_chip, name, stuck, programming, read_noise, drift, levels, notes)


def _first_read_time(chip: Chip) -> float:
    """t0 (s): the base card's drift (or read-noise) t0, or the pcm_power_law default."""
    for law in (chip.drift, chip.read_noise):
        if isinstance(law, PcmPowerLawDrift | PcmOneOverFReadNoise):
            return law.t0_s
    return PcmPowerLawDrift.t0_s


def _clip_value(line: ClippedLine, name: str, x: np.ndarray, base: float
                ) -> tuple[float, float | None, str]:
    """A card clip: the fitted one, or the base card's if it does not cut into the data's
    range, or the fitted line's extreme over that range (≥ 0)."""
    if name in line.free:
        return round_fitted(getattr(line, name)), line.error(name), ""
    ends = line.slope * np.array([x.min(), x.max()]) + line.offset
    value = max(min(base, ends.min()), 0.0) if name == "low" else max(base, ends.max())
    how = "base card's value" if value == base else "moved to the line's end over the data"
    return round_fitted(value), None, f"not reached by the data: {how}"


def _drift_law(drift: DriftFit, base: Chip, values: list[FittedValue]) -> PcmPowerLawDrift:
    law = base.drift if isinstance(base.drift, PcmPowerLawDrift) else PcmPowerLawDrift()
    fitted: dict[str, float] = {}
    for prefix, line, bins in (("mean", drift.mean_law, drift.mean),
                               ("std", drift.std_law, drift.std)):
        if line is None or bins is None:
            continue
        for name in ("slope", "offset"):
            fitted[f"{prefix}_{name}"] = round_fitted(getattr(line, name))
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
        faults[key] = round_fitted(fraction)
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
