"""Plain supervised training of a classifier, digital or converted (hardware-aware)."""

from __future__ import annotations

import logging

import torch
from torch import nn
from tqdm.auto import tqdm

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
