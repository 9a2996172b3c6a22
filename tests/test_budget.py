"""Noise budgets: knobs, per-layer limits against their evidence, joint limits, ranking."""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pytest

import analogsim as asim
from analogsim.errors import SpecError
from analogsim.experiments.budget import Budget, find_budget, make_knob
from analogsim.experiments.budget_run import ranking_verdict
from analogsim.experiments.run import run_spec
from analogsim.experiments.spec import load_spec
from analogsim.report import write_report
from analogsim.train.reference import trained_digits_mlp


@pytest.fixture(scope="module")
def digits_mlp():
    model, data = trained_digits_mlp(seed=0, epochs=15)
    return model, (data.x_test, data.y_test)


def test_knobs_follow_the_card():
    pcm = asim.load_chip("pcm")
    read = make_knob(pcm, "read_noise.scale", 3600.0)
    assert (read.unit, read.harsher, read.card_value, read.grid[0]) == ("×", "up", 1.0, 1.0)
    bits = make_knob(pcm, "adc.bits", 3600.0)
    assert bits.grid == (9, 8, 7, 6, 5, 4, 3, 2) and bits.harsher == "down"
    levels = make_knob(pcm, "conductance.levels", 3600.0)  # pcm is continuous
    assert math.isnan(levels.card_value) and levels.grid[0] == 256
    drift_time = make_knob(pcm, "drift_time", 3600.0)
    assert drift_time.grid[0] == 3600.0 and drift_time.unit == "s"
    with pytest.raises(SpecError, match="only a positive value can be scaled"):
        make_knob(pcm, "per_read_noise.additive_std", 3600.0)
    with pytest.raises(SpecError, match="ideal converter"):
        make_knob(asim.load_chip("ideal"), "adc.bits", 3600.0)
    with pytest.raises(SpecError, match=r"noise knob 'drift\.scale'"):
        make_knob(asim.load_chip("ideal"), "drift.scale", 3600.0)


@pytest.fixture(scope="module")
def budget(digits_mlp) -> Budget:
    pcm = asim.load_chip("pcm")
    model, test = digits_mlp
    knobs = [make_knob(pcm, "read_noise.scale", 86400.0), make_knob(pcm, "adc.bits", 86400.0)]
    return find_budget(model, test, pcm, knobs=knobs, tolerance_pp=1.0, instances=6, seed=0)


def test_baseline_is_the_card_itself(digits_mlp, budget):
    model, test = digits_mlp
    analog = asim.drift(asim.program(asim.convert(model, "pcm"), seed=0, instances=6), 86400.0)
    assert budget.baseline == pytest.approx(asim.evaluate(analog, test, seed=0).mean)


def test_limits_agree_with_their_evidence_curves(budget):
    floor = budget.baseline - budget.tolerance
    for i, (knob, limits, curve) in enumerate(zip(budget.knobs, budget.limits, budget.curves,
                                                   strict=True)):
        for j, (layer, limit, evidence) in enumerate(zip(budget.layers, limits, curve,
                                                         strict=True)):
            mean = evidence.mean(axis=-1)
            assert budget.censored[i, j] == (np.isfinite(mean).all() and (mean >= floor).all())
            grid = np.asarray(knob.grid)
            milder = grid <= limit if knob.harsher == "up" else grid >= limit
            assert (mean[milder] >= floor).all(), (knob.name, layer)
            harsher = np.flatnonzero(~milder & np.isfinite(mean))
            if harsher.size:  # the first grid value past the limit failed
                assert mean[harsher[0]] < floor, (knob.name, layer)


def test_joint_limits_lie_between_the_card_and_each_layers_own_limit(budget):
    floor = budget.baseline - budget.tolerance
    assert (budget.joint_accuracy >= floor).all()
    for knob, limits, joint in zip(budget.knobs, budget.limits, budget.joint_limits,
                                   strict=True):
        mild = knob.card_value
        low, high = np.minimum(mild, limits), np.maximum(mild, limits)
        assert ((joint >= low - 1e-9) & (joint <= high + 1e-9)).all(), knob.name


