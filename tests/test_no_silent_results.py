"""No silent wrong result, no late failure (issue 17, part 3): a wrong input width, evaluating an
unprogrammed model, measured conductances no chip gives, absurd drift times and more chip
instances than memory holds are each refused up front, naming the thing, the value and what
was expected; at the CLI with exit code 2 and one line."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest
import torch
from cli_check import one_line_exit_2
from torch import nn

import analogsim as asim
from analogsim.conversion import analog_layers
from analogsim.errors import DataError, ResourceError, ShapeError, StateError, UsageError
from analogsim.experiments.sweep import SweepPlan
from analogsim.hardware.chip_exchange import evaluate_readback, export_targets, simulate_readback
from analogsim.memory import estimate_memory, parse_memory
from analogsim.tiles.programmed import STATE_BUFFERS

CARDS = ["ideal", "pcm", "rram", "generic"]


@pytest.fixture
def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


# ------------------------------------------------------------------ 1. input width


@pytest.mark.parametrize("card", CARDS)
@pytest.mark.parametrize("programmed", [False, True], ids=["live", "programmed"])
def test_every_tile_rejects_a_wrong_input_width(mlp, card, programmed):
    analog = asim.convert(mlp, card)
    if programmed:
        asim.program(analog).eval()
    for width in (70, 60):
        with pytest.raises(ShapeError, match=rf"layer '0' \(AnalogLinear\): input of shape "
                                             rf"\(4, {width}\) has {width} features .*expected "
                                             r"in_features = 64"):
            analog(torch.randn(4, width))
    assert analog(torch.randn(4, 64)).shape == (4, 10)


@pytest.mark.parametrize("card", CARDS)
def test_a_convolution_rejects_other_channels_and_unbatched_inputs(card):
    analog = asim.convert(nn.Sequential(nn.Conv2d(3, 4, 3)), card)
    with pytest.raises(ShapeError, match=r"layer '0' \(AnalogConv2d\): input of shape "
                                         r"\(2, 5, 8, 8\) has 5 channels; expected \(batch, "
                                         r"in_channels = 3, 2 spatial dimensions\)"):
        analog(torch.randn(2, 5, 8, 8))
    with pytest.raises(ShapeError, match=r"has 3 dimensions; expected \(batch, in_channels"):
        analog(torch.randn(3, 8, 8))
    assert analog(torch.randn(2, 3, 8, 8)).shape == (2, 4, 6, 6)


def test_a_layer_built_directly_is_named_by_its_position():
    layer = asim.AnalogLinear(8, 2, chip="pcm", layer_index=3)
    with pytest.raises(ShapeError, match=r"layer #3 \(AnalogLinear\): .* 9 features"):
        layer(torch.randn(1, 9))


# ------------------------------------------------------------------ 2. evaluate unprogrammed


def test_evaluate_refuses_an_unprogrammed_converted_model(mlp):
    x, y = torch.randn(20, 64), torch.randint(0, 10, (20,))
    analog = asim.convert(mlp, "pcm")
    with pytest.raises(StateError, match=r"analog layers \['0', '2'\] are not programmed; call "
                                         r"analogsim\.program\(model"):
        asim.evaluate(analog, (x, y))
    live = asim.evaluate(analog, (x, y), unprogrammed="live")
    assert live.weights == "live" and str(live).endswith("on unprogrammed (live) weights")
    with pytest.raises(UsageError, match=r"'unprogrammed' of evaluate must be 'error' or "
                                         r"'live'; got 'yes'"):
        asim.evaluate(analog, (x, y), unprogrammed="yes")
    asim.program(analog, instances=2)
    programmed = asim.evaluate(analog, (x, y))
    assert programmed.weights == "programmed" and "unprogrammed" not in str(programmed)
    digital = asim.evaluate(mlp, (x, y))  # no analog layer: evaluates as before
    assert digital.weights == "digital"


def test_hardware_aware_training_still_evaluates_its_live_weights(mlp):
    from analogsim.datasets import load
    from analogsim.train import Standard, TrainingConfig, fit

    data = load("digits")
    analog = asim.convert(nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)), "pcm")
    history = fit(analog, data, Standard(), TrainingConfig(epochs=1, batch_size=256))
    assert 0 < history[0].test_accuracy <= 1


# ------------------------------------------------------------------ 3. measured conductances


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """A model file, its targets and a simulated read-back (2 chips, 2 times)."""
    from analogsim.hardware.model_file import save_model_file

    folder = tmp_path_factory.mktemp("exchange")
    options = {"in_features": 64, "hidden": [16], "num_classes": 10}
    model = asim.models.create("mlp", **options)
    chip = asim.load_chip("pcm")
    save_model_file(folder / "model.pt", model, "mlp", options, chip, "digits")
    export_targets(model, chip, folder / "targets.h5", model_name="mlp")
    simulate_readback(folder / "targets.h5", folder / "readback.h5", chip, [0.0, 3600.0],
                      instances=2)
    return folder, model, chip


def _broken_readback(folder, out, name, change):
    path = out / f"{name}.h5"
    path.write_bytes((folder / "readback.h5").read_bytes())
    with h5py.File(path, "a") as handle:
        change(handle)
    return path


def _scale(factor):
    def change(handle):
        for group in handle["layers"].values():
            group["g_uS"][...] = group["g_uS"][()] * factor
    return change


def _negative(handle):
    g = handle["layers/1/g_uS"]
    values = g[()]
    values[1, 0, 0, 2, 3] = -0.5
    g[...] = values


def _times(handle):
    handle.attrs["times_s"] = np.array([0.0, np.inf])


READBACKS = {
    "siemens": (_scale(1e-6), r"layers/1/g_uS tops out at .*, which looks like siemens; "
                              r"multiply by 1e6 to give µS"),
    "negative": (_negative, r"read 1, chip 0, device 0, output 2, row 3, layers/1/g_uS: "
                            r"negative conductance -0\.5 µS; conductances are ≥ 0 µS"),
    "nan": (_scale(np.nan), r"layers/1/g_uS: the value is nan; every conductance must be a "
                            r"finite number in µS"),
    "infinite_time": (_times, r"attribute times_s = \[0\.0, inf\]; expected one time per "
                              r"read, each a time ≥ 0 s"),
}


@pytest.mark.parametrize("case", list(READBACKS))
def test_evaluate_readback_refuses_what_fit_device_refuses(exchange, case, capsys, tmp_path):
    folder, model, chip = exchange
    change, pattern = READBACKS[case]
    path = _broken_readback(folder, tmp_path, case, change)
    test = (torch.randn(8, 64), torch.randint(0, 10, (8,)))
    with pytest.raises(DataError, match=pattern):
        evaluate_readback(model, chip, path, test)
    one_line_exit_2(["evaluate-readback", str(folder / "model.pt"), str(path), "-o",
               str(tmp_path / "lab.h5"), "--report", str(tmp_path / "report"), "--quiet"],
              pattern, capsys)
    assert not (tmp_path / "lab.h5").exists()


def test_loading_measured_conductances_into_a_tile_checks_them(mlp):
    analog = asim.program(asim.convert(mlp, "pcm"), instances=2)
    tile = analog[0].tile
    g = tile.g_programmed.clone()
    g[1, 0, 3, 5] = -1.0
    with pytest.raises(DataError, match=r"layer 0: index \(1, 0, 3, 5\) \(instance, device, "
                                        r"output, row\), measured conductances: negative "
                                        r"conductance -1 µS"):
        tile.load_measured(g, 0.0, programmed=True)
    with pytest.raises(DataError, match=r"looks like siemens"):
        tile.load_measured(tile.g_programmed * 1e-6, 0.0, programmed=True)


# ------------------------------------------------------------------ 4. times


@pytest.mark.parametrize("t", [float("inf"), 1e300, float("nan"), 2e10])
def test_drift_refuses_infinite_and_absurd_times(mlp, t):
    analog = asim.program(asim.convert(mlp, "pcm"))
    got = re.escape(repr(t))
    with pytest.raises(UsageError, match=rf"'t_seconds' of drift must be a time ≥ 0 s and ≤ "
                                         rf"1e\+10 s \(about 317 years\); got {got}"):
        asim.drift(analog, t)
    asim.drift(analog, 1e10)  # the bound itself is a time


def test_a_sweep_plan_refuses_infinite_times():
    with pytest.raises(UsageError, match=r"times_s must be .* ≤ 1e\+10 s .*got \[1\.0, inf\]"):
        SweepPlan(times_s=(1.0, float("inf")))


# ------------------------------------------------------------------ 5. memory


@pytest.mark.parametrize("card, overrides", [
    ("pcm", {}), ("rram", {}), ("generic", {"per_read_noise.multiplicative_std": 0.01}),
    ("ideal", {}),
    ("pcm", {"coding.scheme": "sign+adaptive_mapping+redundancy", "coding.large_fraction": 0.02}),
], ids=["pcm", "rram", "generic-q", "ideal", "pcm-coded"])
@pytest.mark.parametrize("instances", [1, 8])
def test_the_memory_estimate_is_within_2x_of_the_programmed_buffers(mlp, card, overrides,
                                                                   instances):
    analog = asim.convert(mlp, asim.load_chip(card, **overrides))
    estimate = estimate_memory(analog, instances)
    asim.drift(asim.program(analog, instances=instances), 3600.0)
    # the buffers and the 1/f read-noise cache a drift builds (not the forward plan: no forward)
    measured = sum(getattr(layer.tile, name).nbytes for _, layer in analog_layers(analog)
                   for name in STATE_BUFFERS)
    measured += sum(layer.tile.read_noise_q.nbytes for _, layer in analog_layers(analog)
                    if layer.tile.read_noise_q is not None)
    assert measured / 2 <= estimate.total <= 2 * measured, (estimate, measured)


def test_the_activation_estimate_takes_batch_norm_models_and_leaves_them_unchanged():
    # one sample through a model with batch norm: eval mode, its running statistics unchanged
    model = asim.convert(nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                       nn.Linear(16, 4)), "pcm").train()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    estimate = estimate_memory(model, 4, torch.randn(1, 8), batch_size=32)
    assert estimate.total > estimate_memory(model, 4).total and model.training
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_program_refuses_more_instances_than_memory_holds(mlp):
    analog = asim.convert(mlp, "pcm")
    with pytest.raises(ResourceError, match=r"programming 1000000000 chip instances needs about "
                                            r".* TiB .*more than the memory this machine has "
                                            r"available .*; at most \d+ instances fit"):
        asim.program(analog, instances=10**9)
    with pytest.raises(ResourceError, match=r"programming 1000 chip instances needs about .* "
                                            r"more than the max_memory limit \(1 MiB\); at most "
                                            r"\d+ instances fit: lower the instances, or raise "
                                            r"max_memory"):
        asim.program(analog, instances=1000, max_memory="1MiB")
    assert not analog[0].tile.is_programmed
    asim.program(analog, instances=4, max_memory="1GiB")
    assert isinstance(ResourceError("x"), MemoryError)


def test_memory_sizes_parse():
    assert parse_memory("8GiB") == 8 * 2**30 and parse_memory("512 MB") == 512 * 10**6
    assert parse_memory(2e9) == 2 * 10**9
    with pytest.raises(UsageError, match=r"a memory size must be a number of bytes .*got '8 "
                                         r"parsecs'"):
        parse_memory("8 parsecs")


SPEC = """[experiment]
name = "big"
kind = "sweep"

