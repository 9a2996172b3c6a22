"""The sections of a card that pick a physical law: ``programming``, ``drift``, ``read_noise``.

Each section has a ``law`` key naming one of the dataclasses below, and each law has its own
fields. The formulas live in :mod:`analogsim.physics`; these classes only hold numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from analogsim.cards.fields import law_field, number, spec


@dataclass(frozen=True)
class NoProgrammingNoise:
    """Devices reach their target conductance exactly."""

    law: Literal["none"] = law_field(
        "none", "programming law none: devices reach their target conductance exactly"
    )


@dataclass(frozen=True)
class PolynomialProgrammingNoise:
    """Gaussian programming error whose std is a polynomial of the normalised target.

    σ_prog(g_T) = scale · (g_max / reference_g_max) · Σ_i c_i (g_T / g_max)^i, in µS.
    """

    law: Literal["polynomial"] = law_field(
        "polynomial", "programming law polynomial: Gaussian error, std a polynomial of g_T/g_max"
    )
    coefficients_uS: tuple[float, ...] = field(
        default=(0.26348, 1.9650, -1.1731),
        metadata=spec("c_0, c_1, ... of the std polynomial in g_T/g_max", "µS", -1e6, 1e6),
    )
    reference_g_max_uS: float = number(
        25.0, "g_max at which the coefficients were fitted", "µS", 1e-6
    )
    scale: float = number(1.0, "multiplies σ_prog (aihwkit prog_noise_scale)")


@dataclass(frozen=True)
class GaussianProgrammingNoise:
    """One-shot Gaussian error: additive in units of the conductance range, and relative."""

    law: Literal["gaussian"] = law_field(
        "gaussian", "programming law gaussian: one-shot additive and relative Gaussian error"
    )
    additive_std: float = number(0.0, "std of g / (g_max − g_min) added once per device")
    multiplicative_std: float = number(0.0, "std of the relative error g·N(0, σ²) per device")


@dataclass(frozen=True)
class NoDrift:
    """Conductances do not change after programming."""

    law: Literal["none"] = law_field("none", "drift law none: conductances stay as programmed")


@dataclass(frozen=True)
class PcmPowerLawDrift:
    """g(t) = g_prog · (t / t0)^(−ν), ν drawn per device at programming from a law of g_T.

    μ_ν = clip(mean_slope · ln g_rel + mean_offset, mean_min, mean_max),
    σ_ν = clip(std_slope · ln g_rel + std_offset, std_min, std_max),
    ν = |μ_ν + σ_ν · N(0, 1)| · scale, with g_rel = max(g_T / g_max, g_rel_min).
    """

    law: Literal["pcm_power_law"] = law_field(
        "pcm_power_law", "drift law pcm_power_law: power-law drift, exponent ν drawn per device"
    )
    t0_s: float = number(20.0, "time of the first read after programming", "s", 1e-9)
    mean_slope: float = number(-0.0155, "d μ_ν / d ln g_rel", "", -1.0, 1.0)
    mean_offset: float = number(0.0244, "μ_ν at g_rel = 1 before clipping", "", -1.0, 1.0)
    mean_min: float = number(0.049, "lower clip of μ_ν", "", 0.0, 10.0)
    mean_max: float = number(0.1, "upper clip of μ_ν", "", 0.0, 10.0)
    std_slope: float = number(-0.0125, "d σ_ν / d ln g_rel", "", -1.0, 1.0)
    std_offset: float = number(-0.0059, "σ_ν at g_rel = 1 before clipping", "", -1.0, 1.0)
    std_min: float = number(0.008, "lower clip of σ_ν", "", 0.0, 10.0)
    std_max: float = number(0.045, "upper clip of σ_ν", "", 0.0, 10.0)
    g_rel_min: float = number(1e-7, "floor of g_T/g_max inside the logarithm", "", 1e-30, 1.0)
    scale: float = number(1.0, "multiplies ν (aihwkit drift_scale)")


@dataclass(frozen=True)
class RramRelaxation:
    """Conductance relaxation: the spread around g_T grows with time, no systematic drift.

    σ(t, g_T) = scale · Σ_i c_i(t) (g_T/g_max)^i µS, measured at ``times_s``; between
    measured times the variance is interpolated linearly in log10 t, beyond them held.
    """

    law: Literal["rram_relaxation"] = law_field(
        "rram_relaxation", "drift law rram_relaxation: spread around g_T grows with time"
    )
    times_s: tuple[float, ...] = field(
        default=(1.0, 86400.0, 172800.0),
        metadata=spec("times after programming at which the spread was measured", "s", 1e-9, 1e12),
    )
    coefficients_uS: tuple[tuple[float, ...], ...] = field(
        default=(
            (0.348, 16.030, -43.853, 45.393, -16.815),
            (0.701, 22.086, -50.773, 47.095, -16.458),
            (0.782, 20.274, -43.507, 37.062, -11.934),
        ),
        metadata=spec(
            "per time: c_0, c_1, ... of the std polynomial in g_T/g_max", "µS", -1e6, 1e6
        ),
    )
    reference_g_max_uS: float = number(
        40.0, "g_max at which the coefficients were fitted", "µS", 1e-6
    )
    scale: float = number(1.0, "multiplies σ(t) (aihwkit noise_scale)")


@dataclass(frozen=True)
class NoReadNoise:
    """No accumulated read noise at drift time."""

    law: Literal["none"] = law_field("none", "read-noise law none: no accumulated read noise")


@dataclass(frozen=True)
class PcmOneOverFReadNoise:
    """Accumulated 1/f read noise at time t, drawn once per drift (aihwkit PCMLikeNoiseModel).

    Q_s = min(q_coefficient / max((g_prog/g_max)^q_exponent, q_floor), q_max),
    σ(t) = scale · |g_drift| · Q_s · sqrt(ln((t + t_read) / (2 t_read))), t = t_inference + t0.
    """

    law: Literal["pcm_1_over_f"] = law_field(
        "pcm_1_over_f", "read-noise law pcm_1_over_f: accumulated 1/f read noise at drift time"
    )
    t0_s: float = number(20.0, "time of the first read after programming (as drift.t0_s)", "s",
                       1e-9)
    q_coefficient: float = number(0.0088, "Q_s at g = g_max", "", 0.0, 10.0)
    q_exponent: float = number(0.65, "power of g_rel in Q_s", "", 0.0, 10.0)
    q_floor: float = number(1e-3, "floor of (g/g_max)^q_exponent", "", 1e-12, 1.0)
    q_max: float = number(0.2, "cap of Q_s", "", 0.0, 10.0)
    t_read_s: float = number(250e-9, "duration of one read", "s", 1e-15, 1.0)
    scale: float = number(1.0, "multiplies σ(t) (aihwkit read_noise_scale)")


ProgrammingNoise = NoProgrammingNoise | PolynomialProgrammingNoise | GaussianProgrammingNoise
Drift = NoDrift | PcmPowerLawDrift | RramRelaxation
ReadNoise = NoReadNoise | PcmOneOverFReadNoise

# section → value of its ``law`` key → the dataclass holding that law's numbers
LAWS: dict[str, dict[str, type]] = {
    "programming": {
        "none": NoProgrammingNoise,
        "polynomial": PolynomialProgrammingNoise,
        "gaussian": GaussianProgrammingNoise,
    },
    "drift": {
        "none": NoDrift,
        "pcm_power_law": PcmPowerLawDrift,
        "rram_relaxation": RramRelaxation,
    },
    "read_noise": {"none": NoReadNoise, "pcm_1_over_f": PcmOneOverFReadNoise},
}
