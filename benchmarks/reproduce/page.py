"""Write docs/reproductions.md and README.md from the committed summaries and their templates.

The templates (``templates/reproductions.md.in``, ``templates/README.md.in``) are the pages'
prose; every result on a page comes from a directive that reads a summary
(``summaries/<name>.json``, written by ``summarize.py``)::

    {{table NAME RUN rows=AXIS columns=AXIS [AXIS=VALUE ...] [pick=V,V]}}  mean [95 % CI]
    {{claims NAME}}                                               each claim and its verdict
    {{verdicts CLAIM_ID NAME=LABEL ...}}                          one claim across specs
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
from collections import Counter
from pathlib import Path
from typing import Any

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


def interval(point: dict[str, Any]) -> str:
    if point["low"] != point["low"]:  # NaN: no interval
        return percent(point["mean"])
    return f"{percent(point['mean'])} [{percent(point['low'])}, {percent(point['high'])}]"


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
    rows, columns = options.pop("rows"), options.pop("columns")
    picked = options.pop("pick", None)  # only these column values, e.g. pick=0.01,0.1
    fixed = dict(options)
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for point in run["points"]:
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
                     + " | ".join(interval(cells[(r, c)]) if (r, c) in cells else ""
                                  for c in column_values) + " |")
    details = Counter(p["detail"] for p in cells.values())
    notes = {p["note"] for p in cells.values() if p["note"]}
    caption = (f"Accuracy %, mean [95 % CI] over {next(iter(cells.values()))['unit']} "
               f"(n = {details.most_common(1)[0][0]})" + "".join(f"; {n}" for n in sorted(notes))
               + ".")
    return "\n".join(lines) + "\n\n" + caption


def claims(summary: dict[str, Any]) -> str:
    lines = ["| claim | paper | ours | verdict |", "|---|---|---|---|"]
    for claim in summary["claims"]:
        verdict = claim["verdict"] + "".join(f"; {note}" for note in claim["notes"])
        lines.append(f"| {claim['claim']} | {claim['paper']} | {claim['ours']} | {verdict} |")
    return "\n".join(lines)


def verdicts(claim_id: str, specs: list[tuple[str, str]],
             summaries: dict[str, dict[str, Any]]) -> str:
    """One claim judged in several specs: a row per spec (its label), ours and the verdict."""
    lines = ["| setting | ours | verdict |", "|---|---|---|"]
    for name, label in specs:
        claim = next(c for c in summaries[name]["claims"] if c["id"] == claim_id)
        verdict = claim["verdict"] + "".join(f"; {note}" for note in claim["notes"])
        lines.append(f"| {label} | {claim['ours']} | {verdict} |")
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


def render(template: str, summaries: dict[str, dict[str, Any]]) -> str:
    """The page: every directive of ``template`` replaced from ``summaries``."""

    def expand(match: re.Match[str]) -> str:
        verb, name, *rest = shlex.split(match.group(1))
        if verb == "total":
            return total(summaries)
        if verb == "verdicts":  # name is the claim's id; the specs follow as NAME=LABEL
            specs = [tuple(pair.split("=", 1)) for pair in rest]
            missing = [spec for spec, _ in specs if spec not in summaries]
            if missing:
                raise KeyError(f"the page names {missing}, which have no summary")
            return verdicts(name, specs, summaries)
        if name not in summaries:
            raise KeyError(f"the page names {name!r}, which has no summary; summaries: "
                           f"{sorted(summaries)} (run make reproduce)")
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
