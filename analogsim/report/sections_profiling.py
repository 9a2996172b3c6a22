"""Page sections of walking-noise profiling (S2): a walking-noise run drawn with its midpoint
fit when the file has one, a midpoint fit whose walking run is missing, and guided
multi-execution."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analogsim.report.formatting import (
    format_difference,
    format_number,
    format_percent_interval,
    format_value_error,
)
from analogsim.report.markup import figure_html, heading, html_table, paragraph
from analogsim.report.plots_profiling import (
    guided_difference,
    plot_guided,
    plot_midpoint_bars,
    plot_midpoint_fits,
)
from analogsim.report.sections import accuracy_figure, accuracy_table
from analogsim.report.summaries import ci_basis, sampling, summarise
from analogsim.results import Results, RunData
from analogsim.statistics import ONE_SEED, derived_over_seeds


def midpoints_of(results: Results, run: RunData) -> RunData | None:
    """The midpoint-fit run of a walking-noise run, if the file has one."""
    return next((other for other in results.runs.values()
                 if other.attrs.get("kind") == "midpoints"
                 and other.attrs.get("source_run") == run.name), None)


def _walking_note(run: RunData) -> str:
    attrs = run.attrs
    mode = attrs.get("mode", "")
    how = {"global": "every site noisy at once", "layerwise": "one site noisy at a time"}
    trained = "yes" if attrs.get("noise_in_training") else "no"
    return (f"{mode.capitalize()} walking noise ({how.get(mode, mode)}), {attrs.get('law', '?')} "
            f"law, noise in training: {trained}; {attrs.get('num_classes', '?')} classes, "
            f"{run.data['accuracy'].shape[-1]} training seeds, "
            f"{attrs.get('test_samples', '?')} test samples.")


def per_seed_of(results: Results, midpoints: RunData) -> RunData | None:
    """The μ-per-seed run of a midpoint fit (written with ≥ 2 seeds), if the file has one."""
    return next((other for other in results.runs.values()
                 if other.attrs.get("kind") == "midpoints_per_seed"
                 and other.attrs.get("source_run") == midpoints.attrs.get("source_run")), None)


def _mu_over_seeds(per_seed: RunData, i: int) -> str:
    interval = derived_over_seeds(per_seed.data["mu"][i])
    if interval.n < 2:
        return f"{format_number(interval.mean)} (n = {interval.detail})"
    return (f"{interval.mean:.3g} [{interval.low:.3g}, {interval.high:.3g}] "
            f"(n = {interval.detail})")


def fit_table(midpoints: RunData, per_seed: RunData | None = None, seeds: int = 0) -> str:
    """site | μ ± err | a_min ± err | χ² | the quantity S2 reports for the site; with a μ per
    seed, μ's mean and 95 % CI over seeds (a fit's error does not see other trained models)."""
    data = midpoints.data
    rows = []
    for i, site in enumerate(midpoints.axes["site"]):
        quantity = ("no fit" if not np.isfinite(data["falls_to_chance"][i]) else
                    "μ" if data["falls_to_chance"][i] else
                    "a_min (accuracy does not fall to chance)")
        rows.append([str(site), format_value_error(data["mu"][i], data["mu_error"][i]),
                     format_value_error(data["a_min"][i], data["a_min_error"][i]),
                     f"{data['chi2'][i]:.3g}" if np.isfinite(data["chi2"][i]) else "—",
                     quantity, *([_mu_over_seeds(per_seed, i)] if per_seed is not None else [])])
    attrs = midpoints.attrs
    terms = int(attrs.get("components", 1))
    caption = (f"Logistic fit (S2 Eq. 1, {terms} logistic term{'s' if terms > 1 else ''}) in "
               f"{'log10 σ' if attrs.get('x_space') == 'log10' else 'σ'}, weighted by the spread "
               "over training seeds; errors are 1 s.d. from the fit covariance"
               f"{'; a_min fixed at 1/K' if attrs.get('fix_amin') else ''}.")
    if per_seed is not None:
        caption += (" μ over seeds: each seed fitted alone, then the mean and 95 % CI (Student "
                    "t) of its μ.")
    elif seeds == 1:
        caption += f" {ONE_SEED[0].upper()}{ONE_SEED[1:]}: μ's error is the fit's alone."
    header = ["site", "μ ± error (σ units)", "a_min ± error", "χ²", "quantity",
              *(["μ over seeds, mean [95 % CI]"] if per_seed is not None else [])]
    return html_table(header, rows, caption=caption)


def _midpoint_parts(midpoints: RunData, source: RunData | None, out_dir: Path,
                    per_seed: RunData | None = None) -> list[str]:
    title = (source.attrs.get("title", source.name) if source is not None else
             midpoints.attrs.get("title", midpoints.name))
    fits = plot_midpoint_fits(midpoints, source, out_dir / f"{midpoints.name}_fits.png", title)
    parts = [figure_html(fits, f"{midpoints.name}: fit per site")]
    if len(midpoints.axes["site"]) > 1:
        bars = plot_midpoint_bars(midpoints, out_dir / f"{midpoints.name}_mu.png", title)
        parts.append(figure_html(bars, f"{midpoints.name}: μ per site"))
    seeds = source.data["accuracy"].shape[-1] if source is not None else 0
    parts.append(fit_table(midpoints, per_seed, seeds))
    return parts


def walking_section(run: RunData, results: Results, out_dir: Path) -> str:
    """Accuracy against σ per site; with a midpoint fit in the file, the fit per site (in place
    of the plain curves), μ per site and the fit table; then the measured numbers."""
    parts = [heading(run.name, run.attrs.get("title", run.name)),
             paragraph(run.attrs.get("summary", "")), paragraph(_walking_note(run), note=True)]
    midpoints = midpoints_of(results, run)
    if midpoints is not None:
        parts += _midpoint_parts(midpoints, run, out_dir, per_seed_of(results, midpoints))
    else:
        parts.append(figure_html(accuracy_figure(run, out_dir), run.name))
    parts.append(accuracy_table(run))
    return "\n".join(p for p in parts if p)


def midpoints_section(run: RunData, results: Results, out_dir: Path) -> str:
    """A midpoint fit whose walking-noise run is not in the file: the fits alone."""
    source = run.attrs.get("source_run", "?")
    return "\n".join([
        heading(run.name, run.attrs.get("title", f"Midpoint fit of {source}")),
        paragraph(f"The walking-noise run {source} is not in this file; the fitted curves are "
                  "drawn without the measurements.", note=True),
        *_midpoint_parts(run, None, out_dir, per_seed_of(results, run))])


def guided_section(run: RunData, results: Results, out_dir: Path) -> str:
    """Accuracy of the uniform and guided allocations, repetitions per site, and the
    difference guided − uniform with its CI (paired over trained models when there are
    several; the repeats of one model are not independent)."""
    attrs = run.attrs
    mean, low, high = summarise(run)
    *difference, method = guided_difference(run)
    rows = []
    for i, allocation in enumerate(run.axes["allocation"]):
        counts = np.asarray(attrs[f"repetitions_{allocation}"])
        rows.append([str(allocation), format_percent_interval(mean[i], low[i], high[i]),
                     ", ".join(str(int(n)) for n in counts), str(int(counts.sum()))])
    return "\n".join([
        heading(run.name, attrs.get("title", run.name)),
        paragraph(f"Guided multi-execution at σ = {format_number(attrs.get('sigma', np.nan))}: "
                  f"a budget of "
                  f"{attrs.get('budget_total', '?')} executions of the noise operators, spread "
                  "evenly (uniform) or by the per-site midpoints (guided); "
                  f"n = {sampling(run)}, {attrs.get('test_samples', '?')} test samples."),
        figure_html(plot_guided(run, out_dir / f"{run.name}.png"), run.name),
        html_table(["allocation", f"accuracy, mean [{ci_basis(run)}]",
                    "repetitions n_i per site (" + ", ".join(map(str, attrs["sites"])) + ")",
                    "total"], rows),
        paragraph(f"Guided − uniform: {format_difference(*difference)} (95 % CI, {method})."),
    ])
