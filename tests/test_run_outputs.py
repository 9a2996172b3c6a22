"""What ``analogsim run -o X`` does with files: one writer per results file (a second run on it
is refused at once, naming the holder, and the first finishes intact), and a report drawn to a
folder named after X, so two runs of one spec keep two reports."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import analogsim as asim
from analogsim import cli, file_lock
from analogsim.errors import ResultsFileError
from analogsim.file_lock import lock_path
from analogsim.results import ResultsWriter

SPEC = (Path(__file__).parent / "bad_inputs" / "base_spec.toml.txt").read_text()

# The CLI in a child process that pauses after its first sweep point until ``go`` exists.
CHILD = """
import pathlib, sys, time
from analogsim import cli, results
write_point = results.Run.write_point
def pausing(self, index, **values):
    write_point(self, index, **values)
    if self.group.name == "/runs/sweep" and not pathlib.Path({go!r}).exists():
        pathlib.Path({ready!r}).touch()
        deadline = time.monotonic() + 120
        while not pathlib.Path({go!r}).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
results.Run.write_point = pausing
sys.exit(cli.main(["run", {spec!r}, "--quiet", "-o", {output!r}, "--report", {report!r}]))
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    return path


def test_a_second_writer_of_one_file_is_refused_naming_the_holder(tmp_path):
    path = tmp_path / "run.h5"
    with ResultsWriter(path):
        record = json.loads(lock_path(path).read_text())
        assert record["pid"] == os.getpid() and record["host"] == platform.node()
        with pytest.raises(ResultsFileError, match=(
                rf"run\.h5 is being written by another analogsim run \(pid {os.getpid()} on "
                rf"host {re.escape(platform.node())}, started \d{{4}}-.*; wait for it to "
                r"finish, or write to another results file")):
            ResultsWriter(path)
    assert not lock_path(path).exists()  # released on close
    with ResultsWriter(path):  # and free for the next writer
        pass


@pytest.mark.parametrize("flock", [True, False], ids=["flock", "record only"])
def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, monkeypatch, flock):
    if not flock:  # a file system without flock: the holder's record decides
        monkeypatch.setattr(file_lock, "fcntl", None)
    path = tmp_path / "run.h5"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    lock_path(path).write_text(json.dumps({"pid": int(dead.stdout), "host": platform.node(),
                                           "started": "2020-01-01T00:00:00+00:00"}))
    with ResultsWriter(path):
        assert json.loads(lock_path(path).read_text())["pid"] == os.getpid()
        with pytest.raises(ResultsFileError, match=f"pid {os.getpid()} on host"):
            ResultsWriter(path)  # a live holder is respected either way


def test_a_second_run_on_a_file_being_written_is_refused_and_the_first_finishes(
        spec, tmp_path, capsys):
    output, ready, go = tmp_path / "run.h5", tmp_path / "ready", tmp_path / "go"
    code = textwrap.dedent(CHILD).format(go=str(go), ready=str(ready), spec=str(spec),
                                         output=str(output), report=str(tmp_path / "r1"))
    first = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), first.communicate()[1]
        code = cli.main(["run", str(spec), "-o", str(output), "--report", str(tmp_path / "r2")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert re.fullmatch(rf"analogsim run: error: .*run\.h5 is being written by another "
                            rf"analogsim run \(pid {first.pid} on host .*, started .*\).*",
                            err[0]), err[0]
        assert not (tmp_path / "r2").exists()
    finally:
        go.touch()
        _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert asim.load_results(output).runs["sweep"].done.all()  # the first run, intact
    assert not lock_path(output).exists()


def test_two_runs_of_one_spec_with_different_outputs_keep_two_reports(
        spec, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("first", "second"):
        assert cli.main(["run", str(spec), "-o", f"results/{name}.h5"]) == 0
        assert f"report:  {Path('report', name, 'index.html')}" in capsys.readouterr().out
    first, second = (tmp_path / "report" / name / "index.html" for name in ("first", "second"))
    assert first.is_file() and second.is_file()
    assert "first.h5" in first.read_text() and "second.h5" in second.read_text()
