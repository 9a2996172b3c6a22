"""The aihwkit backend: card mapping, and statistical agreement with the native tile.

aihwkit is installed by `make test`; without it these tests are skipped with that reason.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

pytest.importorskip("aihwkit", reason="the aihwkit extra is not installed (make aihwkit)")

import analogsim as asim
from analogsim.backends.aihwkit_backend import (
    AihwkitMappingError,
    AihwkitModel,
    rpu_config,
)
from analogsim.crosscheck import compare_devices, compare_models

pytestmark = pytest.mark.aihwkit


def test_pcm_card_maps_onto_the_aihwkit_pcm_preset():
    chip = asim.load_chip("pcm")
    config = rpu_config(chip, "cpp")
    assert type(config).__name__ == "InferenceRPUConfig"
    assert config.forward.inp_res == pytest.approx(1 / 126)
    assert config.forward.out_res == pytest.approx(1 / 510)
    assert (config.forward.out_bound, config.forward.out_noise) == (12.0, 0.06)
    assert config.noise_model.prog_coeff == [0.26348, 1.9650, -1.1731]
    assert config.noise_model.prog_coeff_g_max_reference == 25.0
    assert config.mapping.max_input_size == 512 and config.mapping.weight_scaling_omega == 1.0
    assert type(config.drift_compensation).__name__ == "GlobalDriftCompensation"
    assert type(rpu_config(chip, "torch")).__name__ == "TorchInferenceRPUConfig"


@pytest.mark.parametrize(("overrides", "field"), [
    ({"conductance_levels": 16}, "conductance.levels"),
    ({"faults_stuck_low_fraction": 0.01}, "faults"),
    ({"drift_mean_slope": -0.02}, "drift.mean_slope"),
    ({"read_noise_q_exponent": 0.5}, "read_noise.q_exponent"),
    ({"per_read_noise_multiplicative_std": 0.01}, "per_read_noise.multiplicative_std"),
    ({"drift_compensation_readout": "ones"}, "drift_compensation.readout"),
    ({"conductance_pair": "single"}, "conductance.pair"),
], ids=["levels", "faults", "drift-law", "read-law", "mult-read", "readout", "single"])
def test_what_aihwkit_cannot_do_is_refused_by_name(overrides, field):
    with pytest.raises(AihwkitMappingError, match=f"cannot map {field.replace('.', '[.]')}"):
        rpu_config(asim.load_chip("pcm", **overrides))


def test_generic_card_and_torch_tile_weight_noise_are_refused():
    with pytest.raises(AihwkitMappingError, match=r"cannot map conductance\.levels = 64"):
        asim.convert(nn.Linear(3, 2), "generic", backend="aihwkit")
    plain = asim.load_chip("generic", conductance_levels=None, faults_stuck_low_fraction=0.0,
                           faults_stuck_high_fraction=0.0, per_read_noise_multiplicative_std=0.0)
    with pytest.raises(AihwkitMappingError, match=r"programming\.law = 'gaussian'"):
        asim.convert(nn.Linear(3, 2), plain, backend="aihwkit")
    with pytest.raises(AihwkitMappingError, match="use tile='cpp'"):
        rpu_config(asim.load_chip("pcm", per_read_noise_additive_std=0.01), "torch")


def test_program_drift_evaluate_work_unchanged(mlp):
    x, y = torch.randn(40, 64), torch.randint(0, 10, (40,))
    analog = asim.convert(mlp, "pcm", backend="aihwkit", aihwkit_tile="torch")
    assert isinstance(analog, AihwkitModel)
    asim.program(analog, seed=0, instances=3)
    asim.drift(analog, 3600.0)
    first = asim.evaluate(analog, (x, y), seed=1)
    assert first.accuracy.shape == (3,)
    asim.drift(analog, 3600.0)
    again = asim.evaluate(analog, (x, y), seed=1)
    assert (first.accuracy == again.accuracy).all()  # the torch tile's noise is seeded too
    state = torch.random.get_rng_state()
    asim.drift(analog, 86400.0)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG is untouched


@pytest.mark.parametrize("card", ["pcm", "rram"])
def test_device_statistics_agree_with_aihwkit(card):
    """Programmed conductances, ν and g(t): two-sample KS p > 0.01 (or moments within 3 %)."""
    chip = asim.load_chip(card)
    times = [3600.0, 86400.0] if card == "pcm" else [86400.0, 172800.0]
    targets = [0.2 * chip.conductance.g_max_uS, 0.6 * chip.conductance.g_max_uS,
               chip.conductance.g_max_uS]
    rows = compare_devices(chip, targets, times, devices=10_000, seed=0)
    quantities = {row.quantity for row in rows}
    assert {"programmed", *(f"t={t:g}" for t in times)} <= quantities
    if card == "pcm":
        assert "drift_exponents" in quantities
    disagreeing = [row for row in rows if not row.agrees]
    assert not disagreeing, disagreeing


@pytest.mark.slow
def test_digits_mlp_accuracy_agrees_with_aihwkit_on_pcm():
    """32 instances per backend at 1 h and 1 day with drift compensation: the CIs overlap."""
    rows = compare_models(asim.load_chip("pcm"), [3600.0, 86400.0], instances=32, seed=0)
    for row in rows:
        assert row.agrees, (row.t_seconds, row.native, row.aihwkit)
        assert abs(row.native.mean - row.aihwkit.mean) < 0.01


def test_only_the_backend_imports_aihwkit():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "analogsim"
    importers = {str(p.relative_to(root)) for p in root.rglob("*.py")
                 if "import aihwkit" in p.read_text() or "from aihwkit" in p.read_text()}
    assert importers <= {"backends/aihwkit_backend.py", "backends/aihwkit_training.py"}


def test_package_imports_without_aihwkit():
    code = ("import sys; sys.modules['aihwkit'] = None; import analogsim as asim, torch; "
            "m = asim.convert(torch.nn.Linear(3, 2), 'pcm'); asim.program(m); print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


@pytest.mark.slow
def test_crosscheck_cli_prints_both_backends():
    done = subprocess.run([sys.executable, "-m", "analogsim.cli", "crosscheck", "pcm",
                           "--instances", "8", "--devices", "5000"], capture_output=True,
                          text=True)
    assert done.returncode in (0, 1), done.stderr
    assert "native" in done.stdout and "aihwkit" in done.stdout and "KS p" in done.stdout


def test_modules_aihwkit_leaves_digital_are_named_in_a_warning():
    model = nn.Sequential(nn.Linear(4, 4), nn.MultiheadAttention(4, 2), nn.LSTM(4, 3))
    with pytest.warns(asim.errors.DigitalRemainderWarning, match="aihwkit backend") as caught:
        asim.convert(model, "pcm", backend="aihwkit")
    assert caught[0].message.layers == ("1", "2")
