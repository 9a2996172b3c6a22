"""The report draws the engine's run kinds: sweeps over card fields, walking noise with its
midpoint fit, guided multi-execution, noise budgets and their evidence curves.

Each test writes a small results file of one layout with synthetic numbers (logistic curves,
seeded noise), draws the report and checks the page and its images.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from matplotlib import image as mpimg
from scipy import stats
from scipy.special import expit

from analogsim.report import write_report
from analogsim.report.formatting import format_value_error
from analogsim.report.sections import curve_axes, heatmap_axes
from analogsim.results import ResultsWriter, load_results

SITES = ["0 input", "1 0 (Linear)", "2 1 (BatchNorm1d)", "3 2 (ReLU)", "4 3 (Linear)"]
MU = np.array([0.02, 0.35, 1.6, 0.8, 12.0])  # σ units; site 2 does not fall to chance
A_MIN = np.array([0.1, 0.1, 0.62, 0.1, 0.1])
SIGMA = np.array([0.0, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0])
LAYERS = ["fc1", "fc2", "fc3"]


def _falling(x: np.ndarray, middle: float, low: float = 0.1, high: float = 0.97,
             width: float = 0.25) -> np.ndarray:
    """A logistic fall from ``high`` to ``low`` in log10 x, half way at ``middle``."""
    with np.errstate(divide="ignore"):
        return low + (high - low) * expit(-(np.log10(x) - np.log10(middle)) / width)


def _noisy(mean: np.ndarray, replicates: int, seed: int, std: float = 0.01) -> np.ndarray:
    draws = np.random.default_rng(seed).normal(0.0, std, (*mean.shape, replicates))
    return np.clip(mean[..., None] + draws, 0.0, 1.0)


def _write_sweep(writer: ResultsWriter, fields: dict[str, tuple[list, str]]) -> None:
    times = [0.0, 1.0, 3600.0, 86400.0, 2592000.0, 31536000.0]
    axes = {name: values for name, (values, _) in fields.items()}
    units = {name: unit for name, (_, unit) in fields.items()}
    grid = np.meshgrid(*[np.asarray(v, float) for v in axes.values()], times, indexing="ij")
    harm = grid[0] * (1 + np.log10(1 + grid[-1])) / (grid[1] if len(fields) > 1 else 4.0)
    accuracy = _noisy(_falling(harm, 3.0, high=0.96, width=0.3), 8, seed=1)
    run = writer.create_run("sweep", axes={**axes, "time": times, "instance": range(8)},
                            units={**units, "time": "s"},
                            attrs={"kind": "sweep", "title": "pcm: read noise and ADC",
                                   "card": "pcm", "test_samples": 450})
    for index in np.ndindex(accuracy.shape[:-1]):
        run.write_point(index, accuracy=accuracy[index])


def _write_walking(writer: ResultsWriter, name: str, sites: list[str] | None,
                   with_midpoints: bool) -> None:
    mu = MU if sites else MU[:1]
    a_min = A_MIN if sites else A_MIN[:1]
    mean = np.stack([_falling(SIGMA, m, low=a) for m, a in zip(mu, a_min, strict=True)])
    accuracy = _noisy(mean, 4, seed=2)
    axes = {"sigma": SIGMA, "seed": range(4)}
    if sites:
        axes = {"site": sites, **axes}
    else:
        accuracy = accuracy[0]
    mode = "layerwise" if sites else "global"
    run = writer.create_run(name, axes=axes, attrs={
        "kind": "walking_noise", "mode": mode, "law": "multiplicative", "noise_in_training": 0,
        "num_classes": 10, "test_samples": 450,
        "title": f"{mode} multiplicative activation noise, inference-only noise"})
    for index in np.ndindex(accuracy.shape[:-1]):
        run.write_point(index, accuracy=accuracy[index])
    if not with_midpoints:
        return
    grid = np.logspace(-4, 2.5, 120)
    fits = writer.create_run(
        f"{name}_midpoints", axes={"site": sites or ["global"], "sigma_fit": grid},
        metrics={**{m: ("site",) for m in ("mu", "mu_error", "a_min", "a_min_error", "delta_a",
                                           "chi2", "falls_to_chance")},
                 "fitted_accuracy": ("site", "sigma_fit")},
        attrs={"kind": "midpoints", "source_run": name, "x_space": "log10", "fix_amin": 0,
               "components": 1, "num_classes": 10})
    for metric, values in {"mu": mu, "mu_error": 0.08 * mu, "a_min": a_min,
                           "a_min_error": np.full(mu.size, 0.012), "delta_a": (0.97 - a_min) / 2,
                           "chi2": np.linspace(3.0, 9.0, mu.size),
                           "falls_to_chance": (a_min < 0.2).astype(float),
                           "fitted_accuracy": np.stack([_falling(grid, m, low=a) for m, a
                                                        in zip(mu, a_min, strict=True)])}.items():
        fits.write_table(metric, values)


def _guided_accuracy() -> np.ndarray:
    """accuracy[allocation (uniform, guided), replicate]."""
    return np.stack([np.random.default_rng(3).normal(0.80, 0.01, 10),
                     np.random.default_rng(4).normal(0.83, 0.012, 10)])


def _write_guided(writer: ResultsWriter) -> None:
    accuracy = _guided_accuracy()
    run = writer.create_run(
        "guided", axes={"allocation": ["uniform", "guided"], "replicate": range(10)},
        attrs={"kind": "guided", "sigma": 0.05, "budget_total": 15, "sites": SITES,
               "repetitions_uniform": [3, 3, 3, 3, 3], "repetitions_guided": [1, 2, 5, 4, 3],
               "test_samples": 450, "title": "guided multi-execution"})
    for i in range(2):
        run.write_point((i,), accuracy=accuracy[i])


def _write_budget(writer: ResultsWriter) -> None:
    knobs = ["read_noise.scale", "programming.scale", "drift_time", "adc.bits",
             "conductance.levels"]
    limits = np.array([[4.0, 1.5, 8.0], [3.0, 1.2, 5.0], [3e7, 8.6e5, 1e8], [5.0, 7.0, 4.0],
                       [16.0, 64.0, 8.0]])
    spread = np.random.default_rng(5).uniform(0.9, 1.1, (5, 3, 3))
    limit = limits[..., None] * spread
    limit[3:] = np.round(limit[3:])
    joint = limit * np.where(np.array([1, 1, 1, 0, 0], bool)[:, None, None], 0.6, 1.25)
    run = writer.create_run(
        "budget", axes={"knob": knobs, "layer": LAYERS, "seed": range(3)},
        metrics={"limit": ("knob", "layer", "seed"), "joint_limit": ("knob", "layer", "seed"),
                 "joint_accuracy": ("knob", "seed"), "baseline_accuracy": ("seed",)},
        attrs={"kind": "budget", "card": "pcm", "tolerance_pp": 1.0,
               "knob_units": ["×", "×", "s", "bit", "levels"],
               "knob_harsher": ["up", "up", "up", "down", "down"],
               "knob_card_value": [1.0, 1.0, np.nan, 9.0, np.nan],
               "most_sensitive_layer": "fc2", "ranking": "fc2 > fc1 > fc3", "ranking_stable": 1,
               "ranking_note": "fc2 is first for every knob and seed."})
    for metric, values in {"limit": limit, "joint_limit": joint,
                           "joint_accuracy": np.full((5, 3), 0.962),
                           "baseline_accuracy": [0.971, 0.973, 0.969]}.items():
        run.write_table(metric, values)
    curves = {"read_noise.scale": ([0.5, 1, 2, 4, 8, 16], "×"),
              "adc.bits": ([3, 4, 5, 6, 7, 8, 9], "bit"),
              "drift_time": ([1.0, 3600.0, 86400.0, 2.6e6, 3.15e7, 3.15e8], "s")}
    for k, (knob, (values, unit)) in enumerate(curves.items()):
        x = np.asarray(values, float)
        harm = np.stack([x / limits[knob == np.asarray(knobs)][0][j] if unit != "bit" else
                         2.0 ** (limits[3, j] - x) for j in range(3)])
        curve = writer.create_run(
            f"budget_curve_{knob}", axes={"layer": LAYERS, knob: values, "instance": range(8)},
            units={knob: unit},
            attrs={"kind": "budget_curve", "knob": knob, "tolerance_pp": 1.0,
                   "baseline_accuracy": 0.971, "title": f"accuracy against {knob} per layer"})
        accuracy = _noisy(0.971 - 0.4 * (1 - expit(-(np.log2(harm) - 1.5))), 8, seed=6 + k,
                          std=0.004)
        for index in np.ndindex(accuracy.shape[:-1]):
            curve.write_point(index, accuracy=accuracy[index])


LAYOUTS = {
    "sweep_one_field": lambda w: _write_sweep(w, {"read_noise.scale": ([0.5, 1, 2, 4], "×")}),
    "sweep_two_fields": lambda w: _write_sweep(w, {"read_noise.scale": ([0.5, 1, 2, 4], "×"),
                                                   "adc.bits@fc1": ([4, 6, 8], "")}),
    "walking_with_midpoints": lambda w: (_write_walking(w, "global_noise", None, True),
                                         _write_walking(w, "layerwise_noise", SITES, True)),
    "walking_alone": lambda w: _write_walking(w, "layerwise_noise", SITES, False),
    "guided": _write_guided,
    "budget": _write_budget,
}


def _report(tmp_path: Path, layout: str) -> tuple[str, Path]:
    path = tmp_path / f"{layout}.h5"
    with ResultsWriter(path, command="test") as writer:
        LAYOUTS[layout](writer)
    index = write_report(path, tmp_path / "report")
    return index.read_text(encoding="utf-8"), index.parent


def _images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


@pytest.mark.parametrize("layout", list(LAYOUTS), ids=list(LAYOUTS))
def test_every_image_on_the_page_is_a_png_that_opens(tmp_path, layout):
    page, folder = _report(tmp_path, layout)
    images = _images(page)
    assert images and len(images) == len(set(images))
    for name in images:
        pixels = mpimg.imread(folder / name)  # raises on a file that is not a PNG
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 500, (name, pixels.shape)
        assert pixels[..., :3].std() > 0.05, f"{name} is (nearly) blank"


@pytest.mark.parametrize("layout", list(LAYOUTS), ids=list(LAYOUTS))
def test_a_partly_measured_file_is_drawn(tmp_path, layout):
    """A report of a file still being written (or of failed fits): a third of every metric is
    NaN, and the page is still drawn, with every image."""
    path = tmp_path / f"{layout}.h5"
    with ResultsWriter(path, command="test") as writer:
        LAYOUTS[layout](writer)
    rng = np.random.default_rng(7)
    with h5py.File(path, "a") as handle:
        for run in handle["runs"].values():
            for name, dataset in run.items():
                if name not in ("axes", "done"):
                    values = dataset[()]
                    values[rng.random(values.shape) < 0.33] = np.nan
                    dataset[...] = values
    index = write_report(path, tmp_path / "report")
    for name in _images(index.read_text(encoding="utf-8")):
        assert mpimg.imread(index.parent / name).shape[0] >= 300


def test_walking_noise_is_drawn_once_with_its_midpoint_fit(tmp_path):
    page, folder = _report(tmp_path, "walking_with_midpoints")
    images = _images(page)
    assert images == ["global_noise_midpoints_fits.png", "layerwise_noise_midpoints_fits.png",
                      "layerwise_noise_midpoints_mu.png"]
    assert not (folder / "layerwise_noise.png").exists()  # the fit figure replaces the curves
    assert page.count('<h2 id="layerwise_noise"') == 1
    assert 'id="layerwise_noise_midpoints"' not in page
    for site, mu, a_min in zip(SITES, MU, A_MIN, strict=True):
        assert (f"<tr><td>{site}</td><td>{format_value_error(mu, 0.08 * mu)}</td>"
                f"<td>{format_value_error(a_min, 0.012)}</td>") in page
    assert "<td>1.60 ± 0.13</td>" in page and "<td>12.0 ± 1.0</td>" in page
    assert page.count("a_min (accuracy does not fall to chance)") == 1


def test_a_midpoint_fit_without_its_walking_run_is_drawn_alone(tmp_path):
    path = tmp_path / "fits.h5"
    with ResultsWriter(path, command="test") as writer:
        _write_walking(writer, "layerwise_noise", SITES, True)
    with h5py.File(path, "a") as handle:
        del handle["runs/layerwise_noise"]
    page = write_report(path, tmp_path / "report").read_text(encoding="utf-8")
    assert _images(page) == ["layerwise_noise_midpoints_fits.png",
                             "layerwise_noise_midpoints_mu.png"]
    assert "The walking-noise run layerwise_noise is not in this file" in page


def test_walking_noise_without_a_fit_is_drawn_as_curves(tmp_path):
    page, _ = _report(tmp_path, "walking_alone")
    assert _images(page) == ["layerwise_noise.png"]
    assert "Layerwise walking noise (one site noisy at a time), multiplicative law" in page


def test_budget_page_names_the_most_sensitive_layer(tmp_path):
    page, _ = _report(tmp_path, "budget")
    assert ("The most sensitive layer is fc2. Ranking, most sensitive first: fc2 &gt; fc1 &gt; "
            "fc3 (stable across seeds: fc2 is first for every knob and seed).") in page
    assert _images(page) == ["budget.png", "budget_curve_adc.bits.png",
                             "budget_curve_drift_time.png", "budget_curve_read_noise.scale.png"]
    assert "read_noise.scale (higher = more tolerant)" in page
    assert "adc.bits (lower = more tolerant)" in page
    assert "97.10 %" in page  # the baseline, mean over seeds
    assert "<td>the card&#x27;s value</td><td>1×</td><td>1×</td><td>—</td><td>9 bits</td>" in page


def test_guided_page_gives_the_difference_with_its_welch_interval(tmp_path):
    page, _ = _report(tmp_path, "guided")
    accuracy = _guided_accuracy()
    welch = stats.ttest_ind(accuracy[1], accuracy[0], equal_var=False)
    low, high = welch.confidence_interval(0.95)
    difference = accuracy[1].mean() - accuracy[0].mean()
    assert (f"Guided − uniform: {100 * difference:+.2f} pp [{100 * low:+.2f}, "
            f"{100 * high:+.2f}]") in page
    assert "1, 2, 5, 4, 3" in page and "3, 3, 3, 3, 3" in page


def test_sweeps_draw_curves_over_time_or_heat_maps_per_time(tmp_path):
    page, _ = _report(tmp_path / "one", "sweep_one_field")
    run = load_results(tmp_path / "one" / "sweep_one_field.h5").runs["sweep"]
    assert heatmap_axes(run) is None and curve_axes(run) == ("time", "read_noise.scale")
    # the table as the curves: a row per time, a column per field value
    assert "<th>time</th><th>read_noise.scale = 0.5×</th>" in page and "<td>1 h</td>" in page
    page, _ = _report(tmp_path / "two", "sweep_two_fields")
    run = load_results(tmp_path / "two" / "sweep_two_fields.h5").runs["sweep"]
    assert heatmap_axes(run) == ("read_noise.scale", "adc.bits@fc1")  # a panel per time
    assert "<td>0.5×</td><td>4</td><td>1 year</td>" in page  # one row per point, folded
    assert "<details><summary>table of 72 rows</summary>" in page


@pytest.mark.parametrize(("value", "error", "text"), [
    (1.234, 0.04, "1.23 ± 0.04"), (1.234, 0.012, "1.234 ± 0.012"), (123.0, 12.0, "123 ± 12"),
    (3.21e-4, 5e-6, "(3.21 ± 0.05)×10⁻⁴"), (0.62, 0.0, "0.62"), (np.nan, 0.1, "—"),
], ids=["one-digit", "two-digits", "integer", "scientific", "no-error", "not-fitted"])
def test_value_with_error_is_rounded_to_its_error(value, error, text):
    assert format_value_error(value, error) == text


def test_the_report_reads_results_only():
    """No report module imports torch, the experiments or the profiling (DESIGN: the report
    reads results and never re-runs anything)."""
    forbidden = ("torch", "torchvision", "analogsim.experiments", "analogsim.profiling")
    for source in Path(__file__).parents[1].joinpath("analogsim", "report").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad = [n for n in names if any(n == f or n.startswith(f"{f}.") for f in forbidden)]
            assert not bad, f"{source.name} imports {bad}"


def test_guided_replicates_of_several_models_are_summarised_per_model(tmp_path):
    """Repeats of one trained model share its weights: the CI of guided − uniform is a paired
    t over the models' mean accuracies, not a t over every repeat."""
    path = tmp_path / "guided_models.h5"
    accuracy = _guided_accuracy()  # 10 replicates = 2 models × 5 repeats, model-major
    with ResultsWriter(path, command="test") as writer:
        run = writer.create_run(
            "guided", axes={"allocation": ["uniform", "guided"], "replicate": range(10)},
            attrs={"kind": "guided", "sigma": 0.05, "budget_total": 15, "sites": SITES,
                   "repetitions_uniform": [3, 3, 3, 3, 3],
                   "repetitions_guided": [1, 2, 5, 4, 3], "test_samples": 450,
                   "models": 2, "repeats": 5, "title": "guided multi-execution"})
        for i, row in enumerate(accuracy):
            run.write_point((i,), accuracy=row)
    page = write_report(path, tmp_path / "report").read_text(encoding="utf-8")
    per_model = accuracy.reshape(2, 2, 5).mean(axis=-1)
    difference = per_model[1] - per_model[0]
    half = stats.t.ppf(0.975, 1) * difference.std(ddof=1) / np.sqrt(2)
    assert (f"Guided − uniform: {100 * difference.mean():+.2f} pp "
            f"[{100 * (difference.mean() - half):+.2f}, {100 * (difference.mean() + half):+.2f}]"
            " (95 % CI, paired t over 2 trained models)") in page
    assert "95 % CI over seeds, n = 2 seeds × 5 repeats" in page
