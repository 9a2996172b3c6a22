"""Human-readable units for times after programming."""

from __future__ import annotations

_DURATIONS = (("year", 31536000.0), ("month", 2592000.0), ("day", 86400.0), ("h", 3600.0),
              ("min", 60.0), ("s", 1.0))


def format_duration(seconds: float) -> str:
    """'1 s', '1 h', '2 days', '1 year'; other values in the largest unit they reach."""
    name, size = next(((n, s) for n, s in _DURATIONS if seconds >= s), _DURATIONS[-1])
    count = seconds / size
    plural = "s" if name in ("day", "month", "year") and count != 1 else ""
    return f"{count:.3g} {name}{plural}"
