"""Kind ``methods``: train with several methods and seeds, evaluate under attack and on a chip.

For every (method, seed) the model is trained from the same initialisation (seeded by the
training seed), through a card's tiles when the method names one (hardware-aware training),
with its history written to ``/runs/train_<method>_seed<k>`` and a checkpoint
beside the results file, so an interrupted run resumes. Then:

- ``attack``: accuracy[method, sigma, replicate] under the Gaussian weight attack, replicates
  being (seed, draw) pairs; σ = 0 is the clean accuracy;
- ``chip`` (when the spec names a card): accuracy[method, time, replicate] of the trained
  model converted onto the card, replicates being (seed, chip instance) pairs;
- ``training_time``: seconds[method, seed] of training (the S0 time ratios);
- ``chip_cost`` (when the card has a ``[cost]`` section): each (method, seed) model's energy,
  latency and area on the card (:mod:`.cost_record`).

For a language model (a data set whose task is ``language_model``) ``accuracy`` is per next
token, and ``attack`` and ``chip`` also hold ``perplexity`` on the same axes (exp of the mean
NLL per test token, per draw or chip instance).

A training that diverges (non-finite weights) is a result, not an error: its attack accuracy
is measured as it is (chance), its chip accuracy is left unmeasured, and the runs' attribute
``diverged`` lists it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from analogsim.conversion import convert
from analogsim.evaluation import METRIC_UNITS, evaluate, task_metrics
from analogsim.experiments.cost_record import CostRecord
from analogsim.experiments.interruption import check_stop
from analogsim.experiments.methods_spec import MethodsSpec
from analogsim.experiments.trained_models import load_data, trained_model
from analogsim.programming import drift, program
from analogsim.results import ResultsWriter, spec_fingerprint
from analogsim.sampling import sampling_attrs
from analogsim.seeding import Purpose, make_generator
from analogsim.train.perturbation import attack_evaluations

log = logging.getLogger(__name__)


def run_methods_comparison(
    spec: MethodsSpec, results_path: str | Path, progress: bool = False
) -> Path:
    """Run every training and evaluation the spec declares; returns the results file."""
    results_path = Path(results_path)
    checkpoints = results_path.with_suffix(".checkpoints")
    data = load_data(spec.setup)
    test = (data.x_test, data.y_test)
    evaluation = spec.evaluation
    labels = [m.label for m in spec.methods]
    seeds = spec.setup.seeds
    metrics = task_metrics(data.task)
    units = {m: METRIC_UNITS[m] for m in metrics}
    task_attrs = {"task": data.task, "predictions_per_sample": data.y_test[0].numel(),
                  **({"data_source": data.source} if data.source else {})}
    with ResultsWriter(results_path, fingerprint=spec_fingerprint(spec.text)) as writer:
        writer.add_config("spec", spec.text)
        attack = writer.create_run(
            "attack",
            axes={"method": labels, "sigma": evaluation.attack_sigmas,
                  "replicate": range(len(seeds) * evaluation.attack_draws)},
            metrics=metrics, units=units,
            attrs={"title": f"{spec.name}: {' and '.join(metrics)} under Gaussian weight "
                            f"attack ({evaluation.attack_kind} σ)",
                   "summary": spec.description, "test_samples": len(data.y_test),
                   "attack_kind": evaluation.attack_kind, **task_attrs,
                   **sampling_attrs(seed=len(seeds), draw=evaluation.attack_draws)},
        )
        chip_run, record = None, None
        if evaluation.chip is not None:
            record = CostRecord(writer, "chip", evaluation.chip,
                                [f"{label} seed {seed}" for label in labels for seed in seeds],
                                data.x_test[:1])
            chip_run = writer.create_run(
                "chip",
                axes={"method": labels, "time": evaluation.chip_times_s,
                      "replicate": range(len(seeds) * evaluation.chip_instances)},
                metrics=metrics, units={"time": "s", **units},
                attrs={"title": f"{spec.name}: {' and '.join(metrics)} on the "
                                f"{evaluation.chip} card",
                       "test_samples": len(data.y_test), "card": evaluation.chip, **task_attrs,
                       **sampling_attrs(seed=len(seeds), instance=evaluation.chip_instances)},
            )
        timing = writer.create_run(
            "training_time", axes={"method": labels, "seed": seeds}, metrics=("seconds",),
            units={"seconds": "s"}, attrs={"title": "training time"}, point_axes=1,
        )
        attack_values = {m: np.full((len(labels), len(evaluation.attack_sigmas),
                                     len(seeds), evaluation.attack_draws), np.nan)
                         for m in metrics}
        chip_values = {m: np.full((len(labels), len(evaluation.chip_times_s), len(seeds),
                                   evaluation.chip_instances), np.nan) for m in metrics}
        diverged = [d for d in str(attack.group.attrs.get("diverged", "none")).split(", ")
                    if d not in ("", "none")]  # from before a resume
        for i, method_spec in enumerate(tqdm(spec.methods, desc="methods",
                                             disable=not progress)):
            if timing.is_done((i,)):  # finished before a resume (written last, below)
                continue
            seconds = []
            for s, seed in enumerate(seeds):
                model, history = trained_model(
                    spec.setup, seed, data, writer, checkpoints, method=method_spec.method,
                    label=method_spec.label, train_chip=method_spec.train_chip,
                    progress=progress)
                seconds.append(sum(history.seconds) if history is not None else np.nan)
                generator = make_generator(seed, Purpose.FORWARD, 1000 + i)
                for j, sigma in enumerate(evaluation.attack_sigmas):
                    draws = attack_evaluations(model, test, sigma, evaluation.attack_kind,
                                               evaluation.attack_draws, generator)
                    for m in metrics:
                        attack_values[m][i, j, s] = [float(np.mean(d.values((m,))[m]))
                                                     for d in draws]
                if not all(torch.isfinite(p).all() for p in model.parameters()):
                    log.warning("training %s, seed %d diverged (non-finite weights); its "
                                "chip accuracies are left unmeasured", method_spec.label, seed)
                    diverged.append(f"{method_spec.label} seed {seed}")
                elif chip_run is not None and record is not None:
                    record.add(i * len(seeds) + s, model)
                    analog = convert(model, evaluation.chip)
                    program(analog, seed=seed, instances=evaluation.chip_instances)
                    for j, t in enumerate(evaluation.chip_times_s):
                        drift(analog, t)
                        chips = evaluate(analog, test, seed=seed).values(metrics)
                        for m in metrics:
                            chip_values[m][i, j, s] = chips[m]
            for j in range(len(evaluation.attack_sigmas)):
                attack.write_point((i, j), **{m: v[i, j].reshape(-1)
                                              for m, v in attack_values.items()})
            if chip_run is not None:
                for j in range(len(evaluation.chip_times_s)):
                    chip_run.write_point((i, j), **{m: v[i, j].reshape(-1)
                                                    for m, v in chip_values.items()})
            timing.write_point((i,), seconds=seconds)
            check_stop()
            for run in (attack, chip_run):
                if run is not None:
                    run.group.attrs["diverged"] = ", ".join(diverged) or "none"
    return results_path
