"""index.html of a report: figures, tables of numbers, configs and lineage. Opens from disk."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from pathlib import Path

from analogsim.report.markup import figure_html, heading
from analogsim.report.plots import plot_training
from analogsim.report.sections import generic_section
from analogsim.report.sections_budget import budget_section
from analogsim.report.sections_budget_energy import budget_energy_section
from analogsim.report.sections_cost import cost_section
from analogsim.report.sections_profiling import (
    guided_section,
    midpoints_section,
    walking_section,
)
from analogsim.results import Results, RunData, load_results

log = logging.getLogger(__name__)

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: .85em; }
.note { color: #555; }
nav li { margin: .1em 0; }
"""

Section = Callable[[RunData, Results, Path], str]

#: The section of each run ``kind``; any other run gets :func:`.sections.generic_section`.
_SECTIONS: dict[str, Section] = {
    "walking_noise": walking_section,
    "midpoints": midpoints_section,
    "guided": guided_section,
    "budget": budget_section,
    "budget_energy": budget_energy_section,
    "cost": cost_section,
}


def _drawn_with_its_source(run: RunData, results: Results) -> bool:
    """A midpoint fit is drawn in the section of its walking-noise run, and a cost table in
    the section of the run it prices, when the file has it; μ per seed in the fit table of
    its midpoint fit."""
    kind = run.attrs.get("kind")
    return kind == "midpoints_per_seed" or (kind in ("midpoints", "cost")
                                            and run.attrs.get("source_run") in results.runs)


def _contents(entries: list[tuple[str, str]]) -> str:
    """Links to the sections, when there are more than two."""
    if len(entries) <= 2:
        return ""
    links = "".join(f'<li><a href="#{html.escape(anchor)}">{html.escape(title)}</a></li>'
                    for anchor, title in entries)
    return f"<nav><ul>{links}</ul></nav>"


def _lineage(results: Results) -> str:
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in sorted(results.attrs.items()))
    return f"<table>{rows}</table>"


def write_report(results_path: str | Path, out_dir: str | Path) -> Path:
    """Draw every run of a results file and write ``out_dir/index.html``.

    Returns:
        The path of index.html. Images are referenced by relative paths, so the folder can be
        moved or opened from disk.
    """
    results = load_results(results_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections, contents = [], []
    training = [run for run in results.runs.values() if "gradient_norm" in run.data]
    if training:
        figure = plot_training(training, out_dir / "training.png")
        sections.append(heading("training", "Training") + figure_html(figure, "training curves"))
        contents.append(("training", "Training"))
    for run in results.runs.values():
        if "gradient_norm" in run.data or _drawn_with_its_source(run, results):
            continue
        section = _SECTIONS.get(run.attrs.get("kind", ""), generic_section)
        sections.append(section(run, results, out_dir))
        contents.append((run.name, run.attrs.get("title", run.name)))
    configs = "".join(f"<h3>{html.escape(name)}</h3><pre>{html.escape(text)}</pre>"
                      for name, text in results.config.items())
    if configs:
        configs = f"<h2>Configuration</h2>\n{configs}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>analogsim report: {html.escape(results.path.name)}</title>
<style>{_STYLE}</style></head><body>
<h1>analogsim report: {html.escape(results.path.name)}</h1>
<p class="note">Drawn from {html.escape(str(results.path))} alone; every number below is read
from that file.</p>
{_contents(contents)}
{''.join(sections)}
<h2>How these results were made</h2>
{_lineage(results)}
{configs}
</body></html>
"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    log.info("wrote %s", index)
    return index
