"""Loading cards: the shipped ones by name (``devices/*.toml``), any other by path."""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from analogsim.cards.chip import Chip, apply_overrides, chip_from_dict
from analogsim.errors import CardError, UnknownChipError


def shipped_cards() -> dict[str, resources.abc.Traversable]:
    """Shipped card name → its TOML file (the package ``analogsim.devices``)."""
    folder = resources.files("analogsim.devices")
    return {p.name.removesuffix(".toml"): p for p in folder.iterdir() if p.name.endswith(".toml")}


def list_chips() -> list[str]:
    """Names of the device cards shipped with analogsim."""
    return sorted(shipped_cards())


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
    shipped = shipped_cards()
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
