"""The models an experiment measures: trained from the spec's seed, or loaded from a file.

A training writes its per-epoch history to ``/runs/train_<label>_seed<k>`` of the results
file (the trainer reports each epoch to :func:`trained_model`, which writes it) and a checkpoint
beside it after every epoch, so an interrupted run resumes where it stopped instead of starting
over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from torch import nn

from analogsim import datasets, models
from analogsim.conversion import convert, to_digital
from analogsim.errors import SpecError
from analogsim.experiments.spec_fields import ModelSetup
from analogsim.results import ResultsWriter, Run
from analogsim.seeding import global_rng_seeded
from analogsim.tensor_files import load_tensor_file
from analogsim.train import Method, Standard, TrainingConfig, fit
from analogsim.train.trainer import HISTORY_FIELDS, EpochMetrics, TrainingHistory

HISTORY_UNITS = {"loss": "nats", "train_accuracy": "fraction", "test_accuracy": "fraction",
                 "gradient_norm": "", "seconds": "s"}


def load_data(setup: ModelSetup) -> datasets.DataSplit:
    """The data set the setup names, with its ``[data] options`` (a text data set's).

    Raises:
        DataError: an option the data set does not take, or a bad value.
    """
    return datasets.load(setup.dataset, seed=setup.data_seed, root=setup.data_root,
                         **setup.data_options)


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


def _history_run(writer: ResultsWriter, name: str, config: TrainingConfig,
                 method: Method) -> Run:
    """The run of a training's per-epoch history: axis ``epoch``, the metrics of
    :class:`~analogsim.train.trainer.EpochMetrics`, the config and method as attributes."""
    return writer.create_run(
        name, axes={"epoch": range(config.epochs)}, metrics=HISTORY_FIELDS, units=HISTORY_UNITS,
        attrs={**{k: str(v) for k, v in asdict(config).items()}, **{
            k: str(v) for k, v in method.describe().items()}}, point_axes=1,
    )


def _write_epoch(run: Run) -> Callable[[EpochMetrics], None]:
    """The trainer's ``on_epoch`` callback that writes (and flushes) each epoch to ``run``."""
    def write(metrics: EpochMetrics) -> None:
        run.write_point((metrics.epoch,), **metrics.values())
    return write


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
        seed: the training seed: the weight initialisation (torch's global generator,
            seeded with it inside :func:`~analogsim.seeding.global_rng_seeded`, so the
            caller's generator state is left as it was), shuffling and the method's noise.
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
    with global_rng_seeded(seed):
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
        on_epoch = (_write_epoch(_history_run(writer, name, config, method))
                    if record_history else None)
        checkpoints.mkdir(parents=True, exist_ok=True)
        history = fit(model, data, method, config, on_epoch=on_epoch,
                      checkpoint=checkpoints / f"{name}.pt", progress=progress)
        return (to_digital(model) if train_chip is not None else model).eval(), history
