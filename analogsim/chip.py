"""Device cards: TOML files loaded into a validated, frozen :class:`Chip`.

A card is data, never code: every section maps onto one frozen dataclass below, and the
dataclasses are the schema. Each field carries its unit, its allowed range and a one-line
description in ``metadata``; :func:`load_chip` checks every key, type and range against them
and raises :class:`~analogsim.errors.CardError` naming the key, the value and what was expected.

Sections that pick a physical law (``programming``, ``drift``, ``read_noise``) have a ``law``
key; each law is its own dataclass with its own fields. The formulas live in
:mod:`analogsim.physics`; the cards only hold numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import tomli_w

from analogsim.errors import CardError, UnknownChipError

CARD_FORMAT_VERSION = 1


def _spec(
    doc: str, unit: str = "", low: float | None = None, high: float | None = None, **extra: Any
) -> dict[str, Any]:
    """Field metadata: a description, a unit and the inclusive allowed range."""
    return {"doc": doc, "unit": unit, "low": low, "high": high, **extra}


def _num(default: float, doc: str, unit: str = "", low: float = 0.0, high: float = 1e6) -> Any:
    return field(default=default, metadata=_spec(doc, unit, low, high))


# ---------------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class CardInfo:
    """Who the card is and where its numbers come from."""

    name: str = field(metadata=_spec("short name used by load_chip"))
    description: str = field(default="", metadata=_spec("one-line summary"))
    source: str = field(default="", metadata=_spec("paper/table/figure the numbers come from"))


@dataclass(frozen=True)
class Conductance:
    """Conductance range of one device and how a weight is split over devices."""

    g_max_uS: float = _num(25.0, "largest programmable conductance", "µS", 1e-6)
    g_min_uS: float = _num(0.0, "smallest programmable conductance", "µS")
    pair: Literal["differential", "single"] = field(
        default="differential",
        metadata=_spec(
            "differential: W ∝ g⁺ − g⁻ on two devices; single: one device around mid-range"
        ),
    )
    levels: int | None = field(
        default=None,
        metadata=_spec(
            "distinct programmable conductances per device (absent: analog)", "", 2, 1 << 20
        ),
    )


@dataclass(frozen=True)
class NoProgrammingNoise:
    """Devices reach their target conductance exactly."""

    law: Literal["none"] = "none"


@dataclass(frozen=True)
class PolynomialProgrammingNoise:
    """Gaussian programming error whose std is a polynomial of the normalised target.

    σ_prog(g_T) = scale · (g_max / reference_g_max) · Σ_i c_i (g_T / g_max)^i, in µS.
    """

    law: Literal["polynomial"] = "polynomial"
    coefficients_uS: tuple[float, ...] = field(
        default=(0.26348, 1.9650, -1.1731),
        metadata=_spec("c_0, c_1, ... of the std polynomial in g_T/g_max", "µS", -1e6, 1e6),
    )
    reference_g_max_uS: float = _num(
        25.0, "g_max at which the coefficients were fitted", "µS", 1e-6
    )
    scale: float = _num(1.0, "multiplies σ_prog (aihwkit prog_noise_scale)")


@dataclass(frozen=True)
class GaussianProgrammingNoise:
    """One-shot Gaussian error: additive in units of the conductance range, and relative."""

    law: Literal["gaussian"] = "gaussian"
    additive_std: float = _num(0.0, "std of g / (g_max − g_min) added once per device")
    multiplicative_std: float = _num(0.0, "std of the relative error g·N(0, σ²) per device")


@dataclass(frozen=True)
class NoDrift:
    """Conductances do not change after programming."""

    law: Literal["none"] = "none"


@dataclass(frozen=True)
class PcmPowerLawDrift:
    """g(t) = g_prog · (t / t0)^(−ν), ν drawn per device at programming from a law of g_T.

    μ_ν = clip(mean_slope · ln g_rel + mean_offset, mean_min, mean_max),
    σ_ν = clip(std_slope · ln g_rel + std_offset, std_min, std_max),
    ν = |μ_ν + σ_ν · N(0, 1)| · scale, with g_rel = max(g_T / g_max, g_rel_min).
    """

    law: Literal["pcm_power_law"] = "pcm_power_law"
    t0_s: float = _num(20.0, "time of the first read after programming", "s", 1e-9)
    mean_slope: float = _num(-0.0155, "d μ_ν / d ln g_rel", "", -1.0, 1.0)
    mean_offset: float = _num(0.0244, "μ_ν at g_rel = 1 before clipping", "", -1.0, 1.0)
    mean_min: float = _num(0.049, "lower clip of μ_ν", "", 0.0, 10.0)
    mean_max: float = _num(0.1, "upper clip of μ_ν", "", 0.0, 10.0)
    std_slope: float = _num(-0.0125, "d σ_ν / d ln g_rel", "", -1.0, 1.0)
    std_offset: float = _num(-0.0059, "σ_ν at g_rel = 1 before clipping", "", -1.0, 1.0)
    std_min: float = _num(0.008, "lower clip of σ_ν", "", 0.0, 10.0)
    std_max: float = _num(0.045, "upper clip of σ_ν", "", 0.0, 10.0)
    g_rel_min: float = _num(1e-7, "floor of g_T/g_max inside the logarithm", "", 1e-30, 1.0)
    scale: float = _num(1.0, "multiplies ν (aihwkit drift_scale)")


@dataclass(frozen=True)
class RramRelaxation:
    """Conductance relaxation: the spread around g_T grows with time, no systematic drift.

    σ(t, g_T) = scale · Σ_i c_i(t) (g_T/g_max)^i µS, measured at ``times_s``; between
    measured times the variance is interpolated linearly in log10 t, beyond them held.
    """

    law: Literal["rram_relaxation"] = "rram_relaxation"
    times_s: tuple[float, ...] = field(
        default=(1.0, 86400.0, 172800.0),
        metadata=_spec("times after programming at which the spread was measured", "s", 1e-9, 1e12),
    )
    coefficients_uS: tuple[tuple[float, ...], ...] = field(
        default=(
            (0.348, 16.030, -43.853, 45.393, -16.815),
            (0.701, 22.086, -50.773, 47.095, -16.458),
            (0.782, 20.274, -43.507, 37.062, -11.934),
        ),
        metadata=_spec(
            "per time: c_0, c_1, ... of the std polynomial in g_T/g_max", "µS", -1e6, 1e6
        ),
    )
    reference_g_max_uS: float = _num(
        40.0, "g_max at which the coefficients were fitted", "µS", 1e-6
    )
    scale: float = _num(1.0, "multiplies σ(t) (aihwkit noise_scale)")


@dataclass(frozen=True)
class NoReadNoise:
    """No accumulated read noise at drift time."""

    law: Literal["none"] = "none"


@dataclass(frozen=True)
class PcmOneOverFReadNoise:
    """Accumulated 1/f read noise at time t, drawn once per drift (aihwkit PCMLikeNoiseModel).

    Q_s = min(q_coefficient / max((g_prog/g_max)^q_exponent, q_floor), q_max),
    σ(t) = scale · |g_drift| · Q_s · sqrt(ln((t + t_read) / (2 t_read))), t = t_inference + t0.
    """

    law: Literal["pcm_1_over_f"] = "pcm_1_over_f"
    t0_s: float = _num(20.0, "time of the first read after programming (as drift.t0_s)", "s",
                       1e-9)
    q_coefficient: float = _num(0.0088, "Q_s at g = g_max", "", 0.0, 10.0)
    q_exponent: float = _num(0.65, "power of g_rel in Q_s", "", 0.0, 10.0)
    q_floor: float = _num(1e-3, "floor of (g/g_max)^q_exponent", "", 1e-12, 1.0)
    q_max: float = _num(0.2, "cap of Q_s", "", 0.0, 10.0)
    t_read_s: float = _num(250e-9, "duration of one read", "s", 1e-15, 1.0)
    scale: float = _num(1.0, "multiplies σ(t) (aihwkit read_noise_scale)")


@dataclass(frozen=True)
class PerReadNoise:
    """Noise drawn afresh on every MVM, referred to the devices; sampled in output space."""

    additive_std: float = _num(0.0, "per-device std per read, in units of g_max − g_min")
    multiplicative_std: float = _num(0.0, "per-device relative std per read")


@dataclass(frozen=True)
class Faults:
    """Devices stuck at one conductance from programming on (drawn once per chip instance)."""

    stuck_low_fraction: float = _num(0.0, "fraction of devices stuck at g_min", "", 0.0, 1.0)
    stuck_high_fraction: float = _num(0.0, "fraction of devices stuck at g_max", "", 0.0, 1.0)


@dataclass(frozen=True)
class Dac:
    """Input digital-to-analog converter (aihwkit inp_res / inp_bound)."""

    bits: int | None = field(
        default=None,
        metadata=_spec("resolution: 2^bits − 2 steps over ±bound (absent: ideal)", "bit", 2, 32),
    )
    bound: float = _num(1.0, "clipping range of the scaled input", "", 1e-9)
    input_scaling: Literal["abs_max", "none"] = field(
        default="abs_max",
        metadata=_spec(
            "abs_max: each input vector is divided by its max |x| (aihwkit "
            "noise management ABS_MAX); none: inputs used as they are"
        ),
    )


@dataclass(frozen=True)
class Adc:
    """Output analog-to-digital converter, one per tile column (aihwkit out_res / out_bound)."""

    bits: int | None = field(
        default=None,
        metadata=_spec("resolution: 2^bits − 2 steps over ±bound (absent: ideal)", "bit", 2, 32),
    )
    bound: float = _num(12.0, "clipping range in units of a full-scale device current", "", 1e-9)


@dataclass(frozen=True)
class OutputNoise:
    """Gaussian noise added to every tile output before the ADC (aihwkit out_noise)."""

    std: float = _num(0.0, "std in units of a full-scale device current")


@dataclass(frozen=True)
class TileMapping:
    """How a layer's weight matrix is cut into tiles and scaled onto conductances."""

    tile_rows: int = field(default=512, metadata=_spec("inputs per tile", "", 1, 1 << 20))
    tile_cols: int = field(default=512, metadata=_spec("outputs per tile", "", 1, 1 << 20))
    weight_scaling: Literal["tile", "column"] = field(
        default="tile",
        metadata=_spec("max|W| of a whole tile, or of each column within a tile, maps to g_max"),
    )


