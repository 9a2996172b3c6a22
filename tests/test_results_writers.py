"""Read from the source (ast), beyond tests/test_architecture.py: which modules open an HDF5
file for writing, and which seed torch's global generator by any of its APIs.

Results files are written by ``analogsim/results.py`` and the experiment engine
(``analogsim/experiments/``) only; ``hardware/`` writes the lab's exchange files (targets,
read-backs, measurements), which are not results files, in the modules named below. Library
code seeds torch's global generator only in ``seeding.global_rng_seeded``, inside
``torch.random.fork_rng``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "analogsim"
TREES = {path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
         for path in sorted(PACKAGE.rglob("*.py"))}
WRITE_MODES = {"w", "w-", "x", "a", "r+"}
RESULTS_WRITERS = ("results.py", "experiments/")
EXCHANGE_WRITERS = {"hardware/chip_exchange.py", "hardware/measurement_writer.py"}
GLOBAL_SEEDING = {"torch.manual_seed", "torch.random.manual_seed", "torch.seed",
                  "torch.default_generator.manual_seed", "torch.default_generator.seed",
                  "torch.cuda.manual_seed", "torch.cuda.manual_seed_all", "torch.set_rng_state",
                  "torch.random.set_rng_state", "torch.cuda.set_rng_state"}


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


def test_only_results_the_engine_and_the_exchange_formats_write_hdf5():
    writers = {name for name, tree in TREES.items()
               if any(_opens_hdf5_for_writing(call) for call in _calls(tree))}
    assert "results.py" in writers  # the walk sees what it looks for
    assert {w for w in writers
            if not w.startswith(RESULTS_WRITERS) and w not in EXCHANGE_WRITERS} == set()


def test_library_code_seeds_the_global_generator_only_in_global_rng_seeded():
    found = [f"{name}:{call.lineno}" for name, tree in TREES.items() for call in _calls(tree)
             if _dotted(call.func) in GLOBAL_SEEDING]
    assert [where.split(":")[0] for where in found] == ["seeding.py"], found
