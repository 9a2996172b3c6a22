"""Checking one card section against its dataclass: every key, type and range.

The section dataclasses are the schema: a value is checked against the field's annotation
(``Literal``, ``X | None``, ``tuple``, ``bool``, ``str``, ``int``, ``float``) and its metadata
range (:mod:`analogsim.cards.fields`). Errors are :class:`~analogsim.errors.CardError` naming
the key, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from analogsim.errors import CardError


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a section class (resolving them is slow; they never change)."""
    return typing.get_type_hints(cls)


def section_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def section_class(annotation: Any) -> type:
    """The section dataclass of a Chip field's annotation: ``X`` of an optional ``X | None``
    (a section a card may leave out, such as ``[cost]``), else the annotation itself."""
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


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
    raise TypeError(f"internal error (a bug in the card schema, not in the card): no validator "
                    f"for the annotation {annotation!r} of {where}")


def build_section(name: str, cls: type, table: Any, source: str) -> Any:
    if not isinstance(table, Mapping):
        raise CardError(f"{source}: [{name}] must be a table, got {table!r}")
    fields = section_fields(cls)
    hints = type_hints(cls)
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
