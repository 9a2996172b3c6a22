"""Write docs/reproductions.md and README.md from the committed summaries and their templates.

The templates (``templates/reproductions.md.in``, ``templates/README.md.in``) are the pages'
prose; every result on a page comes from a directive that reads a summary
(``summaries/<name>.json``, written by ``summarize.py``)::

    {{table NAME RUN rows=AXIS [columns=AXIS] [AXIS=VALUE ...] [pick=V,V] [metric=M]}}
                                        mean [95 % CI] of accuracy (or another metric)
    {{claims NAME}}                                               each claim and its verdict
    {{verdicts CLAIM_ID NAME=LABEL ...}}                          one claim across specs
    {{across FILE}}                     the claims of across/FILE.toml, judged across summaries
    {{midpoints RUN NAME=LABEL ...}}    μ of RUN's global fit, one row per spec
    {{sites NAME RUN}}                  μ of each site of a layer-wise walking-noise run
    {{budget NAME RUN}}                 a noise budget per layer and knob, and its ranking
    {{made NAME}}                                                 wall time, machine, commit
    {{setting NAME KEY.KEY}}                                      a value of the spec
    {{digital NAME RUN}}                                          the digital model's accuracy
    {{total all}}                                                 wall time of every summary

Run: ``python benchmarks/reproduce/page.py`` (``--check`` exits 1 when a page differs from
what it would write). ``tests/test_claims.py`` runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from analogsim.claims import Claim, judge, parse_claims
from analogsim.statistics import t_interval
from analogsim.units import format_duration

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
#: template → the page it writes
PAGES = {HERE / "templates" / "reproductions.md.in": ROOT / "docs" / "reproductions.md",
         HERE / "templates" / "README.md.in": ROOT / "README.md"}
DIRECTIVE = re.compile(r"\{\{(.+?)\}\}")


def load_summaries(folder: Path = HERE / "summaries") -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(folder.glob("*.json"))}


def percent(value: float) -> str:
    return "—" if value != value else f"{100 * value:.2f}"


def interval(point: dict[str, Any], shown=percent) -> str:
    """mean [low, high] of a point, each ``shown`` (as a percentage by default)."""
    if point["low"] != point["low"]:  # NaN: no interval
        return shown(point["mean"])
    return f"{shown(point['mean'])} [{shown(point['low'])}, {shown(point['high'])}]"


def plain(value: float) -> str:
    return "—" if value != value else f"{value:.3f}"


def metric_points(run: dict[str, Any], metric: str) -> tuple[list[dict[str, Any]], Any, str]:
    """The points of ``metric`` in a run summary, how to show one value, and its name with its
    unit for a caption."""
    if metric == "accuracy":
        return run["points"], percent, "Accuracy %"
    entry = run["metrics"][metric]
    unit = f" ({entry['unit']})" if entry["unit"] else ""
    return entry["points"], plain, f"{metric.capitalize()}{unit}"


def row(*cells: str) -> str:
    """A markdown table row; a "|" inside a cell (max|W|) is escaped."""
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


def axis_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def axis_label(run: dict[str, Any], axis: str, value: Any) -> str:
    """A value as a table shows it: times as durations, scale factors with ×."""
    unit = run["units"].get(axis, "")
    if unit == "s":
        return format_duration(float(value))
    return axis_value(value) + ("×" if unit == "×" else "")


def table(summary: dict[str, Any], run_name: str, options: dict[str, str]) -> str:
    run = summary["runs"][run_name]
    rows, columns = options.pop("rows"), options.pop("columns", None)
    points, shown, what = metric_points(run, options.pop("metric", "accuracy"))
    if columns is None:  # one column: a run over one axis
        return _one_column(run, rows, points, shown, what)
    picked = options.pop("pick", None)  # only these column values, e.g. pick=0.01,0.1
    fixed = dict(options)
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for point in points:
        at = dict(zip(run["axes"], point["at"], strict=True))
        if all(axis_value(at[a]) == v for a, v in fixed.items()):
            cells[(axis_value(at[rows]), axis_value(at[columns]))] = point
    row_values = [axis_value(v) for v in run["values"][rows]]
    column_values = [axis_value(v) for v in run["values"][columns]
                     if picked is None or axis_value(v) in picked.split(",")]
    header = f"| {rows} | " + " | ".join(f"{columns} {axis_label(run, columns, v)}"
                                         for v in column_values) + " |"
    lines = [header, "|" + "---|" * (len(column_values) + 1)]
    for r in row_values:
        lines.append(f"| {axis_label(run, rows, r)} | "
                     + " | ".join(interval(cells[(r, c)], shown) if (r, c) in cells else ""
                                  for c in column_values) + " |")
    return "\n".join(lines) + "\n\n" + _caption(list(cells.values()), what)


def _one_column(run: dict[str, Any], rows: str, points: list[dict[str, Any]], shown,
                what: str) -> str:
    lines = [f"| {rows} | {what} |", "|---|---|"]
    lines += [f"| {axis_label(run, rows, p['at'][0])} | {interval(p, shown)} |" for p in points]
    return "\n".join(lines) + "\n\n" + _caption(points, what)


def _caption(points: list[dict[str, Any]], what: str) -> str:
    details = Counter(p["detail"] for p in points)
    notes = {p["note"] for p in points if p["note"]}
    return (f"{what}, mean [95 % CI] over {points[0]['unit']} "
            f"(n = {details.most_common(1)[0][0]})" + "".join(f"; {n}" for n in sorted(notes))
            + ".")


def mu_fitted(site: dict[str, Any]) -> str:
    """μ of the fit to the seeds' mean curve ± its 1 s.d. fit error."""
    return "no fit" if site["mu"] is None else f"{site['mu']:.3g} ± {site['mu_error']:.2g}"