@dataclass(frozen=True)
class DriftCompensation:
    """Digital rescaling of tile outputs after drift (aihwkit GlobalDriftCompensation)."""

    method: Literal["none", "global", "per_column"] = field(
        default="none", metadata=_spec("one factor per tile, one per column, or none")
    )
    readout: Literal["identity", "ones"] = field(
        default="identity",
        metadata=_spec(
            "read-out inputs: one-hot vectors (aihwkit code) or an all-ones vector (aihwkit docs)"
        ),
    )
    readout_noise: bool = field(
        default=True,
        metadata=_spec("read-out goes through the noisy periphery (aihwkit) or is exact"),
    )


@dataclass(frozen=True)
class Coding:
    """How weights are coded into cells (S3 robust weight coding; METHODS.md §13).

    ``scheme`` is ``"none"`` or parts joined by ``+``: ``sign`` (sign as side information,
    |w| on the full range), ``adaptive_mapping`` (small weights get a larger α),
    ``redundancy`` (r_small / r_large cells per small / large weight, reads averaged).
    """

    scheme: str = field(default="none", metadata=_spec(
        "none, or + joined parts of sign, adaptive_mapping, redundancy"))
    scope: Literal["tile", "layer", "global"] = field(default="tile", metadata=_spec(
        "where m = max|w| (and T) are taken: each tile, the layer, or the whole model"))
    large_fraction: float = _num(6998 / 11164352, "fraction of weights that are large "
                                 "(S3: 6,998 of 11,164,352)", "", 0.0, 1.0)
    threshold: float | None = field(default=None, metadata=_spec(
        "T as a fraction of m; replaces large_fraction when set", "", 0.0, 1.0))
    large_range: Literal["full", "above_threshold"] = field(default="full", metadata=_spec(
        "large weights map [0, m] or [T, m] onto the range (the latter needs sign)"))
    clamp_magnitude: bool = field(default=True, metadata=_spec(
        "clamp a decoded magnitude at 0, so the sign stays protected"))
    r_small: int = field(default=1, metadata=_spec("cells per small weight", "", 1, 1000))
    r_large: int = field(default=10, metadata=_spec("cells per large weight", "", 1, 1000))


