"""Axis scales of the report's figures: log (through 0 when a sweep includes 0), durations,
integers and categories, chosen from the values an axis shows and their unit."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

from analogsim.report.formatting import format_number, format_quantity
from analogsim.units import format_duration

#: Tick marks of a time axis: 1 s, 1 min, 1 h, 1 day, 1 week, 1 month, 1 year, 10 years (in s).
_TIME_TICKS = (1.0, 60.0, 3600.0, 86400.0, 604800.0, 2592000.0, 31536000.0, 315360000.0)
#: A positive range this wide (max/min) is drawn on a log axis.
_DECADES = 100.0
#: Ticks at the values of an axis, up to this many.
_MOST_TICKS = 12

Which = Literal["x", "y"]


def positions(values: np.ndarray) -> np.ndarray:
    """Where values sit on an axis: numbers as they are, strings at 0, 1, 2, …"""
    values = np.asarray(values)
    if values.dtype.kind in "fiub":
        return values.astype(float)
    return np.arange(len(values), dtype=float)


def spans_decades(values: np.ndarray) -> bool:
    """Whether the positive values span two decades or more (NaN ignored)."""
    values = np.asarray(values, dtype=float)
    positive = values[np.isfinite(values) & (values > 0)]
    return positive.size > 1 and positive.max() / positive.min() >= _DECADES


def _set_scale(axes: Axes, which: Which, values: np.ndarray) -> None:
    """Log scale; symlog (linear between 0 and the smallest positive value) when 0 is a value."""
    positive = values[values > 0]
    setter = axes.set_xscale if which == "x" else axes.set_yscale
    if (values == 0).any():
        setter("symlog", linthresh=float(positive.min()), linscale=1.0)
    else:
        setter("log")


def _set_ticks(axes: Axes, which: Which, ticks: np.ndarray, labels: list[str] | None) -> None:
    axis = axes.xaxis if which == "x" else axes.yaxis
    (axes.set_xticks if which == "x" else axes.set_yticks)(ticks, labels)
    axis.set_minor_formatter(NullFormatter())


def _decade_ticks(values: np.ndarray, most: int = 6) -> np.ndarray:
    """Ticks of a log axis: 1, 2, 5 × 10^k across up to two decades; beyond, powers of ten,
    every decade or every few so that at most about ``most`` remain; 0 first when it is a
    value."""
    positive = values[values > 0]
    low, high = np.floor(np.log10(positive.min())), np.ceil(np.log10(positive.max()))
    if high - low <= 2:
        ticks = np.outer(10.0 ** np.arange(low, high + 1), [1.0, 2.0, 5.0]).ravel()
        ticks = ticks[(ticks >= positive.min() / 2) & (ticks <= positive.max() * 2)]
    else:
        step = max(1, int(np.ceil((high - low + 1) / most)))
        ticks = 10.0 ** np.arange(low, high + 1, step)
    return np.concatenate([[0.0], ticks]) if (values == 0).any() else ticks


def style_value_axis(axes: Axes, which: Which, values: np.ndarray, unit: str, *,
                     time: bool = False, ticks_at_values: bool = True) -> None:
    """Scale and ticks of an axis that shows ``values`` of a run (axis values or data).

    - strings: one tick per value, in order (plot them at :func:`positions`);
    - times (``time`` or unit "s"): log (symlog through 0 s), ticks at 1 s, 1 min, 1 h, 1 day,
      1 week, 1 month, 1 year, 10 years, or at the values when fewer of those fall in range,
      written as durations;
    - factors of a card value (unit "×"), and numbers spanning two decades: log (symlog
      through 0), ticks at the values (every k-th of many factors) or at powers of ten;
    - integers (bits, levels): a log2 axis when they span 16× or more, ticks at the values
      (``ticks_at_values``) or at integers;
    - anything else: linear.
    """
    values = np.asarray(values)
    if values.dtype.kind not in "fiub":
        labels = [str(v) for v in values]
        _set_ticks(axes, which, positions(values), labels)
        if which == "x" and len(labels) > 3 and max(map(len, labels)) > 6:
            axes.tick_params(axis="x", labelrotation=30)
            for label in axes.get_xticklabels():
                label.set_horizontalalignment("right")
        return
    numbers = values.astype(float)
    numbers = numbers[np.isfinite(numbers)]
    if numbers.size == 0:
        return
    distinct = np.unique(numbers)
    if time or unit == "s":
        if (numbers > 0).any():
            _set_scale(axes, which, numbers)
        inside = [t for t in _TIME_TICKS if distinct.min() <= t <= distinct.max()]
        ticks = np.array(inside if len(inside) >= 2 else distinct[distinct > 0][:8])
        if (distinct == 0).any():
            ticks = np.concatenate([[0.0], ticks])
        _set_ticks(axes, which, ticks, [format_duration(t) for t in ticks])
        return
    integers = bool(np.all(distinct == np.round(distinct)))
    few = ticks_at_values and distinct.size <= _MOST_TICKS
    if (unit == "×" and (distinct > 0).sum() > 1) or (spans_decades(numbers) and not integers):
        _set_scale(axes, which, numbers)
        if few or (ticks_at_values and unit == "×"):  # factors: every k-th value (1, 2, 4, …)
            ticks = distinct[::math.ceil(distinct.size / _MOST_TICKS)]
            _set_ticks(axes, which, ticks, [format_quantity(v, unit) for v in ticks])
        else:
            ticks = _decade_ticks(distinct)
            _set_ticks(axes, which, ticks,
                       [format_quantity(t, unit) for t in ticks] if unit else None)
        return
    if not integers:
        return
    if (distinct > 0).all() and distinct.max() / distinct.min() >= 16:
        (axes.set_xscale if which == "x" else axes.set_yscale)("log", base=2)
    if few:
        _set_ticks(axes, which, distinct, [format_number(v) for v in distinct])
    else:
        axis = axes.xaxis if which == "x" else axes.yaxis
        axis.set_major_locator(MaxNLocator(integer=True))
        axis.set_major_formatter(ScalarFormatter())
