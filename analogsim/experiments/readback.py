"""Evaluate a model file on conductances read back from a chip, into a results file.

The engine's side of ``analogsim evaluate-readback``: the model file and the read-back file
(layouts in :mod:`analogsim.hardware.chip_exchange`) go in; one results file comes out, with
the card in ``/config/card`` and the run ``readback``: ``accuracy[time, chip]`` (fraction), the
read times in s.
"""

from __future__ import annotations

from pathlib import Path

from analogsim import datasets
from analogsim.cards import load_chip
from analogsim.hardware.chip_exchange import ReadbackEvaluation, evaluate_readback
from analogsim.hardware.model_file import load_model_file
from analogsim.results import ResultsWriter
from analogsim.sampling import sampling_attrs


def run_readback(model_path: str | Path, readback_path: str | Path,
                 results_path: str | Path, *, card: str | None = None,
                 data_root: str | Path | None = None, seed: int = 0) -> ReadbackEvaluation:
    """Evaluate the model of ``model_path`` on the conductances of ``readback_path`` and
    write ``results_path`` (replaced if it exists).

    Args:
        model_path: an analogsim model file (``save_model_file``).
        readback_path: the read-back file (``/layers/<layer>/g_uS`` in µS).
        results_path: the .h5 results file to write.
        card: another card (name or .toml path) than the model file's.
        data_root: folder of the data set's files, if it needs them.
        seed: seed of the periphery's per-read noise.

    Returns:
        The accuracy per read time and chip, as written.

    Raises:
        DataError: an unreadable model or read-back file, or one that does not fit the model.
    """
    saved = load_model_file(model_path)
    chip = load_chip(card) if card else saved.chip
    data = datasets.load(saved.dataset, seed=saved.data_seed, root=data_root)
    measured = evaluate_readback(saved.model, chip, readback_path, (data.x_test, data.y_test),
                                 seed=seed)
    with ResultsWriter(results_path) as writer:
        writer.add_config("card", chip.to_toml())
        run = writer.create_run(
            "readback", axes={"time": measured.times_s,
                              "chip": range(measured.accuracy.shape[1])},
            units={"time": "s", "accuracy": "fraction"},
            attrs={"title": f"{saved.name} on measured conductances ({readback_path})",
                   "card": chip.name, "test_samples": len(data.y_test),
                   **sampling_attrs(seed=1, chip=measured.accuracy.shape[1])})
        for j, row in enumerate(measured.accuracy):
            run.write_point((j,), accuracy=row)
    return measured