ProgrammingNoise = NoProgrammingNoise | PolynomialProgrammingNoise | GaussianProgrammingNoise
Drift = NoDrift | PcmPowerLawDrift | RramRelaxation
ReadNoise = NoReadNoise | PcmOneOverFReadNoise

_LAWS: dict[str, dict[str, type]] = {
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


@dataclass(frozen=True)
class Chip:
    """A loaded device card: device physics plus periphery, every number validated.

    Build one with :func:`load_chip`; change numbers with :meth:`replace` or overrides.
    """

    card: CardInfo
    conductance: Conductance = field(default_factory=Conductance)
    programming: ProgrammingNoise = field(default_factory=NoProgrammingNoise)
    drift: Drift = field(default_factory=NoDrift)
    read_noise: ReadNoise = field(default_factory=NoReadNoise)
    per_read_noise: PerReadNoise = field(default_factory=PerReadNoise)
    faults: Faults = field(default_factory=Faults)
    dac: Dac = field(default_factory=Dac)
    adc: Adc = field(default_factory=Adc)
    output_noise: OutputNoise = field(default_factory=OutputNoise)
    mapping: TileMapping = field(default_factory=TileMapping)
    drift_compensation: DriftCompensation = field(default_factory=DriftCompensation)
    coding: Coding = field(default_factory=Coding)

    required_sections: ClassVar[tuple[str, ...]] = ("card", "conductance")

    @property
    def name(self) -> str:
        return self.card.name

    def replace(self, **overrides: Any) -> Chip:
        """A copy with overrides applied and validated (same keys as :func:`load_chip`)."""
        return chip_from_dict(apply_overrides(chip_to_dict(self), overrides))

    def value(self, key: str) -> Any:
        """The value of one field, named as an override is (``"adc.bits"``, ``"adc_bits"``,
        ``"read_noise_scale"``).

        Raises:
            CardError: the key names no field of this card (e.g. ``drift.scale`` when the
                card has no drift law).
        """
        section, name = _override_target(_ALIASES.get(key, key), chip_to_dict(self))
        owner = getattr(self, section)
        if not hasattr(owner, name):
            law = getattr(owner, "law", None)
            raise CardError(f"card {self.name!r} has no field {section}.{name}"
                            + (f" (its {section} law is {law!r})" if law else ""))
        return getattr(owner, name)

    def to_toml(self) -> str:
        """The card as TOML text; ``chip_from_toml(chip.to_toml()) == chip``."""
        return tomli_w.dumps(chip_to_dict(self))


# ------------------------------------------------------------------------------- validation


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a section class (resolving them is slow; they never change)."""
    return typing.get_type_hints(cls)


def _section_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _check_number(where: str, value: Any, meta: Mapping[str, Any], integer: bool) -> float | int:
    kind = "an integer" if integer else "a number"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not isinstance(value, int))
    ):
        raise CardError(f"{where} must be {kind}, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise CardError(f"{where} must be a finite number, got {value!r}")
    low, high = meta.get("low"), meta.get("high")
    unit = f" {meta['unit']}" if meta.get("unit") else ""
    if low is not None and value < low:
        raise CardError(f"{where} must be ≥ {low}{unit}, got {value!r}")
    if high is not None and value > high:
        raise CardError(f"{where} must be ≤ {high:g}{unit}, got {value!r}")
    return int(value) if integer else float(value)


def _check_value(where: str, value: Any, annotation: Any, meta: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        if value not in args:
            raise CardError(f"{where} must be one of {list(args)}, got {value!r}")
        return value
    if origin in (types.UnionType, typing.Union):  # X | None: the key may be left out
        inner = [a for a in args if a is not type(None)]
        return _check_value(where, value, inner[0], meta)
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) == 0:
            raise CardError(f"{where} must be a non-empty list, got {value!r}")
        return tuple(_check_value(f"{where}[{i}]", v, args[0], meta) for i, v in enumerate(value))
    if annotation is bool:
        if not isinstance(value, bool):
            raise CardError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise CardError(f"{where} must be a string, got {value!r}")
        return value
    if annotation in (int, float):
        return _check_number(where, value, meta, integer=annotation is int)
    raise TypeError(f"no validator for {annotation!r}")  # a schema bug, not a user error


def _build_section(name: str, cls: type, table: Any, source: str) -> Any:
    if not isinstance(table, Mapping):
        raise CardError(f"{source}: [{name}] must be a table, got {table!r}")
    fields = _section_fields(cls)
    hints = _type_hints(cls)
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise CardError(
            f"{source}: unknown key {name}.{unknown[0]}; [{name}] accepts {sorted(fields)}"
        )
    values = {}
    for key, value in table.items():
        values[key] = _check_value(
            f"{source}: {name}.{key}", value, hints[key], fields[key].metadata
        )
    missing = [
        k
        for k, f in fields.items()
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and k not in values
    ]
    if missing:
        raise CardError(f"{source}: [{name}] is missing the key {missing[0]!r}")
    return cls(**values)


def chip_from_dict(data: Mapping[str, Any], source: str = "card") -> Chip:
    """Validate a parsed card (the TOML as a dict) and build the :class:`Chip`.

    Raises:
        CardError: naming the key, the value and what was expected.
    """
    if not isinstance(data, Mapping):
        raise CardError(f"{source}: a card must be a TOML table, got {type(data).__name__}")
    version = data.get("format_version", CARD_FORMAT_VERSION)
    if version != CARD_FORMAT_VERSION:
        raise CardError(
            f"{source}: format_version {version!r} is not supported; this analogsim reads "
            f"card format {CARD_FORMAT_VERSION}"
        )
    sections = {f.name: f for f in dataclasses.fields(Chip)}
    unknown = sorted(set(data) - set(sections) - {"format_version"})
    if unknown:
        raise CardError(f"{source}: unknown section [{unknown[0]}]; a card has {sorted(sections)}")
    for required in Chip.required_sections:
        if required not in data:
            raise CardError(f"{source}: the section [{required}] is missing")
    hints = _type_hints(Chip)
    built: dict[str, Any] = {}
    for name, table in data.items():
        if name == "format_version":
            continue
        if name in _LAWS:
            if not isinstance(table, Mapping):
                raise CardError(f"{source}: [{name}] must be a table, got {table!r}")
            law = table.get("law", "none")
            if law not in _LAWS[name]:
                raise CardError(
                    f"{source}: {name}.law must be one of {sorted(_LAWS[name])}, got {law!r}"
                )
            built[name] = _build_section(name, _LAWS[name][law], table, source)
        else:
            built[name] = _build_section(name, hints[name], table, source)
    chip = Chip(**built)
    _check_consistency(chip, source)
    return chip


def _check_consistency(chip: Chip, source: str) -> None:
    cond = chip.conductance
    if cond.g_min_uS >= cond.g_max_uS:
        raise CardError(
            f"{source}: conductance.g_min_uS ({cond.g_min_uS}) must be below "
            f"conductance.g_max_uS ({cond.g_max_uS})"
        )
    faults = chip.faults
    if faults.stuck_low_fraction + faults.stuck_high_fraction > 1.0:
        raise CardError(
            f"{source}: faults.stuck_low_fraction + faults.stuck_high_fraction must be ≤ 1, got "
            f"{faults.stuck_low_fraction + faults.stuck_high_fraction}"
        )
    coding = chip.coding
    parts = set() if coding.scheme == "none" else set(coding.scheme.split("+"))
    known = {"sign", "adaptive_mapping", "redundancy"}
    if not parts <= known or "none" in parts or "" in parts:
        raise CardError(
            f"{source}: coding.scheme must be 'none' or + joined parts of {sorted(known)}, got "
            f"{coding.scheme!r}"
        )
    if coding.large_range == "above_threshold" and not {"sign", "adaptive_mapping"} <= parts:
        raise CardError(
            f"{source}: coding.large_range = 'above_threshold' needs the sign and "
            f"adaptive_mapping parts; scheme is {coding.scheme!r}"
        )
    if coding.r_large < coding.r_small:
        raise CardError(
            f"{source}: coding.r_large ({coding.r_large}) must be at least coding.r_small "
            f"({coding.r_small})"
        )
    drift = chip.drift
    if (isinstance(drift, PcmPowerLawDrift) and isinstance(chip.read_noise, PcmOneOverFReadNoise)
            and drift.t0_s != chip.read_noise.t0_s):
        raise CardError(
            f"{source}: drift.t0_s ({drift.t0_s}) and read_noise.t0_s ({chip.read_noise.t0_s}) "
            "are the same time (first read after programming); give them one value"
        )
    if isinstance(drift, RramRelaxation):
        if len(drift.coefficients_uS) != len(drift.times_s):
            raise CardError(
                f"{source}: drift.coefficients_uS has {len(drift.coefficients_uS)} rows but "
                f"drift.times_s has {len(drift.times_s)} times; give one row per time"
            )
        if list(drift.times_s) != sorted(set(drift.times_s)):
            raise CardError(
                f"{source}: drift.times_s must increase strictly, got {list(drift.times_s)}"
            )


def chip_to_dict(chip: Chip) -> dict[str, Any]:
    """The card as plain TOML-ready data (absent optional keys left out)."""
    out: dict[str, Any] = {"format_version": CARD_FORMAT_VERSION}
    for f in dataclasses.fields(chip):
        section = getattr(chip, f.name)
        out[f.name] = {
            k: _plain(v) for k, v in dataclasses.asdict(section).items() if v is not None
        }
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def chip_from_toml(text: str, source: str = "card") -> Chip:
    """Parse and validate card TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CardError(f"{source}: not valid TOML ({error})") from None
    return chip_from_dict(data, source)


# -------------------------------------------------------------------------------- overrides


def _override_target(key: str, data: Mapping[str, Any]) -> tuple[str, str]:
    """Resolve an override key to (section, field).

    Accepted spellings: ``"adc.bits"``, ``"adc_bits"``, or a bare field name that only one
    section has (``"g_max_uS"``).
    """
    sections = [f.name for f in dataclasses.fields(Chip)]
    if "." in key:
        section, _, name = key.partition(".")
        if section in sections:
            return section, name
    for section in sorted(sections, key=len, reverse=True):
        if key.startswith(section + "_") and len(key) > len(section) + 1:
            return section, key[len(section) + 1 :]
    owners = [s for s in sections if key in _fields_of_section(s, data)]
    if len(owners) == 1:
        return owners[0], key
    if len(owners) > 1:
        raise CardError(
            f"override {key!r} is ambiguous: say which section, one of "
            f"{[f'{s}.{key}' for s in owners]}"
        )
    raise CardError(
        f"override {key!r} names no card field; use 'section.field', e.g. "
        f"'adc.bits' or 'read_noise.scale' (sections: {sections})"
    )


def _fields_of_section(section: str, data: Mapping[str, Any]) -> set[str]:
    if section in _LAWS:
        law = data.get(section, {}).get("law", "none")
        cls = _LAWS[section].get(law, next(iter(_LAWS[section].values())))
    else:
        cls = _type_hints(Chip)[section]
    return set(_section_fields(cls))


_ALIASES = {  # aihwkit's names for the same knobs
    "prog_noise_scale": "programming.scale",
    "read_noise_scale": "read_noise.scale",
    "drift_scale": "drift.scale",
    "out_noise": "output_noise.std",
    "g_max": "conductance.g_max_uS",
}


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of card data with ``overrides`` applied (validated later, as a whole).

    Setting ``section.law`` to another law drops that section's other keys, so the new law
    starts from its own defaults. ``None`` removes an optional key (e.g. ``adc_bits=None``).
    """
    result = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    for key, value in overrides.items():
        section, name = _override_target(_ALIASES.get(key, key), result)
        table = result.setdefault(section, {})
        if name == "law" and table.get("law") != value:
            table.clear()
        if value is None:
            table.pop(name, None)
        else:
            table[name] = list(value) if isinstance(value, tuple) else value
    return result


# ---------------------------------------------------------------------------------- loading


def _shipped_cards() -> dict[str, resources.abc.Traversable]:
    folder = resources.files("analogsim.devices")
    return {p.name.removesuffix(".toml"): p for p in folder.iterdir() if p.name.endswith(".toml")}


def list_chips() -> list[str]:
    """Names of the device cards shipped with analogsim."""
    return sorted(_shipped_cards())


def load_chip(name_or_path: str | Path | Chip, **overrides: Any) -> Chip:
    """Load a shipped card by name, or a card file by path, and apply overrides.

    Args:
        name_or_path: ``"pcm"``, ``"rram"``, ``"generic"``, ``"ideal"``, a path to a
            ``.toml`` card, or an already loaded :class:`Chip`.
        **overrides: card fields to change, as ``section_field`` or ``"section.field"``
            (``read_noise_scale=2.0``, ``**{"adc.bits": 6}``); validated like the card.

    Raises:
        UnknownChipError: the name is neither a shipped card nor an existing file.
        CardError: the card or an override is invalid.
    """
    if isinstance(name_or_path, Chip):
        return name_or_path.replace(**overrides) if overrides else name_or_path
    shipped = _shipped_cards()
    key = str(name_or_path)
    if key in shipped:
        text, source = shipped[key].read_text(encoding="utf-8"), f"card {key!r}"
    else:
        path = Path(key)
        if not (path.suffix == ".toml" and path.is_file()):
            raise UnknownChipError(
                f"unknown device card {key!r}: not a shipped card ({', '.join(sorted(shipped))}) "
                "and not a path to an existing .toml file"
            )
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CardError(f"{source}: not valid TOML ({error})") from None
    return chip_from_dict(apply_overrides(data, overrides), source)


def describe_fields(section: str, chip: Chip) -> list[tuple[str, Any, str, str]]:
    """(key, value, unit, description) for every field of one section of ``chip``."""
    obj = getattr(chip, section)
    return [
        (f.name, getattr(obj, f.name), f.metadata.get("unit", ""), f.metadata.get("doc", ""))
        for f in dataclasses.fields(obj)
    ]
