"""Analog recurrent layers: ``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` with their matrices on tiles.

(To be written: issue 18.)
"""

from __future__ import annotations

from torch import nn


class AnalogLSTM(nn.Module):
    """``nn.LSTM`` on analog tiles."""


class AnalogGRU(nn.Module):
    """``nn.GRU`` on analog tiles."""


class AnalogRNN(nn.Module):
    """``nn.RNN`` on analog tiles."""
