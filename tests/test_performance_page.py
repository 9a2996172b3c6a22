"""docs/performance.md is rendered from the benchmarks' result files, and holds no other figures."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def page() -> ModuleType:
    spec = importlib.util.spec_from_file_location("performance_page",
                                                  BENCHMARKS / "performance_page.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def result(figures: dict, mode: str = "full") -> dict:
    made = {"command": "python benchmarks/bench_x.py", "mode": mode, "date": "2026-01-02T03:04:05",
            "git_commit": "0123456789abcdef", "cpu": "Some CPU", "cores": 2, "threads": 1,
            "torch": "2.13.0", "python": "3.11.7", "load_average_end": [1.25, 1.0, 1.0],
            "wall_time_s": 12.3}
    return {"benchmark": "bench_x", "made": made, "figures": figures}


def test_the_committed_performance_page_is_what_the_results_give(page) -> None:
    assert page.PAGE.read_text(encoding="utf-8") == page.rendered_page(), (
        "docs/performance.md is stale: run python benchmarks/performance_page.py")


def test_the_template_holds_no_figures_outside_its_directives(page) -> None:
    prose = page.DIRECTIVE.sub("", page.TEMPLATE.read_text(encoding="utf-8"))
    figures = re.findall(r"\d+\.\d+|\d+\s*(?:×|%|ms\b|µs\b|ns\b|s\b|MiB\b|GiB\b|MB\b|pp\b)",
                         prose)
    assert not figures, f"hand-typed figures in the template: {figures}"


def test_every_result_file_the_template_names_is_committed(page) -> None:
    template = page.TEMPLATE.read_text(encoding="utf-8")
    named = {match.group(1).split()[1] for match in page.DIRECTIVE.finditer(template)}
    assert named <= set(page.load_results()), "run the benchmarks that have no result file"


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("bench_*.py")), ids=lambda p: p.stem)
def test_every_benchmark_writes_its_result_file(script: Path) -> None:
    assert f'write_results("{script.stem}"' in script.read_text(encoding="utf-8")


def test_directives_render_values_ranges_tables_and_how_they_were_made(page) -> None:
    results = {"bench_x": result({"ratio": 1.2345, "low": 0.5, "high": 2.0, "met": False,
                                  "rows": [{"name": "a", "time_s": 0.0015, "n": 1234},
                                           {"name": "b", "time_s": None, "n": 5}]},
                                 mode="--quick")}
    template = ("r {{value bench_x ratio ratio}}, {{value bench_x met met}}, "
                "{{range bench_x low high ratio}}\n"
                '{{table bench_x rows "name|text|name" "time_s|ms|time" "n|int|count"}}\n'
                "{{made bench_x}}")
    lines = page.render(template, results).splitlines()
    assert lines[0] == "r 1.23×, **not met**, 0.50×–2.00×"
    assert lines[1:5] == ["| name | time | count |", "|---|---|---|", "| a | 1.50 ms | 1,234 |",
                          "| b | — | 5 |"]
    assert lines[5] == ("Made by `python benchmarks/bench_x.py`, reduced mode `--quick` on "
                        "2026-01-02 (commit 0123456789): Some CPU, 2 cores, 1 torch thread, "
                        "torch 2.13.0, Python 3.11.7; load average 1.2 at the end, 12 s in all.")


def test_a_missing_result_file_or_unknown_directive_is_refused(page) -> None:
    with pytest.raises(KeyError, match=r"'bench_y', which has no result file"):
        page.render("{{value bench_y a ratio}}", {"bench_x": result({})})
    with pytest.raises(ValueError, match="unknown directive 'plot'"):
        page.render("{{plot bench_x a}}", {"bench_x": result({})})
    with pytest.raises(ValueError, match="unknown format 'furlongs'"):
        page.render("{{value bench_x a furlongs}}", {"bench_x": result({"a": 1})})


def test_run_mode_names_the_options_that_reduce_the_workload(page) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    assert page.run_mode(parser, parser.parse_args(["--threads", "1"])) == "full"
    assert page.run_mode(parser, parser.parse_args(["--quick", "--repeats", "2"])) == (
        "--repeats 2 --quick")
