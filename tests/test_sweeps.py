"""Monte-Carlo sweeps: card grids, the sweep engine against the verbs, and spec → HDF5 → report."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
import torch

import analogsim as asim
from analogsim.errors import CardError, SpecError
from analogsim.experiments.card_grid import CardAxis, check_axes, layer_chips
from analogsim.experiments.run import run_spec
from analogsim.experiments.spec import load_spec
from analogsim.experiments.sweep import SweepPlan, base_layer_chips, sweep_accuracy
from analogsim.report import write_report
from analogsim.train.reference import trained_digits_mlp


@pytest.fixture(scope="module")
def digits_mlp():
    model, data = trained_digits_mlp(seed=0, epochs=15)
    return model, (data.x_test, data.y_test)


@pytest.fixture(scope="module")
def checkpoint(digits_mlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "digits_mlp.pt"
    torch.save(digits_mlp[0].state_dict(), path)
    return path


def test_scale_axis_multiplies_the_card_value_of_the_named_layers_only(mlp):
    base = base_layer_chips(mlp, asim.load_chip("pcm", read_noise_scale=2.0))
    axis = CardAxis("read_noise.scale", (0.5, 3.0), mode="scale", layers=("2",))
    chips = layer_chips(base, [axis], [3.0])
    assert chips["2"].read_noise.scale == pytest.approx(6.0)  # 2 × 3
    assert chips["0"].read_noise.scale == pytest.approx(2.0)  # untouched
    set_axis = CardAxis("adc.bits", (4, None))
    assert layer_chips(base, [set_axis], [None])["0"].adc.bits is None
    assert set_axis.name == "adc.bits" and axis.name == "read_noise.scale@2"


def test_axes_fail_early_naming_the_axis(mlp):
    base = base_layer_chips(mlp, "pcm")
    chip = asim.load_chip("pcm")
    with pytest.raises(SpecError, match=r"layers \['fc9'\] match no analog layer"):
        check_axes([CardAxis("adc.bits", (4,), layers=("fc9",))], list(base), chip)
    with pytest.raises(CardError, match=r"axis 'adc\.bits' = 0"):
        check_axes([CardAxis("adc.bits", (6, 0))], list(base), chip)
    with pytest.raises(SpecError, match="scale factors must be numbers"):
        CardAxis("adc.bits", ("many",), mode="scale")


def test_sweep_points_equal_the_public_verbs(digits_mlp):
    """Each point of the grid is convert → program → drift → evaluate with that card."""
    model, test = digits_mlp
    plan = SweepPlan(axes=(CardAxis("read_noise.scale", (1.0, 4.0), mode="scale"),
                           CardAxis("adc.bits", (6, 9))),
                     times_s=(60.0, 86400.0), instances=4, seed=3)
    accuracy = sweep_accuracy(model, test, "pcm", plan)
    assert accuracy.shape == (2, 2, 2, 4)
    for (i, scale), (j, bits) in [((1, 4.0), (0, 6)), ((0, 1.0), (1, 9))]:
        analog = asim.convert(model, asim.load_chip("pcm", read_noise_scale=scale, adc_bits=bits))
        asim.program(analog, seed=3, instances=4)
        asim.drift(analog, 86400.0)
        np.testing.assert_array_equal(accuracy[i, j, 1],
                                      asim.evaluate(analog, test, seed=3).accuracy)


def test_sweep_shows_read_noise_and_drift_cost_accuracy(digits_mlp):
    """More 1/f read noise and a longer time lose accuracy (METHODS.md §14: σ grows with t)."""
    model, test = digits_mlp
    plan = SweepPlan(axes=(CardAxis("read_noise.scale", (0.5, 16.0), mode="scale"),),
                     times_s=(1.0, 3.15e7), instances=16)
    mean = sweep_accuracy(model, test, "pcm", plan).mean(axis=-1)
    assert mean[1, 1] < mean[0, 1] - 0.05  # 16× read noise after a year
    assert mean[1, 1] < mean[1, 0]         # the same card, later
    assert mean[0, 0] > 0.9


def test_skip_leaves_points_unmeasured_and_on_point_reports_the_rest(digits_mlp):
    model, test = digits_mlp
    plan = SweepPlan(axes=(CardAxis("adc.bits", (5, 7, 9)),), instances=2)
    seen = []
    accuracy = sweep_accuracy(model, test, "pcm", plan, skip=lambda index: index == (1,),
                              on_point=lambda index, values, cost: seen.append(index))
    assert seen == [(0,), (2,)]
    assert np.isnan(accuracy[1]).all() and np.isfinite(accuracy[[0, 2]]).all()


SWEEP_SPEC = """
[experiment]
name = "digits_pcm_sweep"
kind = "sweep"
description = "read noise × ADC bits on pcm"

