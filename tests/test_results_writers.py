"""Read from the source (ast): one writer of results files, and no process-wide seeding.

Only the experiment engine (``analogsim/experiments/``) and ``analogsim/results.py`` write
results files; training reports epochs through a callback and never imports ``results``; the
CLI opens no HDF5 file. ``hardware/`` writes the lab's exchange files (targets, read-backs,
measurements), which are not results files. Library code seeds torch's global generator only
inside ``seeding.global_rng_seeded``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "analogsim"
SOURCES = sorted(PACKAGE.rglob("*.py"))
WRITE_MODES = {"w", "w-", "x", "a", "r+"}
RESULTS_WRITERS = ("results.py", "experiments/")
EXCHANGE_WRITERS = ("hardware/chip_exchange.py", "hardware/measurements.py")


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _imported_modules(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` of an attribute chain ('' for anything else)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _calls(tree: ast.Module) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _opens_hdf5_for_writing(call: ast.Call) -> bool:
    if _dotted(call.func) != "h5py.File":
        return False
    modes = [call.args[1]] if len(call.args) > 1 else [
        k.value for k in call.keywords if k.arg == "mode"]
    return any(not isinstance(m, ast.Constant) or m.value in WRITE_MODES for m in modes)


@pytest.mark.parametrize("path", [p for p in SOURCES if _relative(p).startswith("train/")],
                         ids=_relative)
def test_training_does_not_import_results(path):
    assert not any(name == "analogsim.results" or name.startswith("analogsim.results.")
                   for name in _imported_modules(_tree(path)))


def test_only_the_engine_and_results_write_results_files():
    writers, hdf5_writers = set(), set()
    for path in SOURCES:
        tree, name = _tree(path), _relative(path)
        if any(n.endswith("ResultsWriter") for n in _imported_modules(tree)):
            writers.add(name)
        if any(_opens_hdf5_for_writing(call) for call in _calls(tree)):
            hdf5_writers.add(name)
    assert {w for w in writers if not w.startswith(RESULTS_WRITERS)} == set()
    assert {w for w in hdf5_writers
            if not w.startswith(RESULTS_WRITERS) and w not in EXCHANGE_WRITERS} == set()
    assert "results.py" in hdf5_writers  # the check sees what it looks for


def test_the_command_line_opens_no_hdf5_file():
    imported = _imported_modules(_tree(PACKAGE / "cli.py"))
    assert "h5py" not in imported
    assert not any(name.endswith("ResultsWriter") for name in imported)


def test_library_code_seeds_the_global_generator_only_in_global_rng_seeded():
    seeding = {"torch.manual_seed", "torch.random.manual_seed", "torch.seed",
               "torch.default_generator.manual_seed", "torch.cuda.manual_seed",
               "torch.cuda.manual_seed_all", "torch.set_rng_state", "torch.random.set_rng_state"}
    found = [(_relative(path), call.lineno) for path in SOURCES
             for call in _calls(_tree(path)) if _dotted(call.func) in seeding]
    assert [where for where, _ in found] == ["seeding.py"], found
