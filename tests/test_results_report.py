"""HDF5 results (write, read back, refuse foreign files) and the report drawn from them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import analogsim as asim
from analogsim.cards import chip_from_toml
from analogsim.errors import ResultsFileError
from analogsim.report import write_report
from analogsim.results import FORMAT_VERSION, ResultsWriter


def _write_example(path: Path) -> np.ndarray:
    values = np.random.default_rng(0).uniform(0.6, 0.9, size=(2, 3, 4))
    with ResultsWriter(path, command="test") as writer:
        writer.add_config("card_pcm", asim.load_chip("pcm").to_toml())
        run = writer.create_run(
            "drift", axes={"compensation": ["none", "global"], "time": [1.0, 3600.0, 86400.0],
                           "instance": range(4)},
            units={"time": "s"}, attrs={"title": "example", "test_samples": 450},
        )
        for i in range(2):
            for j in range(3):
                run.write_point((i, j), accuracy=values[i, j])
    return values


def test_results_round_trip(tmp_path):
    path = tmp_path / "r.h5"
    values = _write_example(path)
    results = asim.load_results(path)
    assert results.attrs["format_version"] == FORMAT_VERSION
    assert results.attrs["command"] == "test" and "torch_version" in results.attrs
    assert results.attrs["started"] <= results.attrs["finished"]
    assert asim.load_chip("pcm") == chip_from_toml(results.config["card_pcm"])
    run = results.runs["drift"]
    assert run.dims["accuracy"] == ("compensation", "time", "instance")
    assert list(run.axes) == ["compensation", "time", "instance"]
    assert list(run.axes["compensation"]) == ["none", "global"] and run.units["time"] == "s"
    np.testing.assert_array_equal(run.data["accuracy"], values)
    assert run.done.all()


def test_a_crash_keeps_every_written_point(tmp_path):
    path = tmp_path / "r.h5"
    writer = ResultsWriter(path)
    run = writer.create_run("grid", axes={"sigma": [0.1, 0.2], "instance": range(3)})
    run.write_point((0,), accuracy=[0.5, 0.6, 0.7])
    # no close(): the file is read while the writer still holds it, as after a crash
    results = asim.load_results(path)
    accuracy = results.runs["grid"].data["accuracy"]
    np.testing.assert_array_equal(accuracy[0], [0.5, 0.6, 0.7])
    assert np.isnan(accuracy[1]).all() and list(results.runs["grid"].done) == [True, False]
    writer.close()


def test_foreign_truncated_and_future_files_are_refused(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle["x"] = 1
    with pytest.raises(ResultsFileError, match="not an analogsim results file"):
        asim.load_results(foreign)
    good = tmp_path / "good.h5"
    _write_example(good)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ResultsFileError, match="not a readable HDF5 file"):
        asim.load_results(truncated)
    with h5py.File(good, "a") as handle:
        handle.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ResultsFileError, match=f"format version {FORMAT_VERSION + 1}"):
        asim.load_results(good)
    with pytest.raises(ResultsFileError, match="does not exist"):
        asim.load_results(tmp_path / "missing.h5")


def test_report_draws_every_run_and_every_image_exists(tmp_path):
    path = tmp_path / "r.h5"
    _write_example(path)
    index = write_report(path, tmp_path / "report")
    page = index.read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images == ["drift.png"]
    for image in images:
        assert (index.parent / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "card_pcm" in page and "format_version" in page and "[95" not in page.split("<table>")[0]


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "analogsim.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_cli_report_and_bad_input_exit_code(tmp_path):
    path = tmp_path / "r.h5"
    _write_example(path)
    done = _cli("report", str(path), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "out" / "index.html").is_file()
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w"):
        pass
    failed = _cli("report", str(foreign), cwd=tmp_path)
    assert failed.returncode == 2
    assert "not an analogsim results file" in failed.stderr and "Traceback" not in failed.stderr
    debug = _cli("report", str(foreign), "--debug", cwd=tmp_path)
    assert "Traceback" in debug.stderr


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    """The demo runs, writes its file and page, and drift compensation recovers drift loss."""
    done = _cli("demo", "--instances", "8", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = asim.load_results(tmp_path / "results" / "demo.h5")
    accuracy = results.runs["drift"].data["accuracy"]  # [compensation, time, instance]
    assert np.isfinite(accuracy).all()
    digital = results.runs["drift"].attrs["digital_accuracy"]
    assert digital > 0.9
    year_loss_without = digital - accuracy[0, -1].mean()
    year_loss_with = digital - accuracy[1, -1].mean()
    assert year_loss_without > 0 and year_loss_with < year_loss_without
    assert (tmp_path / "report" / "demo" / "drift.png").is_file()
    redrawn = _cli("report", "results/demo.h5", "-o", "again", cwd=tmp_path)
    assert redrawn.returncode == 0 and (tmp_path / "again" / "index.html").is_file()
