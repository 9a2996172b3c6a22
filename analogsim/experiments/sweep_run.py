"""Kind ``sweep``: a model evaluated over a grid of card fields, drift times and instances.

The results file holds ``/runs/sweep`` with accuracy[axis…, time, instance], one point per
card-grid point (every time and instance of it written at once), the digital model's own
accuracy (attribute ``digital_accuracy``), and what the weight coding
costs there: r_avg (cells per weight), devices, side_bits_per_weight; the spec and the card in
``/config``, and the model's training history when the spec trains it.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from analogsim.evaluation import evaluate
from analogsim.experiments.chip_spec import SweepSpec
from analogsim.experiments.cluster import ClusterRunner, cluster_client
from analogsim.experiments.sweep import run_in_process, sweep_accuracy
from analogsim.experiments.trained_models import load_data, trained_model
from analogsim.results import ResultsWriter, spec_fingerprint

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
        model, _ = trained_model(spec.setup, spec.setup.seeds[0], data, writer,
                                 results_path.with_suffix(".checkpoints"), progress=progress)
        axes = {axis.name: _stored_axis(axis.values) for axis in plan.axes}
        run = writer.create_run(
            "sweep", axes={**axes, "time": plan.times_s, "instance": range(plan.instances)},
            metrics={"accuracy": (*axes, "time", "instance"),
                     **dict.fromkeys(COST_METRICS, tuple(axes))},
            units={**{a.name: a.unit for a in plan.axes}, "time": "s",
                   "accuracy": "fraction", "r_avg": "cells/weight",
                   "side_bits_per_weight": "bit/weight", "devices": "devices"},
            attrs={"kind": "sweep", "title": f"{spec.name}: accuracy on the "
                                             f"{spec.chip.chip.name} card",
                   "summary": spec.description, "card": spec.chip.chip.name,
                   "seed": plan.seed, "test_samples": len(data.y_test),
                   "digital_accuracy": evaluate(model, (data.x_test, data.y_test)).mean},
            point_axes=len(plan.axes))
        sweep_accuracy(model, (data.x_test, data.y_test), spec.chip.chip, plan,
                       per_layer=spec.chip.per_layer, exclude=spec.chip.exclude,
                       skip=run.is_done,
                       on_point=lambda index, values, cost: run.write_point(
                           index, accuracy=values, r_avg=cost.r_avg, devices=cost.devices,
                           side_bits_per_weight=cost.side_bits_per_weight),
                       runner=runner, progress=progress)
    return results_path


