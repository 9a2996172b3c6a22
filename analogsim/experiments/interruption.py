"""Stopping a long run cleanly: something (the CLI's SIGINT handler) asks, and the runners
stop after the point in flight, every finished point already flushed to the results file."""

from __future__ import annotations

import threading

from analogsim.errors import AnalogsimError

_requested = threading.Event()


class RunInterrupted(AnalogsimError):
    """A run stopped on request; its results file holds every finished point."""


def request_stop() -> None:
    """Ask the running experiment to stop after its current point."""
    _requested.set()


def clear_stop() -> None:
    """Forget an earlier request (a new run starts)."""
    _requested.clear()


def check_stop() -> None:
    """Raise :class:`RunInterrupted` if a stop was requested (call between points).

    Raises:
        RunInterrupted: when asked to stop.
    """
    if _requested.is_set():
        raise RunInterrupted("stopped on request after the last finished point; run the same "
                             "command again to resume")
