"""Walking-noise experiments end to end: global and layer-wise sweeps, fits, guided execution."""

from __future__ import annotations

import numpy as np
import pytest

import analogsim as asim
from analogsim.errors import SpecError
from analogsim.experiments.run import run_spec
from analogsim.experiments.spec import load_spec
from analogsim.profiling import allocate_repetitions
from analogsim.report import write_report

WALKING_SPEC = """
[experiment]
name = "digits_walking"
kind = "walking_noise"

[data]
dataset = "digits"

[model]
name = "rl_tfc"

[training]
epochs = 6
batch_size = 64
optimizer = "adam"
learning_rate = 0.003
lr_schedule = "cosine"
weight_decay = 0.0
seeds = [0, 1]

[noise]
law = "additive"

[walking]
sigmas = { logspace = [-2, 2, 9] }

[fit]
x_space = "log10"

[guided]
sigma = "global_midpoint"
repeats = 3
"""


@pytest.fixture(scope="module")
def walking(tmp_path_factory):
    folder = tmp_path_factory.mktemp("walking")
    spec_path = folder / "walking.toml"
    spec_path.write_text(WALKING_SPEC)
    return asim.load_results(run_spec(load_spec(spec_path), folder / "walking.h5")), folder


def test_noise_at_every_site_falls_from_clean_to_chance(walking):
    results, _ = walking
    accuracy = results.runs["global_noise"].data["accuracy"].mean(axis=-1)
    clean = results.runs["train_model_seed0"].data["test_accuracy"][-1]
    assert accuracy[0] == pytest.approx(clean, abs=0.03)  # σ = 0.01
    assert accuracy[-1] < 0.2  # σ = 100 ≫ activations: chance (10 classes)
    assert np.all(np.diff(accuracy) < 0.03)  # no real recovery as σ grows


def test_layerwise_sweep_covers_every_site_and_fits_a_midpoint_each(walking):
    results, _ = walking
    layerwise = results.runs["layerwise_noise"]
    assert list(layerwise.axes["site"]) == ["0: input", "1: Linear [1]", "2: ReLU [2]",
                                            "3: Linear [3]", "4: ReLU [4]", "5: Linear [5]",
                                            "6: ReLU [6]", "7: Linear [7]"]
    assert layerwise.data["accuracy"].shape == (8, 9, 2) and layerwise.done.all()
    fits = results.runs["layerwise_noise_midpoints"]
    mu, error = fits.data["mu"], fits.data["mu_error"]
    assert np.isfinite(mu).all() and (error > 0).all() and (mu > 0.01).all() and (mu < 100).all()
    # μ is "roughly the σ closest to the half-max threshold" (METHODS.md §11)
    sigmas = layerwise.axes["sigma"]
    for i, row in enumerate(layerwise.data["accuracy"].mean(axis=-1)):
        half = fits.data["a_min"][i] + fits.data["delta_a"][i]
        crossing = sigmas[np.argmin(np.abs(row - half))]
        assert abs(np.log10(mu[i] / crossing)) <= 0.6, fits.axes["site"][i]


def test_guided_allocation_comes_from_the_stored_midpoints_at_the_same_budget(walking):
    results, _ = walking
    guided = results.runs["guided"]
    mu = results.runs["layerwise_noise_midpoints"].data["mu"]
    assert list(guided.attrs["repetitions_uniform"]) == [2] * 8
    assert list(guided.attrs["repetitions_guided"]) == allocate_repetitions(mu, 16)
    assert guided.attrs["sigma"] == pytest.approx(
        results.runs["global_noise_midpoints"].data["mu"][0])
    assert guided.data["accuracy"].shape == (2, 6) and np.isfinite(guided.data["accuracy"]).all()


def test_a_rerun_gives_the_same_numbers(walking):
    """Every draw is seeded: the same spec (its trainings resumed from their checkpoints)
    reproduces every accuracy."""
    results, folder = walking
    again = asim.load_results(run_spec(load_spec(folder / "walking.toml"), folder / "walking.h5"))
    for name in ("global_noise", "layerwise_noise", "guided"):
        np.testing.assert_array_equal(again.runs[name].data["accuracy"],
                                      results.runs[name].data["accuracy"])


def test_noise_in_training_trains_one_model_per_point(tmp_path):
    spec = (WALKING_SPEC.replace('law = "additive"', 'law = "multiplicative"\nin_training = true')
            .replace("sigmas = { logspace = [-2, 2, 9] }", "sigmas = [0.1, 3.0]\nglobal = false\n"
                     "sites = [1]")
            .replace("epochs = 6", "epochs = 2").replace("seeds = [0, 1]", "seeds = [0]"))
    spec = spec[:spec.index("[guided]")]
    path = tmp_path / "trained.toml"
    path.write_text(spec)
    results = asim.load_results(run_spec(load_spec(path), tmp_path / "trained.h5"))
    run = results.runs["layerwise_noise"]
    assert list(run.axes["site"]) == ["1: Linear [1]"] and run.attrs["noise_in_training"] == 1
    checkpoints = sorted(p.name for p in (tmp_path / "trained.checkpoints").iterdir())
    assert checkpoints == ["train_layerwise_site0_sigma0_seed0.pt",
                           "train_layerwise_site0_sigma1_seed0.pt"]  # one model per point
    assert "train_layerwise_site0_sigma1_seed0" in results.runs  # with its history
    accuracy = run.data["accuracy"][0, :, 0]
    assert accuracy[0] > accuracy[1]  # σ = 3 multiplicative noise after the first layer hurts


@pytest.mark.parametrize(("old", "new", "message"), [
    ('law = "additive"', 'law = "additive"\nin_training = true',
     r"guided multi-execution uses models trained without noise"),
    ('law = "additive"', 'law = "gaussian"', r"noise.law must be one of"),
    ("sigmas = { logspace = [-2, 2, 9] }", "sigmas = [-1, 1]", r"walking.sigmas must be ≥ 0"),
    ("sigmas = { logspace = [-2, 2, 9] }", "sigmas = { logspace = [-2, 2] }",
     r"logspace must be \[start, stop, points ≥ 1\]"),
    ('sigma = "global_midpoint"', "sigma = -2", r"guided.sigma must be a number > 0"),
    ("[fit]", "[fit]\ncomponents = 3", r"fit.components must be 1 or 2"),
])
def test_bad_walking_specs_name_key_value_and_expectation(tmp_path, old, new, message):
    path = tmp_path / "bad.toml"
    path.write_text(WALKING_SPEC.replace(old, new))
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_midpoints_are_also_fitted_per_seed_and_reported_over_seeds(walking):
    """μ from the seed mean hides how μ varies with the trained model: each seed is fitted
    alone too, and the report gives μ's mean and CI over the seeds."""
    results, folder = walking
    per_seed = results.runs["layerwise_noise_midpoints_per_seed"]
    assert per_seed.data["mu"].shape == (8, 2) and np.isfinite(per_seed.data["mu"]).any()
    page = write_report(folder / "walking.h5", folder / "report").read_text(encoding="utf-8")
    assert "μ over seeds, mean [95 % CI]" in page and "(n = 2 seeds)" in page
    assert "95 % CI over seeds, n = 2 seeds × 3 repeats" in page  # guided, per trained model
