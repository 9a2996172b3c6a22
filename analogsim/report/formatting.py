"""Numbers as a person reads them, on the report's axes and in its tables."""

from __future__ import annotations

import math

import numpy as np

from analogsim.results import RunData
from analogsim.units import format_duration

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_AXIS_NAMES = {"sigma": "noise level σ"}


def is_time(axis: str, unit: str) -> bool:
    """Whether an axis holds times in seconds (drawn and printed as durations)."""
    return unit == "s" or axis.startswith("time")


def format_number(value: float) -> str:
    """Integers as integers ('1024'), other numbers to 3 significant digits ('0.125', '1e-06')."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def format_quantity(value: float, unit: str = "") -> str:
    """A value with its unit: '1 h' for seconds, '2×' for factors, '6 bits', '0.1 V'; NaN → '—'."""
    if not math.isfinite(float(value)):
        return "—"
    if unit == "s":
        return format_duration(float(value))
    if unit == "×":
        return f"{format_number(value)}×"
    if unit == "bit":
        return f"{format_number(value)} bit{'' if float(value) == 1 else 's'}"
    return f"{format_number(value)} {unit}".strip()


def format_axis_value(run: RunData, axis: str, value: object) -> str:
    """One value of a run's axis with the axis unit; strings as they are stored."""
    if isinstance(value, str):
        return value
    unit = run.units.get(axis, "")
    return format_quantity(float(value), "s" if is_time(axis, unit) else unit)


def axis_label(run: RunData, axis: str) -> str:
    """'read_noise.scale [×]', 'time after programming', 'noise level σ', 'drift time'; card
    fields ('adc.bits@fc1') as they are spelled."""
    unit = run.units.get(axis, "")
    if axis.startswith("time") and is_time(axis, unit):
        return "time after programming"
    name = axis if "." in axis else _AXIS_NAMES.get(axis, axis.replace("_", " "))
    return f"{name} [{unit}]" if unit and not is_time(axis, unit) else name


def format_value_error(value: float, error: float) -> str:
    """'1.23 ± 0.04', '(3.2 ± 0.5)×10⁻⁴'; the error to one significant digit (two when it starts
    with 1 or 2), the value to the same decimal place; '0.62' when the error is 0 or unknown."""
    value, error = float(value), float(error)
    if not math.isfinite(value):
        return "—"
    exponent = math.floor(math.log10(abs(value))) if value != 0 else 0
    scientific = exponent < -2 or exponent >= 4
    scale = 10.0**exponent if scientific else 1.0
    value, error = value / scale, error / scale
    if not math.isfinite(error) or error <= 0:
        text = f"{value:.3g}"
    else:
        rounded = f"{error:.0e}"  # e.g. '4e-02'
        digits = max(-math.floor(math.log10(float(rounded))) + (rounded[0] in "12"), 0)
        text = f"{value:.{digits}f} ± {error:.{digits}f}"
    if not scientific:
        return text
    power = f"×10{str(exponent).translate(_SUPERSCRIPT)}"
    return f"({text}){power}" if "±" in text else f"{text}{power}"


def format_percent_interval(mean: float, low: float, high: float) -> str:
    """'97.07 % [96.93, 97.21]' from fractions; 'not measured' when NaN."""
    if not np.isfinite(mean):
        return "not measured"
    return f"{100 * mean:.2f} % [{100 * low:.2f}, {100 * high:.2f}]"


def format_difference(difference: float, low: float, high: float) -> str:
    """'+2.87 pp [+1.46, +4.29]' from fractions; 'not measured' when NaN."""
    if not np.isfinite(difference):
        return "not measured"
    return f"{100 * difference:+.2f} pp [{100 * low:+.2f}, {100 * high:+.2f}]"
