"""The :class:`Chip`: a card's sections in one frozen value, to and from TOML, with overrides.

A card is data, never code: every section maps onto one frozen dataclass
(:mod:`analogsim.cards.sections`, :mod:`analogsim.cards.laws`), and the dataclasses are the
schema. Each field carries its unit, its allowed range and a one-line description in
``metadata``; :func:`chip_from_dict` checks every key, type and range against them
(:mod:`analogsim.cards.validation`) and raises :class:`~analogsim.errors.CardError` naming the
key, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import tomli_w

from analogsim.cards.laws import (
    LAWS,
    Drift,
    NoDrift,
    NoProgrammingNoise,
    NoReadNoise,
    PcmOneOverFReadNoise,
    PcmPowerLawDrift,
    ProgrammingNoise,
    ReadNoise,
    RramRelaxation,
)
from analogsim.cards.sections import (
    Adc,
    CardInfo,
    Coding,
    Conductance,
    Cost,
    Dac,
    DriftCompensation,
    Faults,
    OutputNoise,
    PerReadNoise,
    Slicing,
    TileMapping,
    Wires,
)
from analogsim.cards.validation import build_section, section_class, section_fields, type_hints
from analogsim.errors import CardError

CARD_FORMAT_VERSION = 1



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
    #: None: the card has no [wires] section, its wires are ideal (no IR drop)
    wires: Wires | None = None
    #: None: the card has no [slicing] section, inputs and weights are not sliced
    slicing: Slicing | None = None
    #: None: the card has no [cost] section and reports accuracy only
    cost: Cost | None = None

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
    hints = type_hints(Chip)
    built: dict[str, Any] = {}
    for name, table in data.items():
        if name == "format_version":
            continue
        if name in LAWS:
            if not isinstance(table, Mapping):
                raise CardError(f"{source}: [{name}] must be a table, got {table!r}")
            law = table.get("law", "none")
            if law not in LAWS[name]:
                raise CardError(
                    f"{source}: {name}.law must be one of {sorted(LAWS[name])}, got {law!r}"
                )
            built[name] = build_section(name, LAWS[name][law], table, source)
        else:
            built[name] = build_section(name, section_class(hints[name]), table, source)
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
    if chip.slicing is not None:
        _check_slicing(chip, chip.slicing, source)
    if chip.cost is not None:
        _check_cost(chip, chip.cost, source)
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


def _check_slicing(chip: Chip, slicing: Slicing, source: str) -> None:
    """Refuse a [slicing] section the rest of the card cannot carry out."""
    s, dac_bits = slicing.input_bits_per_slice, chip.dac.bits
    if s is not None and (dac_bits is None or s > dac_bits - 1):
        raise CardError(
            f"{source}: slicing.input_bits_per_slice ({s}) slices the magnitude of a DAC code, "
            + ("but the card has an ideal DAC: give dac.bits" if dac_bits is None else
               f"which has dac.bits − 1 = {dac_bits - 1} bits: give at most {dac_bits - 1}")
            + " or remove slicing.input_bits_per_slice")
    m, p = slicing.weight_slices, slicing.bits_per_weight_slice
    if m == 1:
        if p is not None:
            raise CardError(
                f"{source}: slicing.bits_per_weight_slice ({p}) needs slicing.weight_slices "
                "> 1 (it is 1: weights are not sliced); set weight_slices or remove the key")
        return
    cond = chip.conductance
    problem = (
        "slicing.bits_per_weight_slice is missing: say how many bits each slice holds"
        if p is None else
        f"the weight gets {m} × {p} = {m * p} bits, more than 24 (float32 integers)"
        if m * p > 24 else
        f"conductance.levels ({cond.levels}) must be absent or hold the 2^{p} = {2**p} levels "
        f"a slice uses on its grid (levels − 1 a multiple of {2**p - 1})"
        if cond.levels is not None and (cond.levels - 1) % (2**p - 1) else
        "it needs conductance.pair = 'differential' (the pair holds the sign of each slice)"
        if cond.pair != "differential" else "")
    if problem:
        raise CardError(f"{source}: slicing.weight_slices = {m}: {problem}")


#: [cost]'s pairs of which a card gives one key: (fixed form, dac.bits form, what they price)
_COST_PAIRS = (("read_time_s", "read_step_time_s", "the read time"),
               ("dac_energy_J", "dac_step_energy_J", "the DAC energy"))


def _check_cost(chip: Chip, cost: Cost, source: str) -> None:
    """Refuse a [cost] section that gives both or neither key of a pair, or a dac.bits form
    on a card with an ideal DAC."""
    for fixed, stepped, what in _COST_PAIRS:
        values = {key: getattr(cost, key) for key in (fixed, stepped)}
        given = {key: value for key, value in values.items() if value is not None}
        if len(given) != 1:
            got = ("neither" if not given else
                   "both (" + ", ".join(f"cost.{k} = {v!r}" for k, v in given.items()) + ")")
            raise CardError(
                f"{source}: [cost] gives {what} as cost.{fixed} (fixed) or cost.{stepped} "
                f"(following dac.bits): give exactly one, got {got}")
        if stepped in given and chip.dac.bits is None:
            raise CardError(
                f"{source}: cost.{stepped} ({given[stepped]!r}) scales with dac.bits, but the "
                f"card has an ideal DAC (dac.bits absent): give dac.bits or use cost.{fixed}")


def chip_to_dict(chip: Chip) -> dict[str, Any]:
    """The card as plain TOML-ready data (absent optional keys left out)."""
    out: dict[str, Any] = {"format_version": CARD_FORMAT_VERSION}
    for f in dataclasses.fields(chip):
        section = getattr(chip, f.name)
        if section is None:  # an optional section the card leaves out
            continue
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
    if section in LAWS:
        law = data.get(section, {}).get("law", "none")
        cls = LAWS[section].get(law, next(iter(LAWS[section].values())))
    else:
        cls = section_class(type_hints(Chip)[section])
    return set(section_fields(cls))


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
