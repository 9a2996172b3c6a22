"""docs/performance.md from the benchmarks' result files and the page's template.

Each benchmark (``benchmarks/bench_*.py``) ends by writing what it measured to
``benchmarks/results/<bench>.json`` through :func:`write_results`: its figures, the mode it ran
in, and how it was made (date, machine, threads, torch and Python versions, git commit). The
template ``benchmarks/templates/performance.md.in`` holds the page's prose; every figure on the
page comes from a directive that reads a result file::

    {{value BENCH PATH FORMAT}}              one figure
    {{range BENCH PATH PATH FORMAT}}         two figures as "low–high"
    {{table BENCH PATH COLUMN...}}           one row per element of the list at PATH;
                                             COLUMN is "KEY|FORMAT|TITLE" (shell-quoted)
    {{made BENCH}}                           how, when and where the figures were made

PATH is a dotted path into the file's ``figures`` (``forward.pcm_over_floor``; list positions as
numbers). FORMAT is one of :data:`FORMATS`.

Run: ``python benchmarks/performance_page.py`` rewrites the page from the committed result
files; ``--check`` exits 1 when the page differs from what it would write
(``tests/test_performance_page.py`` runs the check).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
TEMPLATE = HERE / "templates" / "performance.md.in"
PAGE = ROOT / "docs" / "performance.md"
DIRECTIVE = re.compile(r"\{\{(.+?)\}\}", re.DOTALL)


# ------------------------------------------------------------------------ writing results


def cpu_name() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def git_commit() -> str | None:
    """The checked-out commit (``git rev-parse HEAD``), or None where git or the repository
    is not available."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=ROOT, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def made(mode: str, started: float) -> dict[str, Any]:
    """How a result was made: now, this machine, this process's torch settings."""
    import torch

    from analogsim.tiles import integer_mvm

    script = Path(sys.argv[0]).resolve()
    try:
        script_name = str(script.relative_to(ROOT))
    except ValueError:
        script_name = script.name
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "command": " ".join(["python", script_name, *sys.argv[1:]]),
        "mode": mode,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "amx": integer_mvm.amx_available(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_end": list(os.getloadavg()),
        "wall_time_s": time.perf_counter() - started,
    }


def run_mode(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """``"full"`` when every option that shapes the workload has its default, else those
    options as given (``"--quick"``, ``"--repeats 3"``); ``--threads`` is in the made line."""
    changed = []
    for action in parser._actions:
        name = action.dest
        if name in ("help", "threads") or not action.option_strings:
            continue
        value = getattr(args, name, action.default)
        if value != action.default:
            flag = action.option_strings[-1]
            changed.append(flag if isinstance(value, bool) else f"{flag} {value}")
    return " ".join(changed) or "full"


def write_results(bench: str, figures: dict[str, Any], *, mode: str, started: float) -> Path:
    """Write ``benchmarks/results/<bench>.json``: ``figures`` and how they were made.

    Args:
        bench: the benchmark's name (its script's stem).
        figures: what it measured, JSON-serialisable; units in the key names (``_s``, ``_ms``,
            ``_bytes``) or stated by the benchmark's docstring.
        mode: ``"full"``, or the reduced mode it ran in (e.g. ``"--quick"``).
        started: ``time.perf_counter()`` when the benchmark started (for its wall time).
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{bench}.json"
    document = {"benchmark": bench, "made": made(mode, started), "figures": figures}
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------ reading and formats


def load_results(folder: Path = RESULTS) -> dict[str, dict[str, Any]]:
    """Every benchmark's result file in ``folder`` (``bench_*.json``; other scripts keep
    theirs beside them), by benchmark name."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(folder.glob("bench_*.json"))}


def _ratio(value: float) -> str:
    return f"{value:.2f}×"


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


