"""The reference model of the demo, the cross-checks and the benchmarks: a digits MLP."""

from __future__ import annotations

import torch
from torch import nn

from analogsim import datasets, models
from analogsim.datasets import DataSplit
from analogsim.train.methods import Standard
from analogsim.train.trainer import TrainingConfig, fit


def trained_digits_mlp(
    seed: int = 0, epochs: int = 40, hidden: tuple[int, ...] = (64, 64), progress: bool = False
) -> tuple[nn.Module, DataSplit]:
    """An MLP (64-…-10) trained on scikit-learn's digits with Adam (lr 0.01, batch 64).

    Seeds torch's global generator with ``seed`` for the weight initialisation (this function
    is a script-level entry point).

    Returns:
        The trained model (eval mode) and the digits split it was trained on.
    """
    torch.manual_seed(seed)
    data = datasets.load("digits", seed=seed)
    model = models.create("mlp", in_features=data.input_shape[0], hidden=hidden,
                          num_classes=data.num_classes)
    config = TrainingConfig(epochs=epochs, batch_size=64, optimizer="adam", learning_rate=1e-2,
                            weight_decay=0.0, seed=seed)
    fit(model, data, Standard(), config, progress=progress)
    return model, data