def mu_over_seeds(site: dict[str, Any]) -> str:
    """The mean and 95 % CI of the μ fitted to each seed alone (— with fewer than 2)."""
    per_seed = [v for v in site["mu_per_seed"] or [] if v is not None]
    if len(per_seed) < 2:
        return "—"
    mean, low, high, _ = t_interval(per_seed)
    return f"{mean:.3g} [{low:.3g}, {high:.3g}]"


def midpoints(run_name: str, specs: list[tuple[str, str]],
              summaries: dict[str, dict[str, Any]]) -> str:
    """A row per spec: μ of the global fit and μ over seeds."""
    lines = ["| setting | μ (fit of the mean ± 1 s.d.) | μ over seeds, mean [95 % CI] |",
             "|---|---|---|"]
    for name, label in specs:
        if name not in summaries:
            lines.append(row(label, NOT_RUN, ""))
            continue
        site = summaries[name]["midpoints"][run_name]["sites"]["global"]
        seeds = len(site["mu_per_seed"] or [None])
        lines.append(f"| {label} ({seeds} seeds) | {mu_fitted(site)} | {mu_over_seeds(site)} |")
    return "\n".join(lines)


def sites(summary: dict[str, Any], run_name: str) -> str:
    """A row per noise site of a layer-wise run: μ of the fit and over seeds."""
    fits = summary["midpoints"][run_name]
    lines = ["| site | μ (fit of the mean ± 1 s.d.) | μ over seeds, mean [95 % CI] |",
             "|---|---|---|"]
    for label, site in fits["sites"].items():
        lines.append(f"| {label} | {mu_fitted(site)} | {mu_over_seeds(site)} |")
    return "\n".join(lines)


def across(file: str, summaries: dict[str, dict[str, Any]], folder: Path = HERE / "across"
           ) -> str:
    """The claims of ``across/FILE.toml``, each judged on the per-seed μ of two summaries."""
    source = folder / f"{file}.toml"
    lines = ["| claim | paper | ours | verdict |", "|---|---|---|---|"]
    for claim in parse_claims(tomllib.loads(source.read_text(encoding="utf-8"))["claims"],
                              str(source)):
        verdict = judge(claim, [_per_seed_mu(q, summaries, claim) for q in claim.quantities],
                        paired=False)
        lines.append(row(claim.claim, claim.paper, verdict.ours, verdict.verdict))
    return "\n".join(lines)


def _per_seed_mu(quantity: dict[str, Any], summaries: dict[str, dict[str, Any]],
                 claim: Claim) -> tuple[np.ndarray, str]:
    """The μ of one site fitted to each seed of a summarised walking-noise run."""
    if "summary" not in quantity:
        return np.array([float(quantity["value"])]), "{:.3g}"
    name = quantity["summary"]
    if name not in summaries:
        known_spec(name)
        return np.array([np.nan]), f"{{}} ({name}: {NOT_RUN})"
    per_seed = summaries[name]["midpoints"][quantity["run"]]["sites"][quantity["site"]][
        "mu_per_seed"]
    return np.array([np.nan if v is None else v for v in per_seed], float), "{:.3g}"


def budget(summary: dict[str, Any], run_name: str) -> str:
    """A noise budget: per layer, the largest tolerable value of each knob per programming
    seed (≥ where the grid ended before the accuracy fell), and the ranking."""
    b = summary["budgets"][run_name]
    knobs = [f"{k} ({u})" if u else k for k, u in zip(b["knobs"], b["knob_units"], strict=True)]
    lines = ["| layer | " + " | ".join(knobs) + " |", "|" + "---|" * (len(knobs) + 1)]
    for j, layer in enumerate(b["layers"]):
        cells = [", ".join(("≥ " if b["censored"][k][j][s] else "") + f"{b['limit'][k][j][s]:.3g}"
                           for s in range(len(b["seeds"])))
                 for k in range(len(knobs))]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    seeds = ", ".join(map(str, b["seeds"]))
    return ("\n".join(lines) + f"\n\nTolerable scale of each knob, one layer at a time, on "
            f"{b['card']} {format_duration(b['time_s'])} after programming (mean of "
            f"{b['instances']} chips within {b['tolerance_pp']:g} pp of the card's own "
            f"accuracy), per programming seed ({seeds}). First to break: "
            f"**{b['most_sensitive_layer']}**; ranking {b['ranking']} ({b['ranking_note']}).")


