"""The reference model of the demo, the cross-checks and the benchmarks: a digits MLP."""

from __future__ import annotations

from torch import nn

from analogsim import datasets, models
from analogsim.datasets import DataSplit
from analogsim.seeding import global_rng_seeded
from analogsim.train.methods import Standard
from analogsim.train.trainer import TrainingConfig, fit


def trained_digits_mlp(
    seed: int = 0, epochs: int = 40, hidden: tuple[int, ...] = (64, 64), progress: bool = False
) -> tuple[nn.Module, DataSplit]:
    """An MLP (64-…-10) trained on scikit-learn's digits with Adam (lr 0.01, batch 64).

    The weight initialisation draws from torch's global generator seeded with ``seed``
    (:func:`~analogsim.seeding.global_rng_seeded`); the caller's generator state is left as
    it was.

    Returns:
        The trained model (eval mode) and the digits split it was trained on.
    """
    with global_rng_seeded(seed):
        data = datasets.load("digits", seed=seed)
        model = models.create("mlp", in_features=data.input_shape[0], hidden=hidden,
                              num_classes=data.num_classes)
        config = TrainingConfig(epochs=epochs, batch_size=64, optimizer="adam",
                                learning_rate=1e-2, weight_decay=0.0, seed=seed)
        fit(model, data, Standard(), config, progress=progress)
    return model, data
