"""One trainer for digital and converted models: epochs of a :class:`Method`, reported and
checkpointed.

Every epoch it records the mean training loss, training and test accuracy, the mean ‖∇L‖ of
the gradient the updates used (the vanishing-gradient diagnostic of METHODS.md §7) and the wall
time (:class:`EpochMetrics`); it hands them to the caller's ``on_epoch`` callback (the
experiment engine writes them to its results file) and to a checkpoint, so a killed training
resumes from its last finished epoch with the same numbers. The trainer writes no results file.
"""

from __future__ import annotations

import logging
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from analogsim.datasets import DataSplit, batches, random_crop, random_flip
from analogsim.errors import UsageError
from analogsim.evaluation import evaluate, prediction_cross_entropy
from analogsim.seeding import Purpose, make_generator
from analogsim.train.methods import Method, Standard, TrainingContext

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class TrainingConfig:
    """How to train (the method aside). Defaults: S0's base recipe (METHODS.md §2).

    Attributes:
        epochs: number of epochs.
        batch_size: samples per step.
        optimizer: ``"sgd"`` or ``"adam"``.
        learning_rate, momentum, weight_decay: the optimiser's (momentum for SGD only).
        lr_schedule: ``"constant"`` (S0: no decay) or ``"cosine"`` (Walking Noise).
        augment: any of ``"crop"`` (random crop, zero padding 4) and ``"flip"``.
        seed: seed of initial shuffling, augmentation and method noise.
    """

    epochs: int
    batch_size: int = 128
    optimizer: Literal["sgd", "adam"] = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-5
    lr_schedule: Literal["constant", "cosine"] = "constant"
    augment: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise UsageError(f"epochs and batch_size must be ≥ 1, got epochs={self.epochs!r}, "
                             f"batch_size={self.batch_size!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise UsageError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise UsageError(f"lr_schedule must be 'constant' or 'cosine', got "
                             f"{self.lr_schedule!r}")
        unknown = set(self.augment) - {"crop", "flip"}
        if unknown:
            raise UsageError(f"augment takes 'crop' and 'flip', got {sorted(unknown)}")


@dataclass(frozen=True)
class EpochMetrics:
    """What one finished epoch measured.

    Attributes:
        epoch: the epoch's index, from 0.
        loss: mean training loss over the epoch's predictions (cross-entropy, nats; per
            sample, or per token for a language model).
        train_accuracy: fraction of training predictions right during the epoch (samples
            classified, or next tokens for a language model).
        test_accuracy: fraction of the test split's predictions right after the epoch.
        gradient_norm: mean ‖∇L‖ of the gradients the updates used (dimensionless).
        seconds: wall time of the epoch, evaluation included (s).
    """

    epoch: int
    loss: float
    train_accuracy: float
    test_accuracy: float
    gradient_norm: float
    seconds: float

    def values(self) -> dict[str, float]:
        """The metrics by name (every attribute but ``epoch``)."""
        return {name: getattr(self, name) for name in HISTORY_FIELDS}


@dataclass
class TrainingHistory:
    """Per-epoch records (lists of floats, one entry per finished epoch; units as in
    :class:`EpochMetrics`)."""

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    gradient_norm: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def append(self, metrics: EpochMetrics) -> None:
        """Record one more finished epoch."""
        for name, value in metrics.values().items():
            getattr(self, name).append(value)

    def __getitem__(self, epoch: int) -> EpochMetrics:
        """The metrics of one finished epoch."""
        return EpochMetrics(epoch, **{name: getattr(self, name)[epoch]
                                      for name in HISTORY_FIELDS})


HISTORY_FIELDS = tuple(f.name for f in fields(TrainingHistory))


