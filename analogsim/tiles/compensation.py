"""Drift compensation: the per-output read-out that measures how far a tile has drifted.

Right after programming and at each drift time, known inputs are run through the tile — the
one-hot vectors (``readout = "identity"``) or one all-ones vector (``"ones"``), at the DAC level
of a full-scale input — and mean |y| is recorded per output (``per_column``) or per tile
(``global``). The compensation factor is the reference read-out over today's
(:func:`analogsim.physics.periphery.drift_compensation_factor`). With ``readout_noise``, the
read-out sees the tile's per-read and output noise and its ADC; with bit slicing, in every
cycle and weight slice (:meth:`analogsim.tiles.slicing.Slices.readout`).
"""

from __future__ import annotations

import math

import torch

from analogsim.cards import Chip
from analogsim.physics import periphery
from analogsim.physics.sampling import standard_normal
from analogsim.tiles.converters import Converters
from analogsim.tiles.layout import TileLayout
from analogsim.tiles.noise import ReadNoise
from analogsim.tiles.slicing import Slices


def compensation_readout(chip: Chip, layout: TileLayout, converters: Converters,
                         noise: ReadNoise, w_effective: torch.Tensor,
                         q_effective: torch.Tensor | None,
                         generators: list[torch.Generator]) -> torch.Tensor:
    """mean |y| of the read-out inputs per (instance, row chunk, output): (K, chunks, out).

    Args:
        chip: the card (its [drift_compensation] and [adc] sections).
        layout: the tile layout.
        converters: the DAC level of a full-scale input.
        noise: the noise drawn at every read (used with ``readout_noise``).
        w_effective: (K, out, rows) normalised weights the MVM sees.
        q_effective: (K, out, rows) conductance-square weights, or None.
        generators: one per instance, for the read-out's noise.
    """
    comp = chip.drift_compensation
    k_count = w_effective.shape[0]
    level = converters.full_scale_input
    slices = Slices.from_chip(chip)
    readouts = []
    for a, b in layout.row_chunks:
        w = w_effective[:, :, a:b]  # (K, out, rows_j): one column per one-hot
        if slices is not None:  # every cycle and weight slice read and converted
            q = None if q_effective is None else q_effective[:, :, a:b]
            readouts.append(per_tile(slices.readout(chip, converters, noise, w, q, generators)
                                     .abs().mean(dim=-1), layout, comp.method))
            continue
        if level != 1.0:
            w = w * level
        if comp.readout == "ones":
            w = w.sum(dim=-1, keepdim=True)
        if comp.readout_noise:
            inputs = 1 if comp.readout == "identity" else b - a
            variance = noise.output_variance + noise.additive_variance * inputs * level**2
            drawn = standard_normal(w.shape, generators)
            if q_effective is not None:
                q = q_effective[:, :, a:b] * level**2
                q = q.sum(dim=-1, keepdim=True) if comp.readout == "ones" else q
                w = torch.addcmul(w, torch.sqrt(variance + noise.multiplicative_variance * q),
                                  drawn)
            else:
                w = drawn.mul_(math.sqrt(variance)).add_(w)
            if chip.adc.bits is not None:
                w = periphery.quantise(w, chip.adc.bits, chip.adc.bound)
        readouts.append(per_tile(w.abs().mean(dim=-1), layout, comp.method))  # (K, out)
    return torch.stack(readouts, dim=1).reshape(k_count, len(layout.row_chunks), -1)


def per_tile(per_output: torch.Tensor, layout: TileLayout, method: str) -> torch.Tensor:
    """Read-outs (K, out) of one row chunk as compensation uses them: per output
    (``per_column``), or their mean over each column group (``global``)."""
    if method == "global":
        if len(layout.column_groups) == 1:
            per_output = per_output.mean(dim=1, keepdim=True).expand_as(per_output)
        else:
            for c, d in layout.column_groups:
                per_output[:, c:d] = per_output[:, c:d].mean(dim=1, keepdim=True)
    return per_output