def test_a_layer_that_is_already_noisy_is_found_most_sensitive(digits_mlp):
    """Layer 3 sits on 6× the card's read noise (a fixed per-layer override), so it tolerates
    the smallest further factor and ranks first."""
    model, test = digits_mlp
    pcm = asim.load_chip("pcm")
    knobs = [make_knob(pcm, "read_noise.scale", 86400.0)]
    result = find_budget(model, test, pcm, knobs=knobs, instances=6,
                         per_layer={"3": {"read_noise.scale": 6.0}})
    limits = dict(zip(result.layers, result.limits[0], strict=True))
    assert limits["3"] < min(limits["1"], limits["5"])
    assert result.sensitivity_ranking()[0] == "3"


def _budget_with(limits: list[float]) -> Budget:
    knob = make_knob(asim.load_chip("pcm"), "read_noise.scale", 60.0)
    array = np.array([limits])
    return Budget((knob,), ("a", "b", "c"), 0.9, 0.01, array, (), array, np.array([0.9]),
                  np.zeros_like(array, bool))


def test_ranking_verdict_says_when_seeds_agree_and_when_it_is_within_noise():
    ranking, stable, note = ranking_verdict([_budget_with([2, 8, 4]), _budget_with([2.2, 9, 5])],
                                            (0, 1))
    assert ranking == ["a", "c", "b"] and stable
    assert note == "seeds 0, 1 give the same ranking a > c > b"
    ranking, stable, note = ranking_verdict([_budget_with([2, 8, 4]), _budget_with([5, 8, 4])],
                                            (0, 1))
    assert not stable and "within the Monte-Carlo noise" in note
    assert "which layer is the most sensitive is within noise" in note


BUDGET_SPEC = """
[experiment]
name = "digits_budget"
kind = "budget"

[data]
dataset = "digits"

[model]
name = "mlp"
options = { in_features = 64, hidden = [64, 64], num_classes = 10 }

[training]
epochs = 8
batch_size = 64
optimizer = "adam"
learning_rate = 0.01
weight_decay = 0.0

[chip]
card = "pcm"

[budget]
instances = 4
seeds = [0, 1]
knobs = ["programming.scale", "adc.bits"]
grids = { "programming.scale" = [1, 2, 4, 8, 16] }
"""


def test_budget_spec_writes_table_curves_and_a_report_naming_the_most_sensitive_layer(tmp_path):
    spec_path = tmp_path / "budget.toml"
    spec_path.write_text(BUDGET_SPEC)
    results = asim.load_results(run_spec(load_spec(spec_path), tmp_path / "budget.h5"))
    budget = results.runs["budget"]
    assert budget.data["limit"].shape == (2, 3, 2) and np.isfinite(budget.data["limit"]).all()
    assert budget.data["joint_accuracy"].shape == (2, 2)
    assert budget.attrs["most_sensitive_layer"] == budget.attrs["ranking"].split(" > ")[0]
    assert budget.attrs["ranking_note"]
    curve = results.runs["budget_curve_programming.scale"]
    assert list(curve.axes["programming.scale"]) == [1, 2, 4, 8, 16]
    assert curve.data["accuracy"].shape == (3, 5, 4)
    page = write_report(results.path, tmp_path / "report").read_text()
    assert html.escape(budget.attrs["ranking_note"]) in page
    for image in re.findall(r'<img src="([^"]+)"', page):
        assert (tmp_path / "report" / image).stat().st_size > 1000


@pytest.mark.parametrize(("old", "new", "message"), [
    ('knobs = ["programming.scale", "adc.bits"]', 'knobs = ["gain"]', r"noise knob 'gain'"),
    ("seeds = [0, 1]", "seeds = []", r"seeds must be a non-empty list"),
    ('grids = { "programming.scale"', 'grids = { "read_noise.scale"',
     r"grids names 'read_noise.scale', which is not among the knobs"),
    ("instances = 4", "tolerance_pp = -1\ninstances = 4", r"tolerance_pp must be a number > 0"),
])
def test_bad_budget_specs_name_key_value_and_expectation(tmp_path, old, new, message):
    spec_path = tmp_path / "bad.toml"
    spec_path.write_text(BUDGET_SPEC.replace(old, new))
    with pytest.raises(SpecError, match=message):
        load_spec(spec_path)
