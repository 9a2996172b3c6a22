"""Derived seeds: every random draw in analogsim comes from (user seed, purpose, ...).

Seeds are derived with numpy's ``SeedSequence(seed, spawn_key=key)`` rather than added, so
(seed 0, instance 1) and (seed 1, instance 0) never collide.
"""

from __future__ import annotations

import enum
import functools

import numpy as np
import torch


class Purpose(enum.IntEnum):
    """What a derived stream is used for (the first element of every spawn key)."""

    PROGRAM = 0
    DRIFT = 1
    FORWARD = 2
    READOUT = 3
    TRAINING = 4
    ACTIVATION_NOISE = 5


@functools.lru_cache(maxsize=65536)
def derive_seed(seed: int, *key: int) -> int:
    """A 63-bit seed for the stream identified by ``key`` under the user's ``seed``."""
    if seed < 0 or any(k < 0 for k in key):
        raise ValueError(f"seeds and keys must be non-negative, got seed={seed}, key={key}")
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
