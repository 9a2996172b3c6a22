"""Fit a device card to measurements, into a card file and a results file.

The engine's side of ``analogsim fit-device``: the measurement file goes in; the fitted card
(TOML, each fitted number with its 1-σ uncertainty as a comment) and one results file come out.
The results file holds the fitted card and its base in ``/config/card`` and
``/config/base_card``, the run ``device_fit`` with ``value[field]`` and ``error[field]`` (1 σ;
NaN where a number was not fitted from the data), and one run per law with the binned data and
the fit behind it: ``fit_<law>`` with ``x``, ``y``, ``error``, ``fit``, ``count`` over ``bin``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analogsim.hardware import fit_device
from analogsim.hardware.fit_results import Bins, DeviceFit, FittedValue
from analogsim.results import ResultsWriter

BIN_METRICS = ("x", "y", "error", "fit", "count")


def run_device_fit(measurements: str | Path, card_path: str | Path, results_path: str | Path,
                   *, name: str | None = None, base: str = "pcm") -> DeviceFit:
    """Fit a card to ``measurements``, write it to ``card_path`` and the fit to
    ``results_path`` (both replaced if they exist).

    Args:
        measurements: a .csv or .h5 measurement file (layout in
            :mod:`analogsim.hardware.measurements`).
        card_path: the .toml card to write.
        results_path: the .h5 results file to write.
        name: the card's name (default: the measurement file's stem).
        base: the card for everything not fitted.

    Returns:
        The fit, with the data behind every number (for its report).
    """
    card_path = Path(card_path)
    fit = fit_device(measurements, name=name, base=base)
    card_path.parent.mkdir(parents=True, exist_ok=True)
    card_path.write_text(fit.toml(), encoding="utf-8")
    with ResultsWriter(results_path) as writer:
        writer.add_config("card", fit.chip.to_toml())
        writer.add_config("base_card", fit.base.to_toml())
        fields, values, errors = fitted_numbers(fit.values)
        run = writer.create_run("device_fit", axes={"field": fields}, metrics=("value", "error"),
                                attrs={"title": f"{fit.chip.name} fitted to {measurements}",
                                       "fitted_sections": ", ".join(fit.fitted_sections),
                                       "devices": fit.measurements.devices},
                                point_axes=0)
        run.write_point((), value=values, error=errors)
        for law, bins in law_bins(fit).items():
            run = writer.create_run(f"fit_{law}", axes={"bin": range(len(bins.x))},
                                    metrics=BIN_METRICS, attrs={"parameters": bins.parameters,
                                                                "reduced_chi2": bins.reduced_chi2},
                                    point_axes=0)
            run.write_point((), **{metric: getattr(bins, metric) for metric in BIN_METRICS})
    return fit


def fitted_numbers(values: tuple[FittedValue, ...]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Field names, values and 1-σ errors (NaN: not fitted), a tuple value as ``key[i]``."""
    fields: list[str] = []
    numbers: list[float] = []
    errors: list[float] = []
    for fitted in values:
        many = isinstance(fitted.value, tuple)
        value = fitted.value if many else (fitted.value,)
        error = fitted.error if isinstance(fitted.error, tuple) else (fitted.error,) * len(value)
        fields += [f"{fitted.key}[{i}]" if many else fitted.key for i in range(len(value))]
        numbers += [float(v) for v in value]
        errors += [np.nan if e is None else float(e) for e in error]
    return fields, np.array(numbers), np.array(errors)


def law_bins(fit: DeviceFit) -> dict[str, Bins]:
    """The binned data of each fitted law, by name."""
    found = {"programming": fit.programming.bins}
    if fit.read_noise is not None:
        found["read_noise"] = fit.read_noise.bins
    if fit.drift is not None:
        found["drift_mean"] = fit.drift.mean
        if fit.drift.std is not None:
            found["drift_std"] = fit.drift.std
    return found
