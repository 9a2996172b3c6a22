"""Check that a change of code changes no number: results files of two commits, bit for bit.

Runs ``analogsim demo`` and ``analogsim run`` on each spec of this folder with the code of a base
commit (checked out into a temporary git worktree) and with the working tree, then compares every
dataset and every numeric attribute of the two results files with ``numpy.array_equal``. What may
differ is only what describes the run rather than its numbers: times, host, versions, the git
commit and the command line, and the values (not the shape) of wall-time datasets.

Run: ``python benchmarks/identity/check_identical.py BASE_COMMIT`` (from the repository root, in
the environment ``make test`` builds). Exit code 0 when every file is identical.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted(Path(__file__).parent.glob("*.toml"))
# Root attributes that describe the run, not its numbers.
RUN_DESCRIPTION = {"started", "finished", "command", "host", "git_commit", "analogsim_version",
                   "torch_version", "numpy_version", "h5py_version", "aihwkit_version",
                   "python_version"}
# Datasets of wall times: compared by shape only.
WALL_TIMES = {"seconds"}


def produce(code: Path, out: Path) -> list[Path]:
    """Results files of the demo and of every spec, made with the package at ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code), "MPLBACKEND": "Agg"}
    out.mkdir(parents=True, exist_ok=True)
    commands = [["demo", "--instances", "8", "--results", str(out / "demo.h5"),
                 "--report", str(out / "demo_report")]]
    commands += [["run", str(spec), "-o", str(out / f"{spec.stem}.h5"),
                  "--report", str(out / f"{spec.stem}_report")] for spec in SPECS]
    for command in commands:
        subprocess.run([sys.executable, "-m", "analogsim.cli", *command, "--quiet"], env=env,
                       cwd=out, check=True)
    return sorted(out.glob("*.h5"))


def differences(a: Path, b: Path) -> list[str]:
    """Where two results files differ in a dataset or a non-descriptive attribute."""
    found: list[str] = []
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names_a: list[str] = []
        names_b: list[str] = []
        fa.visit(names_a.append)
        fb.visit(names_b.append)
        if sorted(names_a) != sorted(names_b):
            found.append(f"objects differ: {sorted(set(names_a) ^ set(names_b))}")
        for name in ["/", *sorted(set(names_a) & set(names_b))]:
            obj_a, obj_b = fa[name], fb[name]
            if isinstance(obj_a, h5py.Dataset):
                wall_time = name.rpartition("/")[2] in WALL_TIMES
                if (obj_a.shape != obj_b.shape if wall_time
                        else not np.array_equal(obj_a[()], obj_b[()])):
                    found.append(f"dataset {name}")
            for key in set(obj_a.attrs) | set(obj_b.attrs):
                if name == "/" and key in RUN_DESCRIPTION:
                    continue
                if key not in obj_a.attrs or key not in obj_b.attrs:
                    found.append(f"attribute {name}@{key} in one file only")
                elif not np.array_equal(obj_a.attrs[key], obj_b.attrs[key]):
                    found.append(f"attribute {name}@{key}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the commit to compare the working tree with")
    parser.add_argument("--keep", type=Path, help="keep the results files in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        base_code = Path(scratch) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base_code), args.base],
                       cwd=ROOT, check=True, capture_output=True)
        try:
            before = produce(base_code, folder / "before")
            after = produce(ROOT, folder / "after")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_code)], cwd=ROOT,
                           check=True)
        failed = 0
        for a, b in zip(before, after, strict=True):
            found = differences(a, b)
            failed += bool(found)
            print(f"{a.name}: {'identical' if not found else 'DIFFERENT: ' + '; '.join(found)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
