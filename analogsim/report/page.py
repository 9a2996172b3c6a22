"""index.html of a report: figures, tables of numbers, configs and lineage. Opens from disk."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import numpy as np

from analogsim.report.plots import plot_curves, plot_heatmap, plot_training, summarise
from analogsim.results import Results, RunData, load_results
from analogsim.units import format_duration

log = logging.getLogger(__name__)

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: .85em; }
.note { color: #555; }
"""


def _figure_for(run: RunData, out_dir: Path) -> Path | None:
    if "accuracy" not in run.data or not np.isfinite(run.data["accuracy"]).any():
        return None
    dims = run.dims["accuracy"]
    path = out_dir / f"{run.name}.png"
    if len(dims) == 3 and not any(d.startswith("time") for d in dims[:2]) and all(
            len(run.axes[d]) > 2 and np.asarray(run.axes[d]).dtype.kind in "fiu"
            for d in dims[:2]):  # a numeric 2-D grid
        return plot_heatmap(run, path)
    if len(dims) >= 2:
        return plot_curves(run, path)
    return None


def _axis_value(run: RunData, axis: str, value: object) -> str:
    """An axis value as a person reads it: durations for times, numbers with their unit."""
    if axis.startswith("time") and run.units.get(axis) == "s":
        return format_duration(float(value))
    unit = run.units.get(axis, "")
    return f"{value:g} {unit}".strip() if isinstance(value, float) else str(value)


def _seconds_table(run: RunData) -> str:
    """Mean seconds per value of the first axis, and the ratio to the first row."""
    seconds = run.data["seconds"].reshape(run.data["seconds"].shape[0], -1)
    means = np.nanmean(seconds, axis=1)
    first = run.dims["seconds"][0]
    rows = "".join(
        f"<tr><td>{html.escape(str(label))}</td><td>{mean:.1f} s</td>"
        f"<td>{mean / means[0]:.2f}×</td></tr>"
        for label, mean in zip(run.axes[first], means, strict=True))
    return (f"<table><tr><th>{html.escape(first)}</th><th>mean time</th>"
            f"<th>vs {html.escape(str(run.axes[first][0]))}</th></tr>{rows}</table>")


def _table(run: RunData) -> str:
    """Mean accuracy and CI per point, as an HTML table."""
    if "seconds" in run.data and "accuracy" not in run.data:
        return _seconds_table(run)
    if "accuracy" not in run.data:
        return ""
    mean, low, high = summarise(run)
    dims = run.dims["accuracy"][:-1]
    head = "".join(f"<th>{html.escape(d)}</th>" for d in dims)
    rows = []
    for index in np.ndindex(mean.shape):
        cells = "".join(f"<td>{html.escape(_axis_value(run, d, run.axes[d][i]))}</td>"
                        for d, i in zip(dims, index, strict=True))
        value = ("not measured" if not np.isfinite(mean[index]) else
                 f"{100 * mean[index]:.2f} % [{100 * low[index]:.2f}, {100 * high[index]:.2f}]")
        rows.append(f"<tr>{cells}<td>{value}</td></tr>")
    instances = run.data["accuracy"].shape[-1]
    return (f"<table><tr>{head}<th>accuracy, mean [95 % CI] over {instances} instances</th></tr>"
            + "".join(rows) + "</table>")


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
    sections = []
    training = [run for run in results.runs.values() if "gradient_norm" in run.data]
    if training:
        figure = plot_training(training, out_dir / "training.png")
        sections.append(f'<h2>Training</h2><img src="{figure.name}" alt="training curves">')
    for run in results.runs.values():
        if run in training:
            continue
        figure = _figure_for(run, out_dir)
        parts = [f"<h2>{html.escape(run.attrs.get('title', run.name))}</h2>"]
        if run.attrs.get("summary"):
            parts.append(f"<p>{html.escape(run.attrs['summary'])}</p>")
        if figure is not None:
            parts.append(f'<img src="{figure.name}" alt="{html.escape(run.name)}">')
        parts.append(_table(run))
        sections.append("\n".join(parts))
    configs = "".join(f"<h3>{html.escape(name)}</h3><pre>{html.escape(text)}</pre>"
                      for name, text in results.config.items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>analogsim report: {html.escape(results.path.name)}</title>
<style>{_STYLE}</style></head><body>
<h1>analogsim report: {html.escape(results.path.name)}</h1>
<p class="note">Drawn from {html.escape(str(results.path))} alone; every number below is read
from that file.</p>
{''.join(sections)}
<h2>How these results were made</h2>
{_lineage(results)}
<h2>Configuration</h2>
{configs}
</body></html>
"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    log.info("wrote %s", index)
    return index
