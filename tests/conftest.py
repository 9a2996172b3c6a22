"""Shared fixtures: small models and the digits data the tests use."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


@pytest.fixture
def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, bias=False), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.Flatten(), nn.Linear(8 * 4 * 4, 10),
    )
