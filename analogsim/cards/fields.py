"""Field metadata of the card sections: a description, a unit and the allowed range.

Every field of a section dataclass carries ``metadata = {"doc", "unit", "low", "high"}``;
:mod:`analogsim.cards.validation` checks values against it and
:mod:`analogsim.cards.reference` prints it as the card reference (docs/cards.md).
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


def spec(
    doc: str, unit: str = "", low: float | None = None, high: float | None = None, **extra: Any
) -> dict[str, Any]:
    """Field metadata: a description, a unit and the inclusive allowed range."""
    return {"doc": doc, "unit": unit, "low": low, "high": high, **extra}


def number(default: float, doc: str, unit: str = "", low: float = 0.0, high: float = 1e6) -> Any:
    """A numeric field with its default, description, unit and inclusive range."""
    return field(default=default, metadata=spec(doc, unit, low, high))


def law_field(name: str, doc: str) -> Any:
    """The ``law`` field of a section that picks a physical law: it names this law."""
    return field(default=name, metadata=spec(doc))
