"""The models an experiment measures: trained from the spec's seed, or loaded from a file.

A training writes its per-epoch history to ``/runs/train_<label>_seed<k>`` of the results
file and a checkpoint beside it after every epoch, so an interrupted run resumes where it
stopped instead of starting over.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from analogsim import datasets, models
from analogsim.conversion import convert, to_digital
from analogsim.errors import SpecError
from analogsim.experiments.spec_fields import ModelSetup
from analogsim.results import ResultsWriter
from analogsim.tensor_files import load_tensor_file
from analogsim.train import Method, Standard, TrainingConfig, fit
from analogsim.train.trainer import TrainingHistory, create_history_run


def load_data(setup: ModelSetup) -> datasets.DataSplit:
    """The data set the setup names."""
    return datasets.load(setup.dataset, seed=setup.data_seed, root=setup.data_root)


def _load_weights(model: nn.Module, path: str) -> None:
    state = load_tensor_file(path, f"model.checkpoint {path}",
                             "a state_dict saved with torch.save", SpecError)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # an analogsim training checkpoint
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise SpecError(f"model.checkpoint {path}: not a state_dict of this model "
                        f"({lines[-1] if lines else type(error).__name__})") from None


def trained_model(
    setup: ModelSetup,
    seed: int,
    data: datasets.DataSplit,
    writer: ResultsWriter,
    checkpoints: Path,
    *,
    method: Method | None = None,
    label: str = "model",
    train_chip: str | None = None,
    prepare: Callable[[nn.Module], None] | None = None,
    record_history: bool = True,
    progress: bool = False,
) -> tuple[nn.Module, TrainingHistory | None]:
    """The digital model of one seed: loaded from ``setup.checkpoint`` or trained.

    Args:
        setup: data, model and training of the spec.
        seed: the training seed: the weight initialisation (torch's global generator, which
            the runner owns), shuffling and the method's noise.
        data: the data set (from :func:`load_data`).
        writer: the results file, for the training history.
        checkpoints: folder of the training checkpoints.
        method: the training method (default :class:`Standard`).
        label: names the history run and the checkpoint, with the seed.
        train_chip: train through this card's tiles (hardware-aware training).
        prepare: called on the model before training, e.g. to insert noise operators.
        record_history: write the per-epoch history run (leave it out for the many small
            trainings of a grid; the checkpoint still makes them resumable).
        progress: show tqdm bars.

    Returns:
        The model in eval mode, and its history (None when loaded from a file).
    """
    torch.manual_seed(seed)
    model = models.create(setup.model, **setup.model_options)
    if setup.checkpoint is not None:
        _load_weights(model, setup.checkpoint)
        if prepare is not None:
            prepare(model)
        return model.eval(), None
    if setup.training is None:
        raise SpecError("the spec gives neither [training] nor model.checkpoint")
    if train_chip is not None:
        model = convert(model, train_chip)
    if prepare is not None:
        prepare(model)
    config = TrainingConfig(**{**setup.training.__dict__, "seed": seed})
    method = method or Standard()
    name = f"train_{label}_seed{seed}"
    run = create_history_run(writer, name, config, method) if record_history else None
    checkpoints.mkdir(parents=True, exist_ok=True)
    history = fit(model, data, method, config, run=run, checkpoint=checkpoints / f"{name}.pt",
                  progress=progress)
    return (to_digital(model) if train_chip is not None else model).eval(), history
