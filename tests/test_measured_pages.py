"""Each docs page written by a measuring script is what its committed JSON gives: no figure on
it is typed by hand, and none is stale."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
#: scripts that keep their figures in benchmarks/results/*.json and render a page from them
SCRIPTS = ("calibration_compare", "ir_drop", "cost_example")


def load_script(name: str):
    sys.path.insert(0, str(BENCHMARKS))  # the scripts import measured_page beside them
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_committed_page_is_what_its_json_gives(name):
    script = load_script(name)
    summary = json.loads(script.RESULTS.read_text(encoding="utf-8"))
    assert script.PAGE.read_text(encoding="utf-8") == script.render_page(summary), (
        f"{script.PAGE.name} is stale: run python benchmarks/{name}.py --docs-only")
