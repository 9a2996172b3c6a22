"""Plain supervised training of a classifier, digital or converted (hardware-aware)."""

from __future__ import annotations

import logging

import torch
from torch import nn
from tqdm.auto import tqdm

from analogsim import datasets, models
from analogsim.datasets import DataSplit
from analogsim.seeding import Purpose, make_generator

log = logging.getLogger(__name__)


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 30,
    batch_size: int = 64,
    learning_rate: float = 1e-2,
    seed: int = 0,
    progress: bool = False,
) -> list[float]:
    """Train ``model`` in place with Adam and cross-entropy on (x, y).

    A converted model trains through its tiles (live weights, periphery noise on), i.e.
    hardware-aware training. Batches are shuffled from a generator derived from ``seed``.

    Returns:
        The mean training loss of each epoch.
    """
    generator = make_generator(seed, Purpose.TRAINING)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    losses = []
    for epoch in tqdm(range(epochs), desc="train", disable=not progress, leave=False):
        order = torch.randperm(x.shape[0], generator=generator)
        total = 0.0
        for start in range(0, x.shape[0], batch_size):
            index = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
            total += loss.item() * index.numel()
        losses.append(total / x.shape[0])
        log.debug("epoch %d: loss %.4f", epoch, losses[-1])
    model.eval()
    return losses


def trained_digits_mlp(
    seed: int = 0, epochs: int = 40, hidden: tuple[int, ...] = (64, 64), progress: bool = False
) -> tuple[nn.Module, DataSplit]:
    """The reference model of the demo and the cross-checks: an MLP trained on digits.

    Seeds torch's global generator with ``seed`` for the weight initialisation (this function
    is a script-level entry point), then trains with :func:`train_classifier`.

    Returns:
        The trained model (eval mode) and the digits split it was trained on.
    """
    torch.manual_seed(seed)
    data = datasets.load("digits", seed=seed)
    model = models.create("mlp", in_features=data.input_shape[0], hidden=hidden,
                          num_classes=data.num_classes)
    train_classifier(model, data.x_train, data.y_train, epochs=epochs, seed=seed,
                     progress=progress)
    return model, data