#: FORMAT of a directive → how a value shows on the page
FORMATS: dict[str, Callable[[Any], str]] = {
    "text": str,
    "int": lambda v: f"{int(v):,}",
    "float": lambda v: f"{v:.3g}",
    "number": lambda v: f"{v:g}",
    "decimal1": lambda v: f"{v:,.1f}",
    "decimal2": lambda v: f"{v:,.2f}",
    "ratio": _ratio,
    "ratio1": lambda v: f"{v:.1f}×",
    "at_most": lambda v: f"≤ {v:g}×",
    "at_least": lambda v: f"≥ {v:g}×",
    "s": lambda v: f"{v:.2f} s",
    "s3": lambda v: f"{v:.3f} s",
    "ms": lambda v: f"{1e3 * v:.2f} ms",
    "us": lambda v: f"{1e6 * v:.1f} µs",
    "ns": lambda v: f"{1e9 * v:.1f} ns",
    "millions": lambda v: f"{v / 1e6:.1f} M",
    "mib": _mib,
    "pp": lambda v: f"{v:.2f} pp",
    "percent": lambda v: f"{100 * v:.1f} %",
    "met": lambda v: "met" if v else "**not met**",
    "yes": lambda v: "yes" if v else "no",
    "date": lambda v: str(v)[:10],
}


def lookup(result: dict[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` into a result's figures (numbers index lists)."""
    value: Any = result["figures"]
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def formatted(value: Any, form: str) -> str:
    if value is None:
        return "—"
    if form not in FORMATS:
        raise ValueError(f"unknown format {form!r}; formats are {sorted(FORMATS)}")
    return FORMATS[form](value)


def table(result: dict[str, Any], path: str, columns: list[str]) -> str:
    """A markdown table: one row per element of the list at ``path``."""
    specs = [column.split("|", 2) for column in columns]
    if any(len(spec) != 3 for spec in specs):
        raise ValueError(f"a table column is 'KEY|FORMAT|TITLE'; got {columns}")
    lines = ["| " + " | ".join(title for _, _, title in specs) + " |",
             "|" + "---|" * len(specs)]
    for row in lookup(result, path):
        lines.append("| " + " | ".join(formatted(row.get(key), form) for key, form, _ in specs)
                     + " |")
    return "\n".join(lines)


def made_line(result: dict[str, Any]) -> str:
    """One sentence on how a result file was made."""
    m = result["made"]
    commit = (m.get("git_commit") or "unknown")[:10]
    mode = "" if m["mode"] == "full" else f", reduced mode `{m['mode']}`"
    return (f"Made by `{m['command']}`{mode} on {m['date'][:10]} (commit {commit}): "
            f"{m['cpu']}, {m['cores']} cores, {m['threads']} torch thread"
            f"{'s' if m['threads'] != 1 else ''}, torch {m['torch']}, Python {m['python']}; "
            f"load average {m['load_average_end'][0]:.1f} at the end, "
            f"{m['wall_time_s']:.0f} s in all.")


# ------------------------------------------------------------------------ the page


def render(template: str, results: dict[str, dict[str, Any]]) -> str:
    """The page: every directive of ``template`` replaced from ``results``."""

    def expand(match: re.Match[str]) -> str:
        verb, name, *rest = shlex.split(match.group(1))
        if name not in results:
            raise KeyError(f"the page names {name!r}, which has no result file; results: "
                           f"{sorted(results)} (run python benchmarks/{name}.py)")
        result = results[name]
        if verb == "value":
            path, form = rest
            return formatted(lookup(result, path), form)
        if verb == "range":
            low, high, form = rest
            return f"{formatted(lookup(result, low), form)}–{formatted(lookup(result, high), form)}"
        if verb == "table":
            path, *columns = rest
            return table(result, path, columns)
        if verb == "made":
            return made_line(result)
        raise ValueError(f"unknown directive {verb!r} in {match.group(0)}")

    return DIRECTIVE.sub(expand, template)


def rendered_page() -> str:
    """What the page should hold, from the committed template and result files."""
    return render(TEMPLATE.read_text(encoding="utf-8"), load_results())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    page = rendered_page()
    if args.check:
        if PAGE.read_text(encoding="utf-8") != page:
            print(f"{PAGE.relative_to(ROOT)} is stale: run python benchmarks/performance_page.py")
            return 1
        return 0
    PAGE.write_text(page, encoding="utf-8")
    print(PAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
