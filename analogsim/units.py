"""Human-readable units: times after programming, and quantities with SI prefixes."""

from __future__ import annotations

import math

#: The latest time after programming analogsim takes, in seconds: 1e10 s, about 317 years.
#: Device laws are fitted on minutes to years of reads, so a later time is an extrapolation
#: far past any chip's retention, and most likely a typo (inf, 1e300); drift seeds count
#: nanoseconds (:func:`analogsim.seeding.time_key`), which overflows for infinite times.
MAX_TIME_S = 1e10
#: How messages state the times taken.
TIME_RANGE = f"a time ≥ 0 s and ≤ {MAX_TIME_S:g} s (about 317 years)"

_DURATIONS = (("year", 31536000.0), ("month", 2592000.0), ("day", 86400.0), ("h", 3600.0),
              ("min", 60.0), ("s", 1.0))


def format_duration(seconds: float) -> str:
    """'1 s', '1 h', '2 days', '1 year'; other values in the largest unit they reach."""
    name, size = next(((n, s) for n, s in _DURATIONS if seconds >= s), _DURATIONS[-1])
    count = seconds / size
    plural = "s" if name in ("day", "month", "year") and count != 1 else ""
    return f"{count:.3g} {name}{plural}"


def is_valid_time(seconds: object) -> bool:
    """Whether ``seconds`` is a time after programming analogsim takes: a real number in
    [0, :data:`MAX_TIME_S`] (so not NaN or infinite)."""
    if isinstance(seconds, bool | str):
        return False
    try:
        value = float(seconds)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return 0 <= value <= MAX_TIME_S


_SI_PREFIXES = {-18: "a", -15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M",
                9: "G"}


def format_si(value: float, unit: str) -> str:
    """``value`` with an SI prefix, 3 significant digits: format_si(4.2e-9, "J") == "4.2 nJ"
    (0, NaN and infinities as they are: "0 J", "nan J")."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    exponent = min(max(math.floor(math.log10(abs(value)) / 3) * 3, -18), 9)
    return f"{value / 10**exponent:.3g} {_SI_PREFIXES[exponent]}{unit}"
