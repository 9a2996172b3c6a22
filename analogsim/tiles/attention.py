"""Analog multi-head attention: ``nn.MultiheadAttention`` with its projections on tiles.

(To be written: issue 18.)
"""

from __future__ import annotations

from torch import nn


class AnalogMultiheadAttention(nn.Module):
    """``nn.MultiheadAttention`` whose q, k, v and output projections are analog layers."""
