"""Exact products of DAC codes with a tile matrix on the CPU's int8 matrix units.

Behind a DAC of at most 8 bits, a tile's inputs are integer codes in [−127, 127]. Their
product with a float matrix W (out, rows) can then run in integer arithmetic: each row i of W
is written as three signed int8 digit planes,

    W_ij ≈ s_i (P0_ij + P1_ij / 128 + P2_ij / 128²),   s_i = max_j |W_ij| / 127,

with |P0| ≤ 127 and |P1|, |P2| ≤ 64. Each plane's product with the codes is an exact int32
matrix product (``torch._int_mm``, which Intel AMX runs at several times the float32 rate), and
the three are combined in float32. The planes hold W_ij to within s_i / (2·128²) ≈ 2.4e-7 ·
max_j |W_ij|, and the result differs from a float32 matmul by no more than that error summed
over the row plus float32 rounding of the combination (tested against float64). They take 3
bytes per weight and instance, kept while the tile's programmed state is unchanged.

It pays only where the matrix product dominates the per-output work of the combination: on a
2-core Sapphire Rapids it takes 0.5–0.9× the float32 time with at least 512 rows and 2^16
outputs per instance, and up to 2.5× with 256 rows or few outputs
(``benchmarks/bench_integer_mvm.py`` prints the grid). :func:`worth_it` holds that rule.

A card's ``mapping.integer_products`` says whether its tiles use this path: absent, where the
CPU has AMX tiles (:func:`amx_available`); ``true`` or ``false`` to force it. Results differ
from float32 products in the last bits, so ADC codes near a rounding edge can differ between
machines with and without AMX.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

#: Largest |DAC code| the int8 products take (a DAC of at most 8 bits).
MAX_CODE = 127
#: Digit base of the planes after the first: residuals are scaled by it, so |P1|, |P2| ≤ 64.
BASE = 128
#: Smallest rows (per row chunk) and outputs (batch × out per instance) where it pays.
MIN_ROWS = 512
MIN_OUTPUTS = 2**16


@functools.cache
def amx_available() -> bool:
    """Whether the CPU has AMX tiles and torch's int8 product works (checked on a tiny one)."""
    has_amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if has_amx is None or not has_amx() or not hasattr(torch, "_int_mm"):
        return False
    a = torch.arange(-64, 64, dtype=torch.int8).reshape(16, 8)
    try:
        product = torch._int_mm(a, a[:8])
    except RuntimeError:
        return False
    return torch.equal(product.long(), a.long() @ a[:8].long())


@dataclass(frozen=True)
class DigitPlanes:
    """A float matrix (out, rows) as three int8 digit planes and their per-output scales.

    Attributes:
        planes: P0, P1, P2, each (rows, out), laid out column-major for ``torch._int_mm``.
        scales: s, s/128, s/128², each (out,).
    """

    planes: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    scales: tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def digit_planes(w: torch.Tensor) -> DigitPlanes:
    """The digit planes of a finite float matrix ``w`` (out, rows).

    Each residual ``u − round(u)`` is exact in float32 and scaling it by 128 is exact, so the
    only representation error is the rounding of the last plane (at most half a unit of it).
    """
    top = w.abs().amax(dim=1)
    scale = torch.where(top > 0, top / MAX_CODE, torch.ones_like(top))
    u = w / scale.unsqueeze(1)
    planes = []
    for _ in range(3):
        digits = torch.round(u)
        planes.append(digits.to(torch.int8).t())  # (rows, out) view of an (out, rows) block
        u = (u - digits) * BASE
    return DigitPlanes(tuple(planes), (scale, scale / BASE, scale / BASE**2))


def product(codes: torch.Tensor, weights: DigitPlanes, out: torch.Tensor) -> torch.Tensor:
    """codes @ W.T into ``out`` (float32): ``codes`` (N, rows) int8, ``out`` (N, out)."""
    high, middle, low = (torch._int_mm(codes, plane) for plane in weights.planes)
    out.copy_(high).mul_(weights.scales[0])
    out.addcmul_(middle.float(), weights.scales[1])
    return out.addcmul_(low.float(), weights.scales[2])


def worth_it(batch: int, rows: int, out_features: int) -> bool:
    """Whether integer products beat float32 for ``batch`` input vectors of one instance."""
    return rows >= MIN_ROWS and batch * out_features >= MIN_OUTPUTS


def applies(codes: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether :func:`matmul` should multiply these float32 CPU codes by w (K, out, rows)."""
    k_count, out, rows = w.shape
    return (codes.dtype == torch.float32 and codes.device.type == "cpu"
            and worth_it(codes.numel() // (k_count * rows), rows, out))


def matmul(codes: torch.Tensor, planes: list[DigitPlanes]) -> torch.Tensor:
    """codes_k @ W_k.T for every instance k, in float32.

    Args:
        codes: integer DAC codes in [−127, 127] (float), instance-folded (K·B, ..., rows).
        planes: the digit planes of each instance's matrix W_k (out, rows); compute them once
            per matrix with :func:`digit_planes` and keep them while it is in use.

    Returns:
        (K·B, ..., out).
    """
    k_count = len(planes)
    rows, out = planes[0].planes[0].shape
    by_instance = codes.to(torch.int8).reshape(k_count, -1, rows)
    y = torch.empty(k_count, by_instance.shape[1], out, dtype=torch.float32)
    for k in range(k_count):
        product(by_instance[k], planes[k], y[k])
    return y.reshape(*codes.shape[:-1], out)
