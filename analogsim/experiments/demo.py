"""The demo experiment: a digits MLP loses accuracy on a drifting PCM chip and drift
compensation wins it back.

Trains the MLP digitally (a few seconds), converts it onto the ``pcm`` card with and without
global drift compensation, programs 32 chip instances (the same devices in both), and evaluates
at 1 s, 1 h, 1 day, 1 month and 1 year. Writes one results file through the results writer, as
every experiment does: the two cards in ``/config`` and the run ``drift``:
``accuracy[compensation, time, instance]`` (fraction), times in s. ``analogsim demo`` runs it
and draws the report, as ``analogsim run`` does for a spec.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analogsim.cards import load_chip
from analogsim.conversion import convert
from analogsim.evaluation import evaluate
from analogsim.programming import drift, program
from analogsim.results import ResultsWriter
from analogsim.sampling import sampling_attrs
from analogsim.train.reference import trained_digits_mlp

log = logging.getLogger(__name__)

DRIFT_TIMES_S = (1.0, 3600.0, 86400.0, 2592000.0, 31536000.0)  # 1 s, 1 h, 1 day, 1 month, 1 year
COMPENSATION = ("none", "global")


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its results and the accuracies it measured.

    Attributes:
        results_path: the results file.
        digital_accuracy: the digital model's test accuracy (fraction).
        accuracy: [compensation, time, instance] test accuracy on the chip (fraction).
        test_samples: the test samples behind each accuracy.
    """

    results_path: Path
    digital_accuracy: float
    accuracy: np.ndarray
    test_samples: int = 0


def run_demo(
    results_path: str | Path = "results/demo.h5",
    instances: int = 32,
    seed: int = 0,
    epochs: int = 40,
    progress: bool = True,
) -> DemoResult:
    """Run the demo (see the module docstring) and write ``results_path`` (replaced if it
    exists).

    Args:
        results_path: the .h5 results file.
        instances: chip instances K.
        seed: seed of the data split, the training and the chips.
        epochs: training epochs of the MLP.
        progress: show tqdm bars.
    """
    model, data = trained_digits_mlp(seed=seed, epochs=epochs, progress=progress)
    test = (data.x_test, data.y_test)
    digital = evaluate(model, test)
    log.info("digital accuracy: %s", digital)

    chips = {method: load_chip("pcm", drift_compensation_method=method)
             for method in COMPENSATION}
    with ResultsWriter(results_path) as writer:
        for method, chip in chips.items():
            writer.add_config(f"card_pcm_compensation_{method}", chip.to_toml())
        run = writer.create_run(
            "drift",
            axes={"compensation": COMPENSATION, "time": DRIFT_TIMES_S,
                  "instance": range(instances)},
            units={"time": "s", "accuracy": "fraction"},
            attrs={
                "title": "digits MLP on PCM: accuracy vs time after programming",
                "summary": f"{instances} chip instances (seed {seed}) of the pcm card, with and "
                           "without global drift compensation; the dashed line is the digital "
                           "model.",
                "digital_accuracy": digital.mean,
                "test_samples": digital.samples,
                "seed": seed,
                **sampling_attrs(seed=1, instance=instances),
                "model": "mlp 64-64-64-10",
                "dataset": "digits",
            },
        )
        accuracy = np.zeros((len(COMPENSATION), len(DRIFT_TIMES_S), instances))
        for i, (method, chip) in enumerate(chips.items()):
            analog = convert(model, chip)
            program(analog, seed=seed, instances=instances)
            for j, t in enumerate(DRIFT_TIMES_S):
                drift(analog, t)
                result = evaluate(analog, test, seed=seed)
                accuracy[i, j] = result.accuracy
                run.write_point((i, j), accuracy=result.accuracy)
                log.info("compensation %-6s t = %10.0f s: %s", method, t, result)
    return DemoResult(Path(results_path), digital.mean, accuracy, digital.samples)
