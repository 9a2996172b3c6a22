"""The CLI on files it cannot use and on missing extras: exit code 2 and one line on stderr.

An unwritable output path, a folder given where a file is expected and a missing optional
package (aihwkit, Dask) are each one line naming the file or the ``make`` target that installs
the package; ``--debug`` shows the traceback instead. The CLI runs in-process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cli_check import one_line_exit_2

from analogsim import cli
from analogsim.errors import MissingExtraError, SpecError
from analogsim.results import ResultsWriter

SPEC = (Path(__file__).parent / "bad_inputs" / "base_spec.toml.txt").read_text()


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    return path


def test_output_under_a_file_is_refused_before_training(spec, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    one_line_exit_2(["run", str(spec), "--quiet", "-o", str(blocker / "out.h5"), "--report",
                     str(tmp_path / "report")], rf"analogsim run: error: .*{blocker.name}",
                    capsys)
    assert not (tmp_path / "report").exists()


def test_output_that_is_a_folder_is_refused(spec, tmp_path, capsys):
    folder = tmp_path / "out.h5"
    folder.mkdir()
    one_line_exit_2(["run", str(spec), "--quiet", "-o", str(folder), "--report",
                     str(tmp_path / "report")], r"analogsim run: error: .*out\.h5", capsys)


@pytest.mark.skipif(sys.platform == "win32" or not hasattr(sys, "getuid") or sys.getuid() == 0,
                    reason="root writes to read-only folders")
def test_read_only_output_folder_is_refused(spec, tmp_path, capsys):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        one_line_exit_2(["run", str(spec), "--quiet", "-o", str(folder / "out.h5"),
                         "--report", str(tmp_path / "report")],
                        r"analogsim run: error: .*(Permission denied|errno = 13)", capsys)
    finally:
        folder.chmod(0o700)


def test_report_into_a_file_is_refused(tmp_path, capsys):
    results = tmp_path / "results.h5"
    with ResultsWriter(results, command="test") as writer:
        writer.create_run("r", axes={"x": [1, 2], "instance": range(3)})
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    one_line_exit_2(["report", str(results), "-o", str(blocker / "report")],
                    rf"analogsim report: error: .*{blocker.name}", capsys)


def test_a_folder_given_as_the_spec(tmp_path, capsys):
    one_line_exit_2(["run", str(tmp_path), "--quiet"],
                    rf"analogsim run: error: spec file '.*{tmp_path.name}' is a folder; "
                    "expected a file", capsys)


def test_a_missing_spec(tmp_path, capsys):
    one_line_exit_2(["run", str(tmp_path / "none.toml"), "--quiet"],
                    r"spec file '.*none\.toml' does not exist", capsys)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(SpecError, match="is a folder"):
        cli.main(["run", str(tmp_path), "--quiet", "--debug"])


def _without(monkeypatch, package: str, *ours: str) -> None:
    """Make ``import package`` fail (and drop the modules of ours that imported it)."""
    for name in list(sys.modules):
        if name == package or name.startswith(f"{package}.") or name in ours:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)


def test_crosscheck_without_aihwkit_names_the_make_target(monkeypatch, capsys):
    _without(monkeypatch, "aihwkit", "analogsim.backends.aihwkit_backend")
    one_line_exit_2(["crosscheck", "pcm", "--quiet", "--devices", "10", "--instances", "1"],
                    r"analogsim crosscheck: error: the aihwkit backend needs aihwkit 1\.2\.0.*"
                    r"`make aihwkit` builds and installs it", capsys)


def test_in_memory_training_without_aihwkit_is_a_missing_extra(monkeypatch):
    _without(monkeypatch, "aihwkit", "analogsim.backends.aihwkit_training")
    with pytest.raises(ImportError, match=r"`make aihwkit`") as caught:
        import analogsim.backends.aihwkit_training  # noqa: F401
    assert isinstance(caught.value, MissingExtraError)


def test_cluster_without_dask_names_the_make_target(spec, monkeypatch, tmp_path, capsys):
    _without(monkeypatch, "distributed")
    one_line_exit_2(["run", str(spec), "--quiet", "-o", str(tmp_path / "out.h5"), "--report",
                     str(tmp_path / "report"), "--cluster", "local:1"],
                    r"analogsim run: error: --cluster needs Dask distributed.*`make test`",
                    capsys)
