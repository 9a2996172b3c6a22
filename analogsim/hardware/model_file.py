"""Model files: a trained model with everything needed to put it on a chip again.

``torch.save`` of a dict (read back with ``weights_only=True``)::

    {"format": "analogsim-model", "format_version": 1,
     "model": "mlp", "options": {...},            # analogsim.models.create(model, **options)
     "state_dict": {...},                         # the trained weights
     "card": "<TOML>",                            # the device card it is meant for
     "dataset": "digits", "data_seed": 0}         # the test data to evaluate it on
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from analogsim import models
from analogsim.cards import Chip, chip_from_toml
from analogsim.errors import DataError, MissingDataFileError, require_file
from analogsim.tensor_files import load_tensor_file

MODEL_FORMAT = "analogsim-model"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelFile:
    """A model file read back: the digital model, its card and its data set."""

    model: nn.Module
    name: str
    options: dict[str, Any]
    chip: Chip
    dataset: str
    data_seed: int


def save_model_file(path: str | Path, model: nn.Module, name: str, options: dict[str, Any],
                    chip: Chip, dataset: str, data_seed: int = 0) -> None:
    """Write a model file (see the module docstring)."""
    torch.save({"format": MODEL_FORMAT, "format_version": FORMAT_VERSION, "model": name,
                "options": dict(options), "state_dict": model.state_dict(),
                "card": chip.to_toml(), "dataset": dataset, "data_seed": data_seed}, path)


def load_model_file(path: str | Path) -> ModelFile:
    """Read a model file; pickled code in it is refused unread (``weights_only=True``).

    Raises:
        DataError: missing, unreadable, or not an analogsim model file.
    """
    path = Path(path)
    require_file(path, "model file", DataError, MissingDataFileError)
    content = load_tensor_file(path, str(path), "a model file written by save_model_file",
                               DataError)
    if not isinstance(content, dict) or content.get("format") != MODEL_FORMAT:
        raise DataError(f"{path}: not an analogsim model file (expected a dict with format "
                        f"{MODEL_FORMAT!r}; write one with save_model_file)")
    model = models.create(content["model"], **content["options"])
    model.load_state_dict(content["state_dict"])
    return ModelFile(model.eval(), content["model"], content["options"],
                     chip_from_toml(content["card"], f"{path} card"), content["dataset"],
                     int(content["data_seed"]))
