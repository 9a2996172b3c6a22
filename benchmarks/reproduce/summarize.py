"""Write the summary of a reproduction's results file: the small JSON the page is drawn from.

Run after ``analogsim run benchmarks/reproduce/<spec>.toml -o results/<name>.h5``::

    python benchmarks/reproduce/summarize.py results/s3_coding.h5 [...]

writes ``benchmarks/reproduce/summaries/<name>.json`` for each file: how the run was made (spec,
versions, machine, wall time), every accuracy point of every run as a mean with its 95 % CI over
its stated unit (training seeds when there are several, else the chips or draws of the one
trained model), and the verdict of each ``[[claims]]`` of the spec, judged by
:mod:`analogsim.claims`. The summaries are committed; ``page.py`` turns them into
docs/reproductions.md.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

import analogsim as asim
from analogsim.claims import evaluate_claims, parse_claims
from analogsim.report.sections_budget_energy import energy_budget_summary
from analogsim.report.summaries import intervals
from analogsim.results import Results, RunData

SUMMARIES = Path(__file__).resolve().parent / "summaries"
#: Runs whose metric is accuracy over named grid axes and sampling levels.
ACCURACY_RUNS = ("sweep", "attack", "chip", "drift", "global_noise", "layerwise_noise", "guided")
#: The midpoint fits of the walking-noise runs (S2), per site.
FIT_METRICS = ("mu", "mu_error", "a_min", "a_min_error", "chi2", "falls_to_chance")
#: s; a results file's start and finish are stamped to the second
TIMESTAMP_RESOLUTION_S = 1.0


def training_seconds(results: Results) -> float:
    """Seconds of every training epoch the file's history runs hold (``train_*``, their
    ``seconds``), those replayed from a resumed checkpoint included."""
    return sum(float(np.sum(run.data["seconds"])) for name, run in results.runs.items()
               if name.startswith("train_") and "seconds" in run.data)


def summarize(path: str | Path) -> dict[str, Any]:
    """The summary of one results file (see the module docstring)."""
    results = asim.load_results(path)
    spec_text = results.config.get("spec", "")
    spec = tomllib.loads(spec_text) if spec_text else {}
    attrs = results.attrs
    if "finished" not in attrs:
        raise SystemExit(f"{path}: the run has not finished (no 'finished' attribute): it is "
                         "still running or was interrupted; run the same command to resume it")
    started, finished = (datetime.fromisoformat(str(attrs[k])) for k in ("started", "finished"))
    wall, trained = (finished - started).total_seconds(), training_seconds(results)
    if trained > wall + TIMESTAMP_RESOLUTION_S:
        raise SystemExit(
            f"{path}: its training epochs took {trained:.0f} s, more than the run's {wall:.0f} "
            "s from start to finish: it resumed trainings made earlier from their "
            "checkpoints, so its wall time is not what the spec takes; remove the checkpoints "
            f"({Path(path).name}.checkpoints beside it) and run the spec again")
    summary: dict[str, Any] = {
        "name": spec.get("experiment", {}).get("name", Path(path).stem),
        "description": spec.get("experiment", {}).get("description", ""),
        "made": {"host": str(attrs.get("host", "")), "git_commit": str(attrs.get("git_commit")),
                 "analogsim": str(attrs.get("analogsim_version")),
                 "torch": str(attrs.get("torch_version")),
                 "wall_seconds": round(wall)},
        "setting": {key: spec.get(key, {}) for key in ("data", "model", "training", "chip",
                                                       "sweep", "evaluation")
                    if key in spec},
        "runs": {name: run_summary(run) for name, run in results.runs.items()
                 if name in ACCURACY_RUNS and "accuracy" in run.data},
        "midpoints": {name.removesuffix("_midpoints"): midpoint_summary(results, name)
                      for name, run in results.runs.items()
                      if run.attrs.get("kind") == "midpoints"},
        "budgets": {name: budget_summary(run) for name, run in results.runs.items()
                    if run.attrs.get("kind") == "budget"},
        "cost_budgets": {name: energy_budget_summary(run) for name, run in results.runs.items()
                         if run.attrs.get("kind") == "budget_energy"},
    }
    claims = parse_claims(spec.get("claims", []), f"{path}: /config/spec")
    summary["claims"] = [
        {"id": v.claim.id, "claim": v.claim.claim, "paper": v.claim.paper,
         "test": v.claim.test, "value": v.claim.value, "verdict": v.verdict, "ours": v.ours,
         "notes": list(v.notes)}
        for v in evaluate_claims(results, claims)]
    return summary


def run_summary(run: RunData) -> dict[str, Any]:
    """Every point of an accuracy run: mean and 95 % CI over its unit, with n; the same for
    every other metric on the accuracy's axes (a language model's perplexity) under
    ``metrics``."""
    grid = run.dims["accuracy"][:-1]
    summary = {"title": str(run.attrs.get("title", run.name)), "axes": list(grid),
               "values": {a: [_plain(v) for v in run.axes[a]] for a in grid},
               "units": {a: run.units.get(a, "") for a in grid},
               "points": metric_points(run, "accuracy"),
               "digital_accuracy": _per_seed(run, "digital_accuracy")}
    others = [m for m in run.data if m != "accuracy" and run.dims[m] == run.dims["accuracy"]]
    if others:
        summary["metrics"] = {m: {"unit": run.units.get(m, ""), "points": metric_points(run, m),
                                  "digital": _per_seed(run, f"digital_{m}")} for m in others}
    return summary


def metric_points(run: RunData, metric: str) -> list[dict[str, Any]]:
    """Each point of ``metric``: mean and 95 % CI over its unit (the report's intervals: over
    seeds, else chips or draws), with n."""
    cells = intervals(run, metric)
    grid = run.dims[metric][:-1]
    points = []
    for index in np.ndindex(cells.shape):
        interval = cells[index]
        points.append({"at": [_plain(run.axes[a][i]) for a, i in zip(grid, index, strict=True)],
                       "mean": interval.mean, "low": interval.low, "high": interval.high,
                       "n": interval.n, "unit": interval.unit, "detail": interval.detail,
                       "note": interval.note})
    return points


def _per_seed(run: RunData, name: str) -> list[float] | None:
    """The attribute ``<name>_per_seed`` (or ``<name>`` for one seed) as a list."""
    value = run.attrs.get(f"{name}_per_seed", run.attrs.get(name))
    return None if value is None else [float(v) for v in np.atleast_1d(value)]


def budget_summary(run: RunData) -> dict[str, Any]:
    """A noise-budget run: each layer's tolerable knob value per programming seed, the ranking
    of the layers and whether the seeds agree on it."""
    attrs = run.attrs
    return {"card": str(attrs["card"]), "time_s": float(attrs["time_s"]),
            "tolerance_pp": float(attrs["tolerance_pp"]), "instances": int(attrs["instances"]),
            "knobs": [str(k) for k in run.axes["knob"]],
            "knob_units": [str(u) for u in attrs["knob_units"]],
            "layers": [str(layer) for layer in run.axes["layer"]],
            "seeds": [int(s) for s in run.axes["seed"]],
            "limit": np.asarray(run.data["limit"], float).tolist(),
            "censored": np.asarray(run.data["censored"], bool).tolist(),
            "baseline_accuracy": np.asarray(run.data["baseline_accuracy"], float).tolist(),
            "most_sensitive_layer": str(attrs["most_sensitive_layer"]),
            "ranking": str(attrs["ranking"]), "ranking_stable": bool(attrs["ranking_stable"]),
            "ranking_note": str(attrs["ranking_note"])}


def midpoint_summary(results: Results, name: str) -> dict[str, Any]:
    """The logistic fit of each site of a walking-noise run (μ ± its 1 s.d. fit error, a_min…)
    and, with several seeds, μ fitted to each seed alone: the spread over trained models."""
    fit = results.runs[name]
    per_seed = results.runs.get(f"{name}_per_seed")
    sites = [str(site) for site in fit.axes["site"]]
    return {"x_space": str(fit.attrs["x_space"]), "unit": fit.units.get("mu", ""),
            "sites": {site: {**{m: _finite(fit.data[m][i]) for m in FIT_METRICS},
                             "mu_per_seed": None if per_seed is None else
                             [_finite(v) for v in per_seed.data["mu"][i]]}
                      for i, site in enumerate(sites)}}


def _finite(value: Any) -> float | None:
    """A number for JSON: None where the fit failed (NaN)."""
    value = float(value)
    return value if np.isfinite(value) else None


def _plain(value: Any) -> Any:
    """A JSON-ready axis value."""
    return value.item() if isinstance(value, np.generic) else value


def write_summary(path: str | Path, folder: Path = SUMMARIES) -> Path:
    """Summarise ``path`` into ``folder``/<name>.json; returns the file written."""
    summary = summarize(path)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{summary['name']}.json"
    target.write_text(json.dumps(summary, indent=1, allow_nan=True) + "\n", encoding="utf-8")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", help="results files of reproduction specs")
    parser.add_argument("--into", type=Path, default=SUMMARIES, help="summaries folder")
    args = parser.parse_args()
    for path in args.files:
        print(write_summary(path, args.into))


if __name__ == "__main__":
    main()