[data]
dataset = "digits"

[model]
name = "mlp"
options = {{ in_features = 64, hidden = [64, 64], num_classes = 10 }}
checkpoint = "{checkpoint}"

[chip]
card = "pcm"
per_layer = {{ "5" = {{ "dac.bits" = 8 }} }}

[sweep]
instances = 4
times_s = [1, 86400, 31536000]

[[sweep.axes]]
field = "read_noise.scale"
values = {{ logspace = [-0.5, 1, 4] }}
mode = "scale"

[[sweep.axes]]
field = "adc.bits"
values = [5, 9, "none"]
"""


def test_sweep_spec_round_trips_to_hdf5_and_report_in_under_a_minute(checkpoint, tmp_path):
    started = time.perf_counter()
    spec_path = tmp_path / "sweep.toml"
    spec_path.write_text(SWEEP_SPEC.format(checkpoint=checkpoint))
    spec = load_spec(spec_path)
    results = run_spec(spec, tmp_path / "sweep.h5")
    index = write_report(results, tmp_path / "report")
    elapsed = time.perf_counter() - started
    loaded = asim.load_results(results)
    sweep = loaded.runs["sweep"]
    assert sweep.dims["accuracy"] == ("read_noise.scale", "adc.bits", "time", "instance")
    assert sweep.data["accuracy"].shape == (4, 3, 3, 4) and sweep.done.all()
    assert list(sweep.axes["adc.bits"]) == ["5", "9", "none"]
    np.testing.assert_allclose(sweep.axes["read_noise.scale"], np.logspace(-0.5, 1, 4))
    assert sweep.units["read_noise.scale"] == "×" and sweep.units["time"] == "s"
    assert loaded.config["spec"] == spec_path.read_text()
    assert "[adc]" in loaded.config["card"]
    page = index.read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images and all((index.parent / image).stat().st_size > 1000 for image in images)
    assert elapsed < 60, f"the digits sweep took {elapsed:.0f} s"


@pytest.mark.parametrize(("old", "new", "message"), [
    ('values = [5, 9, "none"]', 'values = [5, 9, "none"]\nlayers = ["fc"]',
     r"layers \['fc'\] match no analog layer; the layers are \['1', '3', '5'\]"),
    ('field = "adc.bits"', 'field = "adc.bitz"', r"axis 'adc.bitz' = 5: .*unknown key adc.bitz"),
    ("instances = 4", "instances = 0", r"\[sweep\]\.instances must be a positive integer, got 0"),
    ('card = "pcm"', 'card = "pcmx"', r"unknown device card 'pcmx'"),
    ('"5" = {{ "dac.bits" = 8 }}', '"5" = {{ "dac.bits" = -1 }}', r"dac.bits"),
    ("times_s = [1, 86400, 31536000]", "times_s = [-1]", r"times_s must be"),
    ('checkpoint = "{checkpoint}"', 'checkpoint = "missing.pt"', r"checkpoint 'missing.pt' is not"),
])
def test_bad_sweep_specs_name_key_value_and_expectation(checkpoint, tmp_path, old, new, message):
    spec_path = tmp_path / "bad.toml"
    spec_path.write_text(SWEEP_SPEC.replace(old, new).format(checkpoint=checkpoint))
    with pytest.raises((SpecError, CardError), match=message):
        load_spec(spec_path)