def claims(summary: dict[str, Any]) -> str:
    lines = ["| claim | paper | ours | verdict |", "|---|---|---|---|"]
    for claim in summary["claims"]:
        verdict = claim["verdict"] + "".join(f"; {note}" for note in claim["notes"])
        lines.append(row(claim["claim"], claim["paper"], claim["ours"], verdict))
    return "\n".join(lines)


def verdicts(claim_id: str, specs: list[tuple[str, str]],
             summaries: dict[str, dict[str, Any]]) -> str:
    """One claim judged in several specs: a row per spec (its label), ours and the verdict."""
    lines = ["| setting | ours | verdict |", "|---|---|---|"]
    for name, label in specs:
        if name not in summaries:
            lines.append(row(label, NOT_RUN, ""))
            continue
        claim = next(c for c in summaries[name]["claims"] if c["id"] == claim_id)
        verdict = claim["verdict"] + "".join(f"; {note}" for note in claim["notes"])
        lines.append(row(label, claim["ours"], verdict))
    return "\n".join(lines)


def total(summaries: dict[str, dict[str, Any]]) -> str:
    """The summed wall time of every summarised run."""
    seconds = sum(int(s["made"]["wall_seconds"]) for s in summaries.values())
    return (f"{seconds // 3600} h {seconds % 3600 // 60} min for the {len(summaries)} runs "
            "summarised so far")


def made(summary: dict[str, Any]) -> str:
    m = summary["made"]
    minutes, seconds = divmod(int(m["wall_seconds"]), 60)
    return (f"run time {minutes} min {seconds} s on {m['host']} (analogsim "
            f"{str(m['git_commit'])[:7]}, torch {m['torch']})")


def setting(summary: dict[str, Any], key: str) -> str:
    value: Any = summary["setting"]
    for part in key.split("."):
        value = value[part]
    return ", ".join(axis_value(v) for v in value) if isinstance(value, list) else axis_value(
        value)


def digital(summary: dict[str, Any], run_name: str) -> str:
    values = summary["runs"][run_name]["digital_accuracy"]
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{percent(mean)} %"
    return f"{percent(mean)} % (seeds: {', '.join(percent(v) for v in values)} %)"


#: what the page shows for a spec that has no summary yet
NOT_RUN = "not run yet (`make reproduce` runs it)"


def known_spec(name: str) -> None:
    """Refuse a name that is no reproduction spec (a typo), as opposed to one not yet run."""
    if not (HERE / f"{name}.toml").is_file() and name != "demo":
        raise KeyError(f"the page names {name!r}, which is no spec in {HERE}")


def render(template: str, summaries: dict[str, dict[str, Any]]) -> str:
    """The page: every directive of ``template`` replaced from ``summaries``."""

    def expand(match: re.Match[str]) -> str:
        verb, name, *rest = shlex.split(match.group(1))
        if verb == "total":
            return total(summaries)
        if verb == "across":
            return across(name, summaries)
        if verb in ("midpoints", "verdicts"):  # name: the run or claim; then NAME=LABEL
            specs = [tuple(pair.split("=", 1)) for pair in rest]
            for spec, _ in specs:
                known_spec(spec)
            return (midpoints if verb == "midpoints" else verdicts)(name, specs, summaries)
        if verb == "setting" and name not in summaries:  # the spec itself says it
            known_spec(name)
            spec = tomllib.loads((HERE / f"{name}.toml").read_text(encoding="utf-8"))
            return setting({"setting": spec}, rest[0])
        if name not in summaries:
            known_spec(name)
            return f"*{name}: {NOT_RUN}*"
        summary = summaries[name]
        if verb == "table":
            run_name, *pairs = rest
            return table(summary, run_name, dict(p.split("=", 1) for p in pairs))
        if verb == "claims":
            return claims(summary)
        if verb == "made":
            return made(summary)
        if verb == "setting":
            return setting(summary, rest[0])
        if verb == "digital":
            return digital(summary, rest[0])
        if verb == "sites":
            return sites(summary, rest[0])
        if verb == "budget":
            return budget(summary, rest[0])
        raise ValueError(f"unknown directive {verb!r} in {match.group(0)}")

    return DIRECTIVE.sub(expand, template)


def stale_pages(summaries: dict[str, dict[str, Any]]) -> list[Path]:
    """The pages whose text differs from what their templates and ``summaries`` give."""
    return [page for template, page in PAGES.items()
            if page.read_text(encoding="utf-8") != render(template.read_text(encoding="utf-8"),
                                                          summaries)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    summaries = load_summaries()
    if args.check:
        stale = stale_pages(summaries)
        for page in stale:
            print(f"{page.relative_to(ROOT)} is stale: run python benchmarks/reproduce/page.py")
        return 1 if stale else 0
    for template, page in PAGES.items():
        page.write_text(render(template.read_text(encoding="utf-8"), summaries), encoding="utf-8")
        print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
