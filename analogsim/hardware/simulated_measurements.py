"""Measurements drawn from a device card: what a measurement campaign on the card's simulated
devices would record (for trying :func:`~analogsim.hardware.fit_device` without a lab)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from analogsim.cards import Chip, load_chip
from analogsim.hardware.measurements import Measurements
from analogsim.seeding import Purpose, make_generator, time_key
from analogsim.tiles.device_model import age_devices, exponent_seeds, program_devices


def simulate_measurements(card: str | Path | Chip, *, devices: int,
                          times_s: Sequence[float] = (), repeats: int = 1, seed: int = 0,
                          targets_uS: np.ndarray | None = None) -> Measurements:
    """Measurements a simulated chip gives: what a measurement campaign on the card's devices
    would record, drawn with :func:`~analogsim.device_model.program_devices` and
    :func:`~analogsim.device_model.age_devices`.

    Each device is programmed once; ``programmed_uS`` is its read at t_inference = 0 (the first
    read, at t0: drift none, read noise at t0 included), and each later read at ``t`` is an
    independent ``age_devices(t)`` (drift from the programmed state plus a fresh draw of the
    accumulated read noise), ``repeats`` times per time.

    Args:
        card: a card name, path or :class:`~analogsim.cards.Chip`.
        devices: number of devices.
        times_s: times of the later reads, s after the first read.
        repeats: reads per device at each time.
        seed: every draw derives from it (targets, programming, each read).
        targets_uS: target conductances (µS, one per device); default uniform in
            [g_min, g_max] of the card.

    Returns:
        Measurements whose targets are the card's target conductances (on its levels, if it has
        any), devices numbered 0…devices−1.
    """
    chip = load_chip(card)
    cond = chip.conductance
    span = cond.g_max_uS - cond.g_min_uS
    if targets_uS is None:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(Purpose.PROGRAM,)))
        targets_uS = rng.uniform(cond.g_min_uS, cond.g_max_uS, devices)
    fraction = (np.asarray(targets_uS, dtype=np.float64) - cond.g_min_uS) / span
    w = fraction if cond.pair == "differential" else 2 * fraction - 1  # device 0 holds g_T
    programmed = program_devices(chip, torch.tensor(w, dtype=torch.float32)[None, :],
                                 [make_generator(seed, Purpose.PROGRAM, 0)],
                                 exponent_seeds(seed, 0, [0]))

    def read(t: float, repeat: int) -> np.ndarray:
        generator = make_generator(seed, Purpose.DRIFT, time_key(t), repeat)
        return age_devices(chip, programmed, t, [generator])[0, 0, 0].double().numpy()

    first = read(0.0, 0)
    reads = [(t, read(float(t), r)) for t in times_s for r in range(1, repeats + 1)]
    count = len(reads)
    return Measurements(
        source=f"simulated from card {chip.name!r}, seed {seed}",
        device=np.arange(devices).astype(str),
        target_uS=programmed.g_target[0, 0].double().numpy(), programmed_uS=first,
        read_device=np.tile(np.arange(devices), count),
        time_s=np.repeat([float(t) for t, _ in reads], devices),
        conductance_uS=np.concatenate([g for _, g in reads]) if reads else np.empty(0))
