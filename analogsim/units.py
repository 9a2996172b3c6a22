"""Human-readable units for times after programming."""

from __future__ import annotations

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
