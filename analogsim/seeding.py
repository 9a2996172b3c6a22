"""Derived seeds: every random draw in analogsim comes from (user seed, purpose, ...).

Seeds are derived with numpy's ``SeedSequence(seed, spawn_key=key)`` rather than added, so
(seed 0, instance 1) and (seed 1, instance 0) never collide. Library code draws from explicit
generators; where code it does not own draws from torch's global generator (a module's default
initialisation, aihwkit), it runs inside :func:`global_rng_seeded`, which leaves the caller's
global generator as it was.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from analogsim.errors import UsageError


class Purpose(enum.IntEnum):
    """What a derived stream is used for (the first element of every spawn key)."""

    PROGRAM = 0
    DRIFT = 1
    FORWARD = 2
    READOUT = 3
    TRAINING = 4
    ACTIVATION_NOISE = 5
    CALIBRATION = 6
    DRIFT_EXPONENTS = 7


@functools.lru_cache(maxsize=65536)
def derive_seed(seed: int, *key: int) -> int:
    """A 63-bit seed for the stream identified by ``key`` under the user's ``seed``."""
    if seed < 0 or any(k < 0 for k in key):
        raise UsageError(f"a seed and its stream keys must be integers ≥ 0; got seed={seed!r}, "
                         f"key={key!r}")
    state = np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key))
    return int(state.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def make_generator(seed: int, *key: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded for the stream ``key`` under ``seed``."""
    generator = torch.Generator()
    generator.manual_seed(derive_seed(seed, *key))
    return generator


def time_key(t_seconds: float) -> int:
    """An integer key for a drift time (nanosecond resolution)."""
    return round(t_seconds * 1e9)


@contextmanager
def global_rng_seeded(seed: int) -> Iterator[None]:
    """Within the block torch's global CPU generator starts from ``seed``; after it, the
    generator is back in the state it had before, so no draw or seed leaks to the caller.

    For code that draws from the global generator and takes no ``generator`` argument: a
    module's default weight initialisation, aihwkit's tiles (which draw on the CPU generator
    only). CUDA generators are neither seeded nor touched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield
