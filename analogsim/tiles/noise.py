"""Noise drawn at every read: per-read weight noise and output noise, in output space.

Additive per-read weight noise of std σ_a gives output noise of variance σ_a²·Σ_j x_j², and
conductance-proportional noise of relative std σ_m gives σ_m²·(Q x²) with Q the conductance
square weights (shared/DESIGN.md, "Noise per read"); output noise adds its own variance. So a
tile draws one normal per output instead of one per weight. One-shot effects (programming,
drift, faults) are drawn in :mod:`analogsim.tiles.programmed`, never here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from analogsim.cards import Chip
from analogsim.physics import periphery
from analogsim.tiles import device_model

if TYPE_CHECKING:
    from analogsim.tiles.mvm_ops import MvmOps


@dataclass(frozen=True)
class ReadNoise:
    """Variances of the noise drawn at every read, in units of a full-scale device current².

    Attributes:
        additive_variance: σ_a² of the per-read weight noise.
        multiplicative_variance: σ_m² of the conductance-proportional per-read noise.
        output_variance: variance of the noise added to each output before the ADC.
    """

    additive_variance: float
    multiplicative_variance: float
    output_variance: float

    @classmethod
    def from_chip(cls, chip: Chip) -> ReadNoise:
        """The per-read noise of ``chip``'s [per_read_noise] and [output_noise] sections."""
        return cls(device_model.additive_per_read_variance(chip),
                   chip.per_read_noise.multiplicative_std**2, chip.output_noise.std**2)

    @property
    def drawn(self) -> bool:
        """Whether any noise is drawn at a forward."""
        return (self.additive_variance > 0 or self.multiplicative_variance > 0
                or self.output_variance > 0)

    def output_std(self, codes: torch.Tensor, q: torch.Tensor | None, ops: MvmOps,
                   c0: int, c1: int, input_step: float, output_step: float
                   ) -> torch.Tensor | float | None:
        """Std of the noise of each output of input channels [c0, c1), in ADC codes.

        Args:
            codes: DAC codes (instance-folded batch).
            q: (K, out, rows) conductance-square weights of the chunk, or None.
            ops: the layer type's MVM operations.
            input_step, output_step: the DAC and ADC steps.

        Returns:
            A tensor broadcastable to the output, one float for all outputs, or None when no
            noise is drawn.
        """
        if not self.drawn:
            return None
        step_sq = input_step**2
        additive = self.additive_variance
        variance = periphery.per_read_output_variance(
            ops.square_sum(codes.detach() ** 2, c0, c1) * step_sq if additive > 0 else None,
            ops.mvm(codes.detach() ** 2, q) * step_sq if q is not None else None,
            additive,
            self.multiplicative_variance,
        )
        if isinstance(variance, torch.Tensor):
            return torch.sqrt(variance + self.output_variance) / output_step
        if self.output_variance > 0:
            return math.sqrt(self.output_variance) / output_step
        return None
