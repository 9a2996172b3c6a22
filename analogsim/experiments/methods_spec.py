"""Specs of kind ``methods``: robust-training comparisons (S0 and S1).

A spec of kind ``methods``::

    [experiment]
    name = "s0_mnist5k"            # the results file is <name>.h5 unless told otherwise
    kind = "methods"
    description = "..."

    [data]
    dataset = "mnist5k"            # analogsim.datasets.list_datasets()
    seed = 0                       # split seed
    root = "..."                   # for user-supplied files (mnist, cifar10, svhn)
    options = { test_size = 500 }  # keyword options of datasets.load, e.g. stdlib_text's
                                   #   sequence_length, train_sequences, test_sequences

    [model]
    name = "lenet5"                # analogsim.models.list_models()
    options = { input_shape = [1, 28, 28] }

    [training]                     # analogsim.train.TrainingConfig fields, plus seeds
    epochs = 20
    seeds = [0, 1, 2]

    [[methods]]                    # one table per method; a list value of sigma or rho
    label = "sam"                  # expands into one method per value
    kind = "sam"                   # standard | noise_aware | sam | rwp
    train_chip = "pcm"             # optional: train through this card (hardware-aware)
    rho = 0.5                      # rwp/noise_aware: sigma, noise (the σ scaling), alpha, mode

    [evaluation]
    attack_sigmas = [0.0, 0.05, 0.1]   # Gaussian weight attack (absolute, per S0)
    attack_kind = "absolute"           # or additive_maxabs, multiplicative, filterwise_norm
    attack_draws = 3
    chip = "pcm"                       # optional: also evaluate on this card ...
    chip_times_s = [86400.0]           # ... after these times ...
    chip_instances = 8                 # ... over this many instances

Schedules are tables: ``rho = { schedule = "staircase", increment = 0.02, every = 10 }`` or
``sigma = { schedule = "ramp", end = 0.1, length = 20 }``. Every error names the key, the
value and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analogsim.cards import load_chip
from analogsim.errors import SpecError
from analogsim.experiments.spec_fields import (
    ModelSetup,
    check_keys,
    model_setup,
    number_list,
    positive_int,
    table,
    time_list,
)
from analogsim.train import (
    Method,
    NoiseAware,
    Ramp,
    RandomWeightPerturbation,
    Sharpness,
    Staircase,
    Standard,
)
from analogsim.train.perturbation import NOISE_KINDS

METHOD_KINDS = ("standard", "noise_aware", "sam", "rwp")


@dataclass(frozen=True)
class MethodSpec:
    """One method to train with, under a label that names it in the results.

    ``train_chip`` names a card to train on: the model is converted onto it first, so the
    method runs through the tiles' forward non-idealities (hardware-aware training).
    """

    label: str
    method: Method
    train_chip: str | None = None


@dataclass(frozen=True)
class EvaluationSpec:
    attack_sigmas: tuple[float, ...]
    attack_kind: str
    attack_draws: int
    chip: str | None
    chip_times_s: tuple[float, ...]
    chip_instances: int


@dataclass(frozen=True)
class MethodsSpec:
    """A validated spec of kind ``methods``."""

    name: str
    description: str
    setup: ModelSetup
    methods: tuple[MethodSpec, ...]
    evaluation: EvaluationSpec
    text: str  # the spec's TOML, stored in the results file


def _schedule(value: Any, where: str) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, dict) or "schedule" not in value:
        raise SpecError(f"{where} must be a number or a schedule table "
                        f"{{ schedule = \"ramp\" | \"staircase\", ... }}, got {value!r}")
    options = {k: v for k, v in value.items() if k != "schedule"}
    kind = value["schedule"]
    classes = {"ramp": Ramp, "staircase": Staircase}
    if kind not in classes:
        raise SpecError(f"{where}.schedule must be one of {sorted(classes)}, got {kind!r}")
    try:
        return classes[kind](**options)
    except (TypeError, ValueError) as error:
        raise SpecError(f"{where}: bad {kind} schedule {options!r}: {error}") from None


def _methods(entries: Any, source: str) -> tuple[MethodSpec, ...]:
    if not isinstance(entries, list) or not entries:
        raise SpecError(f"{source}: [[methods]] must list at least one method")
    specs: list[MethodSpec] = []
    # "noise" is the method's noise scaling (its ``kind`` argument; "kind" names the method)
    options = {"standard": set(), "noise_aware": {"sigma", "mode", "noise"},
               "sam": {"rho", "adaptive", "eta", "weight_only", "bypass_batch_norm"},
               "rwp": {"sigma", "noise", "alpha"}}
    for i, entry in enumerate(entries):
        where = f"{source}: methods[{i}]"
        if not isinstance(entry, dict):
            raise SpecError(f"{where} must be a table, got {entry!r}")
        kind = entry.get("kind")
        if kind not in METHOD_KINDS:
            raise SpecError(f"{where}.kind must be one of {list(METHOD_KINDS)}, got {kind!r}")
        check_keys(entry, {"label", "kind", "train_chip"} | options[kind], where)
        train_chip = entry.get("train_chip")
        if train_chip is not None:
            load_chip(train_chip)  # a bad card fails now, with its own message
        label = str(entry.get("label", kind))
        swept = "rho" if kind == "sam" else "sigma"
        values = entry.get(swept)
        variants = values if isinstance(values, list) else [values]
        if not variants:
            raise SpecError(f"{where}.{swept} is an empty list; give at least one value")
        for value in variants:
            settings = {("kind" if k == "noise" else k): v for k, v in entry.items()
                        if k not in ("label", "kind", "train_chip")}
            name = label
            if value is not None:
                settings[swept] = _schedule(value, f"{where}.{swept}")
                if isinstance(values, list):
                    name = f"{label}_{swept}={value}"
            try:
                method: Method = {"standard": Standard, "noise_aware": NoiseAware,
                                  "sam": Sharpness, "rwp": RandomWeightPerturbation}[kind](
                    **settings)
            except (TypeError, ValueError) as error:
                raise SpecError(f"{where}: {error}") from None
            specs.append(MethodSpec(name, method, train_chip))
    labels = [s.label for s in specs]
    duplicate = next((label for label in labels if labels.count(label) > 1), None)
    if duplicate:
        raise SpecError(f"{source}: two methods are labelled {duplicate!r}; give each a label")
    return tuple(specs)



def parse_methods_spec(data: dict[str, Any], text: str, source: str) -> MethodsSpec:
    """Validate the TOML of a spec of kind ``methods`` (already parsed into ``data``)."""
    check_keys(data, {"experiment", "data", "model", "training", "methods", "evaluation"},
               source)
    experiment = table(data, "experiment", source)
    setup = model_setup(data, source)
    if setup.training is None:
        raise SpecError(f"{source}: a methods spec trains its models: give [training], not "
                        "model.checkpoint")
    evaluation = table(data, "evaluation", source, required=False)
    check_keys(evaluation, {"attack_sigmas", "attack_kind", "attack_draws", "chip",
                            "chip_times_s", "chip_instances"}, f"{source}: [evaluation]")
    attack_kind = evaluation.get("attack_kind", "absolute")
    if attack_kind not in NOISE_KINDS:
        raise SpecError(f"{source}: evaluation.attack_kind must be one of {list(NOISE_KINDS)}, "
                        f"got {attack_kind!r}")
    draws = positive_int(evaluation.get("attack_draws", 1), f"{source}: evaluation.attack_draws")
    instances = positive_int(evaluation.get("chip_instances", 8),
                             f"{source}: evaluation.chip_instances")
    chip = evaluation.get("chip")
    if chip is not None:
        load_chip(chip)  # fails now, with the card's own error, rather than after training
    return MethodsSpec(
        name=str(experiment.get("name", Path(source).stem)),
        description=str(experiment.get("description", "")),
        setup=setup, methods=_methods(data.get("methods"), source),
        evaluation=EvaluationSpec(
            attack_sigmas=number_list(evaluation.get("attack_sigmas", [0.0]),
                                      f"{source}: evaluation.attack_sigmas"),
            attack_kind=attack_kind, attack_draws=draws, chip=chip,
            chip_times_s=time_list(evaluation.get("chip_times_s", [86400.0]),
                                   f"{source}: evaluation.chip_times_s"),
            chip_instances=instances,
        ),
        text=text,
    )
