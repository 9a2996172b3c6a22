"""The command line shared by the scripts that measure something, keep the figures in a
committed JSON file and write a docs page from it (``calibration_compare.py``,
``ir_drop.py``…): run, or only re-render the page from the JSON (``--docs-only``).

``tests/test_measured_pages.py`` checks that each committed page is what its JSON gives.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def measure_and_render(description: str, results: Path, page: Path,
                       measure: Callable[[], dict[str, Any]],
                       render_page: Callable[[dict[str, Any]], str],
                       render_figures: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Parse ``--docs-only``; unless given, ``measure()`` and write ``results``; then write
    ``page`` (and the figures) from the JSON in ``results``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--docs-only", action="store_true",
                        help=f"rewrite {page.name} from the committed {results.name}")
    args = parser.parse_args()
    if not args.docs_only:
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(measure(), indent=1) + "\n", encoding="utf-8")
    summary = json.loads(results.read_text(encoding="utf-8"))
    page.write_text(render_page(summary), encoding="utf-8")
    if render_figures is not None:
        render_figures(summary)
    print(f"wrote {page}")
