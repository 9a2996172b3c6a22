"""Crash-safe results: a run killed mid-way (SIGKILL) or stopped (SIGINT) leaves every finished
point readable, and the same command resumes to the numbers of an uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import analogsim as asim
from analogsim import cli
from analogsim.experiments.resume import describe_progress
from analogsim.results import ResultsWriter
from analogsim.train.reference import trained_digits_mlp

BASE_SPEC = (Path(__file__).parent / "bad_inputs" / "base_spec.toml.txt").read_text()

SPEC = """
[experiment]
name = "resume"
kind = "sweep"
[data]
dataset = "digits"
[model]
name = "mlp"
options = {{ in_features = 64, hidden = [64, 64], num_classes = 10 }}
checkpoint = "{checkpoint}"
[chip]
card = "pcm"
[sweep]
instances = 4
times_s = [1, 86400]
[[sweep.axes]]
field = "read_noise.scale"
values = [0.5, 1, 2, 4, 8]
mode = "scale"
[[sweep.axes]]
field = "adc.bits"
values = [6, 9]
"""

# Runs the CLI in a child process that sends itself ``signal`` after ``points`` written points.
CHILD = """
import os, signal, sys
from analogsim import cli, results
write_point, written = results.Run.write_point, []
def counting(self, index, **values):
    write_point(self, index, **values)
    if self.group.name == "/runs/sweep":
        written.append(index)
        if len(written) == {points}:
            os.kill(os.getpid(), signal.{signal})
results.Run.write_point = counting
sys.exit(cli.main(["run", "{spec}", "-o", "{output}", "--report", "{report}"]))
"""


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume")
    model, _ = trained_digits_mlp(seed=0, epochs=5)
    torch.save(model.state_dict(), folder / "mlp.pt")
    path = folder / "resume.toml"
    path.write_text(SPEC.format(checkpoint=folder / "mlp.pt"))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analogsim.cli", *args], capture_output=True,
                          text=True, check=False)


def _interrupted(spec_file, tmp_path, sig: str, points: int) -> subprocess.CompletedProcess:
    code = textwrap.dedent(CHILD).format(points=points, signal=sig, spec=spec_file,
                                         output=tmp_path / "run.h5", report=tmp_path / "report")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)


@pytest.fixture(scope="module")
def uninterrupted(spec_file, tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole")
    done = _cli("run", str(spec_file), "-o", str(folder / "whole.h5"), "--quiet", "--report",
                str(folder / "report"))
    assert done.returncode == 0, done.stderr
    return asim.load_results(folder / "whole.h5").runs["sweep"].data["accuracy"]


def test_a_run_killed_with_sigkill_keeps_its_points_and_resumes_to_the_same_numbers(
        spec_file, uninterrupted, tmp_path):
    killed = _interrupted(spec_file, tmp_path, "SIGKILL", points=4)
    assert killed.returncode == -signal.SIGKILL
    partial = asim.load_results(tmp_path / "run.h5").runs["sweep"]
    assert int(partial.done.sum()) == 4  # every finished point, readable
    finished = partial.done
    np.testing.assert_array_equal(partial.data["accuracy"][finished], uninterrupted[finished])
    assert np.isnan(partial.data["accuracy"][~finished]).all()
    resumed = _cli("run", str(spec_file), "-o", str(tmp_path / "run.h5"), "--report",
                   str(tmp_path / "report"))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {tmp_path / 'run.h5'}: 4 of 10 sweep points done\n" in resumed.stdout
    final = asim.load_results(tmp_path / "run.h5").runs["sweep"]
    assert final.done.all()
    np.testing.assert_array_equal(final.data["accuracy"], uninterrupted)


def test_sigint_stops_after_the_point_in_flight_and_resumes(spec_file, uninterrupted, tmp_path):
    stopped = _interrupted(spec_file, tmp_path, "SIGINT", points=3)
    assert stopped.returncode == 130, stopped.stderr
    assert "run the same command again to resume" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert int(asim.load_results(tmp_path / "run.h5").runs["sweep"].done.sum()) == 3
    resumed = _cli("run", str(spec_file), "-o", str(tmp_path / "run.h5"), "--quiet",
                   "--report", str(tmp_path / "report"))
    assert resumed.returncode == 0, resumed.stderr
    final = asim.load_results(tmp_path / "run.h5").runs["sweep"].data["accuracy"]
    np.testing.assert_array_equal(final, uninterrupted)


def test_a_file_of_another_spec_is_refused_not_overwritten(spec_file, tmp_path):
    target = tmp_path / "other.h5"
    first = _cli("run", str(spec_file), "-o", str(target), "--quiet", "--report",
                 str(tmp_path / "r1"))
    assert first.returncode == 0, first.stderr
    before = target.read_bytes()
    changed = tmp_path / "changed.toml"
    changed.write_text(spec_file.read_text().replace("instances = 4", "instances = 3"))
    refused = _cli("run", str(changed), "-o", str(target), "--report", str(tmp_path / "r2"))
    assert refused.returncode == 2
    assert "holds results of another spec" in refused.stderr and "Traceback" not in refused.stderr
    assert target.read_bytes() == before


def test_describe_progress_counts_points_and_trainings_in_the_users_terms(tmp_path):
    path = tmp_path / "progress.h5"
    with ResultsWriter(path) as writer:
        sweep = writer.create_run("sweep", axes={"adc.bits": range(4), "noise": range(4),
                                                 "instance": range(3)}, point_axes=2)
        for index in list(np.ndindex(4, 4))[:12]:
            sweep.write_point(index, accuracy=[0.5, 0.5, 0.5])
        training = writer.create_run("train_model_seed0", axes={"epoch": range(20)},
                                     metrics=("loss",), point_axes=1)
        for epoch in range(20):
            training.write_point((epoch,), loss=1.0)
    assert describe_progress(path) == "12 of 16 sweep points done, training of seed 0 finished"
    with ResultsWriter(path, fingerprint=None) as writer:  # a fresh file: several trainings
        writer.create_run("budget", axes={"knob": ["a"], "layer": ["0"]}, point_axes=0)
        for label, seed, epochs in (("sam", 0, 5), ("sam", 1, 5), ("sam", 2, 3)):
            run = writer.create_run(f"train_{label}_seed{seed}", axes={"epoch": range(5)},
                                    metrics=("loss",), point_axes=1)
            for epoch in range(epochs):
                run.write_point((epoch,), loss=1.0)
    assert describe_progress(path) == ("budget not finished, 2 trainings finished, training "
                                       "of sam seed 2: 3 of 5 epochs done")


def test_a_resumed_training_sweep_says_what_it_found_and_draws_no_empty_bars(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(BASE_SPEC)
    output = tmp_path / "run.h5"
    argv = ["run", str(spec), "-o", str(output), "--report", str(tmp_path / "report")]
    assert cli.main([*argv, "--quiet"]) == 0
    capsys.readouterr()
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert f"resuming {output}: 2 of 2 sweep points done, training of seed 0 finished\n" in out
    assert "0it" not in err and "points found" not in out  # no empty progress bars
