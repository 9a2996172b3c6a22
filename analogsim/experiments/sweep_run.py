"""Kind ``sweep``: a model evaluated over a grid of card fields, drift times and instances.

The results file holds ``/runs/sweep`` with accuracy[axis…, time, instance] for one training
seed, or accuracy[axis…, time, replicate] with the replicates seed-major (seeds × chips; the
run's ``sample_axes``/``sample_shape`` attributes say so) for several: one model is trained per
seed of ``[training] seeds`` and every one is evaluated on the same chip instances. A point
(every time and replicate of one card-grid point) is written at once. Beside it: the digital
models' accuracy (attributes ``digital_accuracy``, their mean, and
``digital_accuracy_per_seed``), and what the weight coding costs there (mean over seeds):
r_avg (cells per weight), devices, side_bits_per_weight; the spec and the card in
``/config``, and each model's training history when the spec trains it. A card with a
``[cost]`` section adds ``/runs/sweep_cost``: each model's energy, latency and area at the card
as the spec gives it, and its energy, latency and TOPS/W at every grid point
(:mod:`.cost_record`).

For a language model (a data set whose task is ``language_model``) accuracy is per next token
and the run also holds perplexity[axis…, time, replicate] (exp of the mean NLL per test token
of each chip), with the digital models' ``digital_perplexity_per_seed``.
"""

from __future__ import annotations

import functools
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from analogsim.evaluation import METRIC_UNITS, evaluate, task_metrics
from analogsim.experiments.chip_spec import SweepSpec
from analogsim.experiments.cluster import ClusterRunner, cluster_client
from analogsim.experiments.cost_record import CostGrid, CostRecord
from analogsim.experiments.sweep import PointValues, run_in_process, sweep_accuracy
from analogsim.experiments.trained_models import load_data, trained_model
from analogsim.results import ResultsWriter, Run, spec_fingerprint
from analogsim.sampling import sampling_attrs
from analogsim.tiles.coding import CodingCost

#: What the coding of the model costs at each card-grid point (written beside accuracy).
COST_METRICS = ("r_avg", "devices", "side_bits_per_weight")


def _stored_axis(values: tuple) -> list:
    """Axis values as stored: numbers, or strings when a value is not a number (e.g. none)."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return list(values)
    return [str(v).lower() for v in values]


def run_sweep(spec: SweepSpec, results_path: str | Path, progress: bool = False,
              cluster: str | None = None) -> Path:
    """Train (or load) the spec's model and evaluate its grid; returns the results file.

    Args:
        cluster: evaluate the points on a Dask cluster (``local``, ``local:N`` or
            ``tcp://host:port``; see :mod:`analogsim.experiments.cluster`); None: here.
    """
    results_path = Path(results_path)
    data = load_data(spec.setup)
    plan = spec.plan
    with ExitStack() as stack:  # the cluster first: a bad address fails before training
        runner = run_in_process if cluster is None else ClusterRunner(
            stack.enter_context(cluster_client(cluster)))
        writer = stack.enter_context(ResultsWriter(results_path,
                                                   fingerprint=spec_fingerprint(spec.text)))
        writer.add_config("spec", spec.text)
        writer.add_config("card", spec.chip.chip.to_toml())
        seeds = spec.setup.seeds
        models = [trained_model(spec.setup, seed, data, writer,
                                results_path.with_suffix(".checkpoints"), progress=progress)[0]
                  for seed in seeds]
        metrics = task_metrics(data.task)
        digital_runs = [evaluate(model, (data.x_test, data.y_test)) for model in models]
        digital = [e.mean for e in digital_runs]
        language = ({"task": data.task, "data_source": data.source,
                     "digital_perplexity_per_seed": [float(e.perplexity[0])
                                                     for e in digital_runs]}
                    if "perplexity" in metrics else {})
        axes = {axis.name: _stored_axis(axis.values) for axis in plan.axes}
        # the chips of one trained model, or seed-major seeds × chips for several
        replicates = "instance" if len(seeds) == 1 else "replicate"
        run = writer.create_run(
            "sweep", axes={**axes, "time": plan.times_s,
                           replicates: range(len(seeds) * plan.instances)},
            metrics={**dict.fromkeys(metrics, (*axes, "time", replicates)),
                     **dict.fromkeys(COST_METRICS, tuple(axes))},
            units={**{a.name: a.unit for a in plan.axes}, "time": "s",
                   **{m: METRIC_UNITS[m] for m in metrics}, "r_avg": "cells/weight",
                   "side_bits_per_weight": "bit/weight", "devices": "devices"},
            attrs={"kind": "sweep", "title": f"{spec.name}: accuracy on the "
                                             f"{spec.chip.chip.name} card",
                   "summary": spec.description, "card": spec.chip.chip.name,
                   "seed": plan.seed, "test_samples": len(data.y_test),
                   **sampling_attrs(seed=len(seeds), instance=plan.instances),
                   "training_seeds": list(seeds),
                   "digital_accuracy": float(np.mean(digital)),
                   "digital_accuracy_per_seed": digital, **language},
            point_axes=len(plan.axes))
        record = CostRecord(writer, "sweep", spec.chip.chip, [f"seed {s}" for s in seeds],
                            data.x_test[:1], spec.chip.per_layer, spec.chip.exclude,
                            CostGrid(plan, axes, {a.name: a.unit for a in plan.axes}))
        for s, model in enumerate(models):
            record.add(s, model)
        per_seed = PointsOverSeeds(run, len(seeds))
        for s, model in enumerate(models):
            sweep_accuracy(model, (data.x_test, data.y_test), spec.chip.chip, plan,
                           per_layer=spec.chip.per_layer, exclude=spec.chip.exclude,
                           metrics=metrics, skip=run.is_done,
                           on_point=functools.partial(per_seed.add, s), runner=runner,
                           progress=progress)
    return results_path




class PointsOverSeeds:
    """Collects a card-grid point's results from each trained model and writes the point once
    every seed has it: each metric[time, seed-major seeds × chips]; the coding cost, which
    depends on the trained weights, as its mean over seeds. A point interrupted before its last
    seed is evaluated again on resume (the same numbers: every draw is seeded)."""

    def __init__(self, run: Run, seeds: int) -> None:
        self.run = run
        self.seeds = seeds
        self.pending: dict[tuple[int, ...], dict[int, tuple[PointValues, CodingCost]]] = {}

    def add(self, seed_index: int, index: tuple[int, ...], values: PointValues,
            cost: CodingCost) -> None:
        """Seed ``seed_index``'s metric[time, instance] and coding cost at ``index``."""
        parts = self.pending.setdefault(index, {})
        parts[seed_index] = (values, cost)
        if len(parts) < self.seeds:
            return
        del self.pending[index]
        ordered = [parts[s] for s in range(self.seeds)]
        self.run.write_point(
            index, **{metric: np.concatenate([v[metric] for v, _ in ordered], axis=-1)
                      for metric in ordered[0][0]},
            **{metric: float(np.mean([getattr(c, metric) for _, c in ordered]))
               for metric in COST_METRICS})
