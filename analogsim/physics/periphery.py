"""Periphery of a tile: DAC and ADC quantisation, per-read noise, drift-compensation factors.

Units follow aihwkit's analog MVM (src/aihwkit/simulator/tiles/analog_mvm.py): inputs are
scaled into ±bound before the DAC; tile outputs are in full-scale device currents, i.e. the
output of a weight at g_max driven by a full-scale input is 1.
"""

from __future__ import annotations

import torch


def quantisation_step(bits: int, bound: float) -> float:
    """Step of a converter with 2^bits − 2 steps over [−bound, bound] (aihwkit res = 1/(2^b − 2)).

    So the levels are the 2^bits − 1 multiples of the step in [−bound, bound].
    """
    return 2.0 * bound / (2**bits - 2)


def code_limit(bits: int) -> int:
    """Largest code of a converter: levels are −limit…limit times the step (2^(bits−1) − 1)."""
    return 2 ** (bits - 1) - 1


def round_and_clip(
    codes: torch.Tensor, limit: int | None, in_place: bool = False
) -> torch.Tensor:
    """Round values in units of one step to integers and clip them to ±limit.

    Gradients pass straight through (identity), so training sees the quantiser as a wire.

    Args:
        codes: values divided by the converter's step.
        limit: :func:`code_limit` of the converter; None skips the clipping (for inputs
            known to lie inside the range).
        in_place: overwrite ``codes`` (only honoured when it needs no gradient).
    """
    if not codes.requires_grad:
        target = (codes if in_place else codes.clone()).round_()
        return target if limit is None else target.clamp_(-limit, limit)
    quantised = codes.detach().round()
    if limit is not None:
        quantised = quantised.clamp_(-limit, limit)
    return codes + (quantised - codes.detach())


def quantise(x: torch.Tensor, bits: int | None, bound: float) -> torch.Tensor:
    """Round to the converter's levels and clip to ±bound; gradients pass straight through.

    Args:
        x: values in the converter's units (scaled inputs for a DAC, tile outputs for an ADC).
        bits: resolution; ``None`` means no rounding (clipping only).
        bound: clipping range.
    """
    if bits is None:
        clipped = x.clamp(-bound, bound)
        return x + (clipped - x).detach() if x.requires_grad else clipped
    step = quantisation_step(bits, bound)
    return round_and_clip(x / step, code_limit(bits), in_place=True) * step


def abs_max_scale(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """max |x| over ``dims`` (kept), with all-zero vectors given scale 1 (aihwkit ABS_MAX)."""
    if x.requires_grad:
        x = x.detach()
    # max(max x, −min x): two reductions, cheaper than writing |x| out for large inputs
    scale = torch.maximum(x.amax(dim=dims, keepdim=True), x.amin(dim=dims, keepdim=True).neg_())
    return scale.masked_fill_(scale == 0, 1.0)


def per_read_output_variance(
    input_square_sum: torch.Tensor | None,
    weighted_input_square_sum: torch.Tensor | None,
    additive_variance: float,
    multiplicative_variance: float,
) -> torch.Tensor | float:
    """Variance of the output of noise drawn per read on each weight, in output space.

    A weight noise ΔW with i.i.d. N(0, σ_a²) entries gives y-noise N(0, σ_a² ‖x‖²); a
    conductance-proportional noise with var(ΔW_ij) = σ_m² Q_ij gives N(0, σ_m² Σ_j Q_ij x_j²).
    Sampling y-noise is exact in law (Gaussian) and costs one normal per output instead of one
    per weight.

    Args:
        input_square_sum: Σ_j x_j² per output position, or None when σ_a = 0.
        weighted_input_square_sum: Σ_j Q_ij x_j² per output, or None when σ_m = 0.
        additive_variance: σ_a² in (normalised weight units)².
        multiplicative_variance: σ_m² (relative).
    """
    variance: torch.Tensor | float = 0.0
    if input_square_sum is not None and additive_variance > 0:
        variance = input_square_sum * additive_variance
    if weighted_input_square_sum is not None and multiplicative_variance > 0:
        variance = variance + weighted_input_square_sum * multiplicative_variance
    return variance


def drift_compensation_factor(
    reference: torch.Tensor, readout: torch.Tensor, floor: float = 1e-4
) -> torch.Tensor:
    """α = reference / max(readout, floor): multiplies tile outputs after drift (aihwkit GDC)."""
    return reference / readout.clamp(min=floor)