def _optimizer(model: nn.Module, method: Method, config: TrainingConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return method.make_optimizer(model, torch.optim.SGD, lr=config.learning_rate,
                                     momentum=config.momentum,
                                     weight_decay=config.weight_decay)
    return method.make_optimizer(model, torch.optim.Adam, lr=config.learning_rate,
                                 weight_decay=config.weight_decay)


def _augment(x: torch.Tensor, data: DataSplit, config: TrainingConfig,
             generator: torch.Generator) -> torch.Tensor:
    if "crop" in config.augment:
        x = random_crop(x, generator=generator, padding=4, fill=data.black)
    if "flip" in config.augment:
        x = random_flip(x, generator=generator)
    return x


def _save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                     generator: torch.Generator, history: TrainingHistory,
                     config: TrainingConfig) -> None:
    """Write atomically: a kill during the write leaves the previous checkpoint."""
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(), "history": asdict(history),
                "config": repr(config)}, partial)
    os.replace(partial, path)


def fit(
    model: nn.Module,
    data: DataSplit,
    method: Method | None = None,
    config: TrainingConfig | None = None,
    *,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = False,
) -> TrainingHistory:
    """Train ``model`` in place on ``data.x_train`` with ``method``; evaluate on the test split.

    Args:
        model: digital or converted (a converted model trains through its tiles).
        data: the data set.
        method: a :class:`Method` (default :class:`Standard`).
        config: a :class:`TrainingConfig` (default 10 epochs of S0's recipe).
        on_epoch: called with the :class:`EpochMetrics` of every epoch of the returned
            history, in order: first those a resumed checkpoint holds, then each one as it
            finishes (before its checkpoint is written).
        checkpoint: a file written after every epoch; if it exists when ``fit`` starts, the
            training resumes after its last epoch (same config required).
        progress: show a tqdm bar over epochs.

    Returns:
        The history of every epoch, resumed ones included.
    """
    method = method or Standard()
    config = config or TrainingConfig(epochs=10)
    generator = make_generator(config.seed, Purpose.TRAINING)
    optimizer = _optimizer(model, method, config)
    history = TrainingHistory()
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True)
        if state["config"] != repr(config):
            raise UsageError(f"checkpoint {checkpoint} was written by another training config "
                             f"({state['config']}); remove it or use another path")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        history = TrainingHistory(**state["history"])
        log.info("resuming %s after epoch %d", checkpoint, history.epochs)
        if on_epoch is not None:  # the epochs trained before the interruption
            for epoch in range(history.epochs):
                on_epoch(history[epoch])
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(
        getattr(optimizer, "base_optimizer", optimizer), T_max=config.epochs)
        if config.lr_schedule == "cosine" else None)
    if scheduler is not None and history.epochs:
        with warnings.catch_warnings():  # catching up after a resume, before any step
            warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()`"),
                                    UserWarning)
            for _ in range(history.epochs):
                scheduler.step()
    ctx = TrainingContext(model=model, loss_fn=prediction_cross_entropy,
                          optimizer=optimizer, generator=generator,
                          step_index=history.epochs * -(-len(data.x_train) // config.batch_size))
    for epoch in tqdm(range(history.epochs, config.epochs), desc=method.name,
                      initial=history.epochs, total=config.epochs, leave=False,
                      disable=not progress or history.epochs >= config.epochs):
        started = time.perf_counter()
        model.train()
        ctx.epoch = epoch
        method.start_epoch(ctx, epoch)
        total_loss, correct, norms = 0.0, 0, []
        for x, y in batches(data.x_train, data.y_train, config.batch_size, shuffle=True,
                            generator=generator):
            x = _augment(x, data, config, generator)
            outcome = method.step(ctx, x, y)
            ctx.step_index += 1
            total_loss += outcome.loss * y.numel()  # per prediction: sample or token
            correct += outcome.correct
            norms.append(outcome.gradient_norm)
        if scheduler is not None:
            scheduler.step()
        samples = data.y_train.numel()
        test = evaluate(model, (data.x_test, data.y_test), seed=config.seed,
                        unprogrammed="live")  # hardware-aware training: the live weights
        metrics = EpochMetrics(epoch, loss=total_loss / samples,
                               train_accuracy=correct / samples, test_accuracy=test.mean,
                               gradient_norm=float(np.mean(norms)),
                               seconds=time.perf_counter() - started)
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(metrics)
        if checkpoint is not None:
            _save_checkpoint(checkpoint, model, optimizer, generator, history, config)
        log.debug("%s", metrics)
    model.eval()
    return history

