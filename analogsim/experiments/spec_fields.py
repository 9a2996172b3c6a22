"""The pieces every experiment spec shares: validated sections and values.

Each helper checks one key or section of a spec's TOML and raises
:class:`~analogsim.errors.SpecError` naming the key, the value and what was expected. The
sections ``[data]``, ``[model]`` and ``[training]`` become one :class:`ModelSetup`: how to get
the trained model an experiment measures (train it, or load a checkpoint).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analogsim import datasets, models
from analogsim.errors import MissingSpecFileError, SpecError, require_file
from analogsim.train import TrainingConfig
from analogsim.units import TIME_RANGE, is_valid_time


@dataclass(frozen=True)
class ModelSetup:
    """The data set and the model of an experiment, and how the model gets its weights.

    Attributes:
        dataset: a name of :func:`analogsim.datasets.list_datasets`.
        data_seed: seed of the train/test split.
        data_root: folder of user-supplied data files (mnist, cifar10, svhn), or None.
        model: a name of :func:`analogsim.models.list_models`.
        model_options: keyword arguments of the model's constructor.
        training: how to train it; None when ``checkpoint`` gives the weights.
        seeds: training seeds, one model each (initialisation, shuffling, noise).
        checkpoint: a saved ``state_dict`` (or analogsim training checkpoint) to load
            instead of training, read with ``torch.load(weights_only=True)``.
        data_options: options of a text data set (``[data] options``, e.g.
            ``sequence_length``), passed to :func:`analogsim.datasets.load`.
    """

    dataset: str
    data_seed: int
    data_root: str | None
    model: str
    model_options: dict[str, Any]
    training: TrainingConfig | None
    seeds: tuple[int, ...]
    checkpoint: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)


def table(data: dict[str, Any], key: str, source: str, required: bool = True) -> dict:
    """The section ``[key]`` of a spec, {} when optional and absent."""
    value = data.get(key)
    if value is None:
        if required:
            raise SpecError(f"{source}: the section [{key}] is missing")
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{source}: [{key}] must be a table, got {value!r}")
    return value


def check_keys(section: dict[str, Any], allowed: set[str], where: str) -> None:
    """Fail on the first key of ``section`` that is not in ``allowed``."""
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}; expected one of {sorted(allowed)}")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number_list(value: Any, where: str) -> tuple[float, ...]:
    """A number or a non-empty list of numbers, or a spaced grid as a table:
    ``{ logspace = [start_exp, stop_exp, n] }`` (10^start … 10^stop, n points) or
    ``{ linspace = [start, stop, n] }``."""
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in ("logspace", "linspace"):
            raise SpecError(f"{where}: a grid table is {{ logspace = [a, b, n] }} or "
                            f"{{ linspace = [a, b, n] }}, got {value!r}")
        kind, bounds = next(iter(value.items()))
        if not (isinstance(bounds, list) and len(bounds) == 3 and all(map(is_number, bounds))
                and isinstance(bounds[2], int) and bounds[2] >= 1):
            raise SpecError(f"{where}.{kind} must be [start, stop, points ≥ 1], got {bounds!r}")
        grid = np.logspace if kind == "logspace" else np.linspace
        return tuple(float(v) for v in grid(bounds[0], bounds[1], bounds[2]))
    values = value if isinstance(value, list) else [value]
    if not values or not all(map(is_number, values)):
        raise SpecError(f"{where} must be a number or a non-empty list of numbers, got "
                        f"{value!r}")
    return tuple(float(v) for v in values)


def time_list(value: Any, where: str) -> tuple[float, ...]:
    """Times after programming: a :func:`number_list` of times in [0, ``MAX_TIME_S``] s."""
    times = number_list(value, where)
    if not all(map(is_valid_time, times)):
        raise SpecError(f"{where} must be a non-empty list of times, each {TIME_RANGE}; got "
                        f"{list(times)}")
    return times


def seed_list(value: Any, where: str) -> tuple[int, ...]:
    """A non-empty list of non-negative integer seeds."""
    if not isinstance(value, list) or not value or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        raise SpecError(f"{where} must be a non-empty list of non-negative integers, got "
                        f"{value!r}")
    return tuple(value)


def positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{where} must be a positive integer, got {value!r}")
    return value


def model_setup(data: dict[str, Any], source: str, *, one_model: bool = False) -> ModelSetup:
    """Validate ``[data]``, ``[model]`` and ``[training]`` into a :class:`ModelSetup`.

    ``[training]`` takes the fields of :class:`~analogsim.train.TrainingConfig` (but ``seed``)
    and ``seeds``; it may be left out when ``[model] checkpoint`` names the weights.

    Args:
        one_model: the experiment measures one model: ``seeds`` must have one entry.
    """
    data_table = table(data, "data", source)
    check_keys(data_table, {"dataset", "seed", "root", "options"}, f"{source}: [data]")
    dataset = data_table.get("dataset")
    if dataset not in datasets.list_datasets():
        raise SpecError(f"{source}: data.dataset must be one of {datasets.list_datasets()}, "
                        f"got {dataset!r}")
    data_options = data_table.get("options", {})
    if not isinstance(data_options, dict):
        raise SpecError(f"{source}: data.options must be a table, got {data_options!r}")
    model_table = table(data, "model", source)
    check_keys(model_table, {"name", "options", "checkpoint"}, f"{source}: [model]")
    if model_table.get("name") not in models.list_models():
        raise SpecError(f"{source}: model.name must be one of {models.list_models()}, got "
                        f"{model_table.get('name')!r}")
    options = model_table.get("options", {})
    if not isinstance(options, dict):
        raise SpecError(f"{source}: model.options must be a table, got {options!r}")
    checkpoint = model_table.get("checkpoint")
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_absolute():  # relative to the spec file
            path = Path(source).parent / path
        if not path.is_file():
            raise SpecError(f"{source}: model.checkpoint {checkpoint!r} is not a file "
                            f"(looked for {path})")
        checkpoint = str(path)
    training_table = dict(table(data, "training", source, required=checkpoint is None))
    seeds = seed_list(training_table.pop("seeds", [0]), f"{source}: training.seeds")
    if (one_model or checkpoint is not None) and len(seeds) != 1:
        why = ("this experiment measures one model" if one_model else
               "model.checkpoint gives one trained model")
        raise SpecError(f"{source}: {why}; training.seeds must have one entry, got "
                        f"{list(seeds)!r}")
    training = None
    if checkpoint is None:
        if "augment" in training_table:
            training_table["augment"] = tuple(training_table["augment"])
        allowed = set(TrainingConfig.__dataclass_fields__) - {"seed"}
        check_keys(training_table, allowed, f"{source}: [training]")
        try:
            training = TrainingConfig(**training_table)
        except (TypeError, ValueError) as error:
            raise SpecError(f"{source}: [training]: {error}") from None
    return ModelSetup(
        dataset=dataset, data_seed=int(data_table.get("seed", 0)),
        data_root=data_table.get("root"), model=model_table["name"],
        model_options=dict(options), training=training, seeds=seeds,
        checkpoint=checkpoint, data_options=dict(data_options),
    )


def read_toml(path: str | Path) -> tuple[str, dict[str, Any]]:
    """The text of a spec file and its parsed TOML."""
    path = Path(path)
    require_file(path, "spec file", SpecError, MissingSpecFileError)
    text = path.read_text(encoding="utf-8")
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path}: not valid TOML ({error})") from None