[data]
dataset = "digits"

[model]
name = "mlp"
options = { in_features = 64, hidden = [16], num_classes = 10 }

[training]
epochs = 1

[chip]
card = "pcm"

[sweep]
instances = INSTANCES
"""


@pytest.mark.parametrize("instances, extra, pattern", [
    (10**9, [], r"big: \[sweep\] instances = 1000000000: programming and evaluating "
                r"1000000000 chip instances needs about .* more than the memory this machine "
                r"has available .*; at most \d+ instances fit"),
    (5000, ["--max-memory", "100MB"], r"instances = 5000: .* more than the --max-memory limit "
                                      r"\(95\.4 MiB\); at most \d+ instances fit: lower the "
                                      r"instances, or raise --max-memory"),
    (2, ["--max-memory", "lots"], r"a memory size must be a number of bytes .*got 'lots'"),
], ids=["machine", "limit", "bad-limit"])
def test_run_refuses_a_sweep_that_would_not_fit_before_training(tmp_path, capsys, instances,
                                                                extra, pattern):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace("INSTANCES", str(instances)))
    one_line_exit_2(["run", str(spec), "--quiet", "-o", str(tmp_path / "out.h5"), "--report",
               str(tmp_path / "report"), *extra], pattern, capsys)
    assert not (tmp_path / "out.h5").exists()  # nothing trained, nothing written
