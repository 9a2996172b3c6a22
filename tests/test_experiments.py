"""Experiment specs: validation errors, and reduced S0/S1 runs end to end (spec → HDF5 → report)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import analogsim as asim
from analogsim.errors import SpecError
from analogsim.experiments.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
REPRODUCE = ROOT / "benchmarks" / "reproduce"


def reduced(spec_file: Path, tmp_path: Path, **replacements: str) -> Path:
    """The shipped spec with its workload cut down (digits MLP, 2 epochs, 1–2 seeds)."""
    text = spec_file.read_text()
    text = re.sub(r'dataset = "\w+"', 'dataset = "digits"', text)
    text = re.sub(r'name = "lenet5(_bn)?"', 'name = "mlp"', text)
    text = re.sub(r"epochs = \d+", "epochs = 2", text)
    text = re.sub(r"length = \d+", "length = 2", text)
    text = re.sub(r"seeds = \[[^]]*\]", "seeds = [0, 1]", text)
    text = re.sub(r"chip_instances = \d+", "chip_instances = 2", text)
    text = re.sub(r"attack_draws = \d+", "attack_draws = 1", text)
    for old, new in replacements.items():
        text = text.replace(old, new)
    path = tmp_path / spec_file.name
    path.write_text(text)
    return path


@pytest.mark.parametrize("spec", sorted(REPRODUCE.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_specs_validate(spec):
    assert load_spec(spec).name


@pytest.mark.slow
def test_reduced_s0_runs_and_reports(tmp_path):
    spec = reduced(REPRODUCE / "s0_noise_aware_sam.toml", tmp_path)
    done = subprocess.run([sys.executable, "-m", "analogsim.cli", "run", str(spec), "--quiet",
                           "-o", str(tmp_path / "s0.h5"), "--report", str(tmp_path / "report")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = asim.load_results(tmp_path / "s0.h5")
    assert results.config["spec"] == spec.read_text()
    attack = results.runs["attack"]
    assert list(attack.axes["method"]) == ["standard", "naive", "sam", "multistep_sam"]
    assert attack.data["accuracy"].shape == (4, 9, 2) and np.isfinite(attack.data["accuracy"]).all()
    assert attack.done.all() and results.runs["chip"].done.all()
    assert np.isfinite(results.runs["training_time"].data["seconds"]).all()
    history = results.runs["train_sam_seed1"]
    assert np.isfinite(history.data["gradient_norm"]).all() and history.done.all()
    page = (tmp_path / "report" / "index.html").read_text()
    for image in re.findall(r'<img src="([^"]+)"', page):
        assert (tmp_path / "report" / image).stat().st_size > 1000


def test_hardware_aware_training_through_a_card(tmp_path):
    spec_file = _spec(tmp_path, BASE.replace("epochs = 1", "epochs = 3").replace(
                                             '[[methods]]\nkind = "standard"',
                                             '[[methods]]\nkind = "standard"\n\n[[methods]]\n'
                                             'label = "hwa"\nkind = "standard"\n'
                                             'train_chip = "pcm"'))
    spec = load_spec(spec_file)
    assert [m.train_chip for m in spec.methods] == [None, "pcm"]
    from analogsim.experiments.methods_comparison import run_methods_comparison

    run_methods_comparison(spec, tmp_path / "hwa.h5")
    attack = asim.load_results(tmp_path / "hwa.h5").runs["attack"]
    assert np.isfinite(attack.data["accuracy"]).all()
    standard, hardware_aware = attack.data["accuracy"][:, 0].mean(axis=-1)
    assert hardware_aware > 0.5 and hardware_aware > standard - 0.15  # it learns through tiles


@pytest.mark.slow
def test_reduced_s1_runs_its_grid(tmp_path):
    spec_file = reduced(REPRODUCE / "s1_incorruptible.toml", tmp_path)
    spec = load_spec(spec_file)
    labels = [m.label for m in spec.methods]
    assert "rwp_sigma=0.15" in labels and "sam_rho=0.2" in labels and "rwp_ramp_0.1" in labels
    done = subprocess.run([sys.executable, "-m", "analogsim.cli", "run", str(spec_file),
                           "--quiet", "-o", str(tmp_path / "s1.h5"), "--report",
                           str(tmp_path / "report")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    attack = asim.load_results(tmp_path / "s1.h5").runs["attack"]
    assert attack.attrs["attack_kind"] == "additive_maxabs"
    assert attack.data["accuracy"].shape == (len(labels), len(spec.evaluation.attack_sigmas), 2)
    assert np.isfinite(attack.data["accuracy"]).all()


def _spec(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


BASE = """
[experiment]
kind = "methods"
[data]
dataset = "digits"
[model]
name = "mlp"
[training]
epochs = 1
[[methods]]
kind = "standard"
"""


@pytest.mark.parametrize(("edit", "message"), [
    (('name = "mlp"', 'name = "vgg99"'), r"model\.name must be one of .*got 'vgg99'"),
    (('dataset = "digits"', 'dataset = "imagenet"'), r"data\.dataset must be one of"),
    (('kind = "standard"', 'kind = "adam"'), r"methods\[0\]\.kind must be one of"),
    (("epochs = 1", "epochs = 0"), r"epochs and batch_size must be ≥ 1"),
    (("epochs = 1", "epochs = 1\nlr = 3"), r"unknown key 'lr'"),
    (('kind = "methods"', 'kind = "sweeps"'), r"experiment\.kind must be one of"),
    (('[[methods]]\nkind = "standard"', '[[methods]]\nkind = "sam"\nrho = []'),
     r"methods\[0\]"),
], ids=["model", "dataset", "method", "epochs", "unknown-key", "kind", "empty-axis"])
def test_bad_specs_name_key_value_and_expectation(tmp_path, edit, message):
    with pytest.raises(SpecError, match=message):
        load_spec(_spec(tmp_path, BASE.replace(*edit)))


def test_bad_spec_exits_2_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "analogsim.cli", "run",
                           str(_spec(tmp_path, BASE.replace('"mlp"', '"vgg99"')))],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "vgg99" in done.stderr and "Traceback" not in done.stderr
