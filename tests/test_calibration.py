"""Calibrated input ranges (dac.input_scaling = "calibrated") and analogsim.calibrate."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
import quiet_card
import torch
from torch import nn

import analogsim as asim
from analogsim.calibration import AbsoluteInputs
from analogsim.conversion import analog_layers
from analogsim.errors import ConversionError, StateError, UsageError
from analogsim.physics import periphery
from analogsim.seeding import make_generator
from analogsim.tiles import integer_mvm


def quiet_chip(**overrides: object) -> asim.Chip:
    """The quiet pcm card (every non-ideality off) with calibrated input scaling; each test
    switches on what it checks."""
    return quiet_card.quiet_chip(**{"dac_input_scaling": "calibrated", **overrides})


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def cnn() -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3),
                         nn.Flatten(), nn.Linear(3 * 4 * 4, 5))


def inputs(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=make_generator(7, seed))


def digital_layer_inputs(model: nn.Sequential, x: torch.Tensor) -> list[np.ndarray]:
    """|x| at the input of each Linear/Conv of a digital Sequential."""
    seen = []
    with torch.no_grad():
        for module in model:
            if isinstance(module, nn.Linear | nn.Conv2d):
                seen.append(x.abs().numpy().ravel())
            x = module(x)
    return seen


# ------------------------------------------------------------------------ the percentile


@pytest.mark.parametrize("percentile", [50.0, 99.0, 99.99, 100.0])
@pytest.mark.parametrize(("build", "shape"), [(mlp, (40, 6)), (cnn, (10, 2, 6, 6))],
                         ids=["linear", "conv"])
def test_range_is_the_percentile_of_the_digital_layer_inputs(build, shape, percentile) -> None:
    model = build()
    x = inputs(*shape)
    amodel = asim.convert(model, quiet_chip())
    ranges = asim.calibrate(amodel, x, percentile=percentile, batch_size=7)
    expected = [np.percentile(values, percentile) for values in digital_layer_inputs(model, x)]
    names = [name for name, _ in analog_layers(amodel)]
    assert list(ranges) == names
    np.testing.assert_allclose([ranges[n] for n in names], expected, rtol=1e-6)
    for name, layer in analog_layers(amodel):
        assert layer.tile.input_range.dim() == 0
        assert float(layer.tile.input_range) == pytest.approx(ranges[name], rel=1e-6)


def test_recorder_tail_is_exact_and_sample_follows_the_standard_error() -> None:
    values = torch.rand(20_000, generator=make_generator(3, 0))
    recorder = AbsoluteInputs("x", make_generator(3, 1), tail_size=50, sample_size=2_000)
    for chunk in values.split(3_000):
        recorder.add(-chunk)  # |x| is recorded
    # 99.9 % of 20 000: the 21st largest value and its neighbour, both in the 50-value tail
    assert recorder.percentile(99.9) == pytest.approx(np.percentile(values.numpy(), 99.9),
                                                      rel=1e-6)
    # the median comes from the uniform sample of S = 2 000: for uniform values (density 1)
    # the sample median has standard error sqrt(p (1 − p) / S) ≈ 0.011; allow 5 of them
    assert abs(recorder.percentile(50.0) - float(values.median())) < 5 * math.sqrt(0.25 / 2000)
    assert recorder.sample.numel() == 2_000 and recorder.tail.numel() == 50


def test_batches_limits_the_calibration_data_and_pairs_are_accepted() -> None:
    model = mlp()
    amodel = asim.convert(model, quiet_chip())
    first, second = inputs(20, 6, seed=1), 10 * inputs(20, 6, seed=2)
    labels = torch.zeros(20, dtype=torch.int64)
    ranges = asim.calibrate(amodel, [(first, labels), (second, labels)], percentile=100,
                            batches=1)
    assert ranges["0"] == pytest.approx(float(first.abs().max()))
    assert asim.calibrate(amodel, (first, labels), percentile=100)["0"] == ranges["0"]


def test_calibration_is_digital_and_leaves_the_model_as_it_was() -> None:
    model = mlp()
    x = inputs(30, 6)
    clean = asim.calibrate(asim.convert(model, quiet_chip()), x)
    noisy = asim.convert(model, asim.load_chip("pcm", dac_input_scaling="calibrated"))
    asim.program(noisy, seed=0, instances=3)
    noisy.train()
    assert asim.calibrate(noisy, x) == pytest.approx(clean, rel=1e-6)
    assert noisy.training
    assert not any(layer.tile.digital_forward for _, layer in analog_layers(noisy))


# ------------------------------------------------------------------------ the forward


@pytest.mark.parametrize("bound", [1.0, 0.5])
def test_ideal_dac_reproduces_the_digital_layer_and_clips_at_range_times_bound(bound) -> None:
    torch.manual_seed(2)
    digital = nn.Linear(6, 4)
    layer = asim.convert(digital, quiet_chip(dac_bound=bound))
    x = inputs(32, 6)
    r = float(asim.calibrate(layer, x, percentile=100)[""])
    assert r == pytest.approx(float(x.abs().max()))
    with torch.no_grad():
        if bound == 1.0:  # no input exceeds r·bound: the digital output
            torch.testing.assert_close(layer(x), digital(x), rtol=1e-5, atol=1e-6)
        big = 3 * x  # most inputs exceed r·bound: y = W clip(x, ±r·bound) + b
        expected = digital(big.clamp(-r * bound, r * bound))
        torch.testing.assert_close(layer(big), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bits", [4, 7])
def test_calibrated_dac_step_is_fixed_while_abs_max_follows_each_vector(bits) -> None:
    n = 5
    identity = nn.Linear(n, n, bias=False)
    with torch.no_grad():
        identity.weight.copy_(torch.eye(n))  # y = the DAC's output, in input units
    x = inputs(16, n) * torch.linspace(0.1, 3.0, 16).unsqueeze(1)  # vectors of varied max|x|
    limit = 2 ** (bits - 1) - 1
    step = periphery.quantisation_step(bits, 1.0)
    assert step == pytest.approx(1.0 / limit)  # 2·bound/(2^b − 2) = bound/(2^(b−1) − 1)
    calibrated = asim.convert(identity, quiet_chip(dac_bits=bits))
    r = 1.3
    calibrated.tile.input_range = torch.tensor(r)
    abs_max = asim.convert(identity, quiet_chip(dac_bits=bits, dac_input_scaling="abs_max"))
    with torch.no_grad():
        y_cal, y_abs = calibrated(x), abs_max(x)
    cal_step = r * step  # the same step for every input vector
    torch.testing.assert_close(
        y_cal, cal_step * torch.round(x / cal_step).clamp(-limit, limit), rtol=1e-5, atol=1e-6)
    vector_step = x.abs().amax(dim=1, keepdim=True) * step  # one step per vector
    torch.testing.assert_close(y_abs, vector_step * torch.round(x / vector_step),
                               rtol=1e-5, atol=1e-6)
    codes = y_cal / cal_step
    torch.testing.assert_close(codes, codes.round(), rtol=0, atol=1e-4)
    assert not torch.allclose(y_cal, y_abs)


def test_the_range_survives_a_state_dict_round_trip() -> None:
    model = cnn()
    x = inputs(8, 2, 6, 6)
    amodel = asim.convert(model, quiet_chip(dac_bits=7))
    ranges = asim.calibrate(amodel, x)
    buffer = io.BytesIO()
    torch.save(amodel.state_dict(), buffer)
    buffer.seek(0)
    fresh = asim.convert(model, quiet_chip(dac_bits=7))
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    for name, layer in analog_layers(fresh):
        assert float(layer.tile.input_range) == pytest.approx(ranges[name], rel=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), amodel(x))


def test_a_state_dict_without_ranges_loads_uncalibrated() -> None:
    amodel = asim.convert(mlp(), quiet_chip())
    asim.calibrate(amodel, inputs(10, 6))
    old = {k: v for k, v in amodel.state_dict().items() if not k.endswith("input_range")}
    amodel.load_state_dict(old)  # strict: a state dict saved before calibration existed
    with pytest.raises(StateError, match=r"call asim\.calibrate"):
        amodel(inputs(2, 6))


def test_a_partial_state_dict_leaves_the_ranges_alone() -> None:
    amodel = asim.convert(mlp(), quiet_chip())
    ranges = asim.calibrate(amodel, inputs(10, 6))
    amodel.load_state_dict({"0.weight": torch.zeros(8, 6)}, strict=False)
    assert float(amodel[0].tile.input_range) == pytest.approx(ranges["0"])


# ------------------------------------------------------------------------ refusals


def test_an_uncalibrated_layer_refuses_to_run() -> None:
    amodel = asim.convert(mlp(), quiet_chip())
    with pytest.raises(StateError, match=r"analog layer #0 \(weight matrix 8 × 6, card 'pcm'\) "
                                         r"has dac.input_scaling = 'calibrated' but no input "
                                         r"range: call asim.calibrate\(model, data\)"):
        amodel(inputs(2, 6))


@pytest.mark.parametrize("percentile", [0, -1, 100.5, float("nan"), True, "99"],
                         ids=["zero", "negative", "above-100", "nan", "bool", "string"])
def test_calibrate_refuses_a_percentile_outside_0_100(percentile) -> None:
    amodel = asim.convert(mlp(), quiet_chip())
    with pytest.raises(UsageError, match=r"'percentile' parameter of calibrate must be a "
                                         r"number in \(0, 100\]"):
        asim.calibrate(amodel, inputs(4, 6), percentile=percentile)


def test_calibrate_refuses_empty_data_and_models_without_analog_layers() -> None:
    amodel = asim.convert(mlp(), quiet_chip())
    with pytest.raises(UsageError, match="no calibration inputs"):
        asim.calibrate(amodel, torch.empty(0, 6))
    with pytest.raises(UsageError, match="no calibration inputs"):
        asim.calibrate(amodel, [])
    with pytest.raises(ConversionError, match="needs a model with analog layers"):
        asim.calibrate(mlp(), inputs(4, 6))


def test_calibrate_refuses_a_range_of_zero_and_non_finite_inputs() -> None:
    amodel = asim.convert(nn.Linear(6, 2), quiet_chip())
    mostly_zero = torch.zeros(100, 6)
    mostly_zero[0, 0] = 1.0
    with pytest.raises(UsageError, match=re.escape("99th percentile of |x| of layer '' is 0")):
        asim.calibrate(amodel, mostly_zero, percentile=99)
    with pytest.raises(UsageError, match="NaN or infinite"):
        asim.calibrate(amodel, torch.full((2, 6), float("nan")))


def test_the_aihwkit_backend_refuses_calibrated_scaling() -> None:
    pytest.importorskip("aihwkit")
    from analogsim.backends.aihwkit_backend import AihwkitMappingError, rpu_config

    with pytest.raises(AihwkitMappingError, match=r"dac\.input_scaling = 'calibrated'"):
        rpu_config(asim.load_chip("pcm", dac_input_scaling="calibrated"))


# ------------------------------------------------------------------------ instances


@pytest.mark.parametrize(("build", "shape"), [(mlp, (6, 6)), (mlp, (2, 5, 6)),
                                               (cnn, (3, 2, 6, 6))],
                         ids=["linear", "linear-tokens", "conv"])
def test_k_instances_share_the_range_and_match_each_instance_alone(build, shape) -> None:
    chip = asim.load_chip("pcm", dac_input_scaling="calibrated", output_noise_std=0.0)
    x = inputs(*shape)
    amodel = asim.convert(build(), chip)
    asim.calibrate(amodel, x)
    asim.program(amodel, seed=4, instances=3)
    amodel.eval()
    with torch.no_grad(), asim.instances_folded(amodel):
        folded = amodel(x.repeat(3, *[1] * (x.dim() - 1))).reshape(3, x.shape[0], -1)
    for k in range(3):
        asim.program(amodel, seed=4, instances=[k])
        with torch.no_grad():
            torch.testing.assert_close(folded[k], amodel(x).reshape(x.shape[0], -1),
                                       rtol=1e-4, atol=1e-5)
    assert not torch.allclose(folded[0], folded[1])  # the chips differ, the range does not


def test_integer_products_run_on_calibrated_codes(monkeypatch) -> None:
    torch.manual_seed(5)
    digital = nn.Linear(integer_mvm.MIN_ROWS, 128)  # big enough for the int8 path to pay
    x = inputs(integer_mvm.MIN_OUTPUTS // 128, integer_mvm.MIN_ROWS)
    outputs = {}
    for exact_int8 in (False, True):
        layer = asim.convert(digital, asim.load_chip(
            "pcm", dac_input_scaling="calibrated", output_noise_std=0.0,
            mapping_integer_products=exact_int8))
        r = asim.calibrate(layer, x, percentile=99.0)[""]  # some inputs clip
        asim.program(layer, seed=0, instances=2)
        layer.eval()
        calls: list[int] = []
        monkeypatch.setattr(integer_mvm, "matmul",
                            lambda codes, planes, real=integer_mvm.matmul, calls=calls:
                            calls.append(1) or real(codes, planes))
        with torch.no_grad(), asim.instances_folded(layer):
            outputs[exact_int8] = layer(x.repeat(2, 1))
        monkeypatch.undo()
        assert bool(calls) == exact_int8
    # float32 products round differently in the last bits; where that moves a sum across an
    # ADC decision level, the two outputs differ by one ADC step (in layer units: ADC step ×
    # max|W| × r, drift compensation being 1 at programming)
    adc_step = periphery.quantisation_step(9, 12.0) * float(digital.weight.detach().abs().max()) * r
    difference = (outputs[True] - outputs[False]).abs()
    assert float(difference.max()) <= 1.01 * adc_step
    assert float((difference > 1e-4).float().mean()) < 1e-3


# ------------------------------------------------------------------------ the comparison page
