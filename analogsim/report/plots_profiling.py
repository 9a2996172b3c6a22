"""Figures of walking-noise profiling (S2): the midpoint fit per noise site, the midpoint μ of
every site, and guided multi-execution against the uniform allocation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from analogsim.report.formatting import (
    format_difference,
    format_number,
    format_quantity,
    format_value_error,
)
from analogsim.report.layout import panel_grid, save, suptitle
from analogsim.report.scales import positions, spans_decades, style_value_axis
from analogsim.report.summaries import ci_basis, mean_and_spread, summarise
from analogsim.results import RunData
from analogsim.sampling import sample_levels, sampled
from analogsim.statistics import ONE_SEED, paired_difference, plural, welch_difference

_MEASURED, _FIT, _MU, _A_MIN = "tab:blue", "tab:red", "tab:green", "tab:purple"
#: Panels per row of the fit figure.
_FIT_COLUMNS = 3


def site_accuracy(source: RunData, sites: np.ndarray) -> np.ndarray:
    """accuracy[site, sigma, seed] of a walking-noise run, rows in the order of ``sites``; the
    global run (no site axis) is the one site it has."""
    accuracy = source.data["accuracy"]
    if "site" not in source.dims["accuracy"]:
        return accuracy[None]
    labels = list(source.axes["site"])
    return accuracy[[labels.index(site) for site in sites]]


def midpoint_title(midpoints: RunData, index: int) -> str:
    """'1 0 (Linear) — μ = 1.23 ± 0.04', or 'a_min = 0.62 ± 0.01' where the accuracy does not
    fall to chance (S2 reports a_min there)."""
    data = midpoints.data
    name = "a_min" if data["falls_to_chance"][index] == 0 else "mu"
    value = format_value_error(data[name][index], data[f"{name}_error"][index])
    return f"{midpoints.axes['site'][index]} — {name.replace('mu', 'μ')} = {value}"


def _legend_below(figure: Figure, panels: list, ncols: int = 3) -> None:
    """One legend for all panels, below them, each label once."""
    entries: dict[str, object] = {}
    for axes in panels:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    figure.legend(entries.values(), entries.keys(), loc="outside lower center",
                  ncols=min(len(entries), ncols), fontsize="small")


def plot_midpoint_fits(midpoints: RunData, source: RunData | None, path: Path,
                       title: str) -> Path:
    """One panel per noise site: the measured accuracy against σ (mean ± 1 s.d. over training
    seeds, from the walking-noise run ``source``), the fitted logistic (S2 Eq. 1), and the
    fitted μ with its error (or a_min, where the accuracy does not fall to chance)."""
    sites = midpoints.axes["site"]
    data = midpoints.data
    sigma_fit = np.asarray(midpoints.axes["sigma_fit"], dtype=float)
    size = (3.2, 2.5) if len(sites) > 1 else (6.5, 4.0)
    figure, panels = panel_grid(len(sites), _FIT_COLUMNS, size)
    sigmas = [sigma_fit]
    if source is not None:
        sigma = np.asarray(source.axes["sigma"], dtype=float)
        mean, spread = mean_and_spread(site_accuracy(source, sites))
        seeds = source.data["accuracy"].shape[-1]
        sigmas.append(sigma)
    chance = 1 / float(midpoints.attrs["num_classes"]) if "num_classes" in midpoints.attrs else None
    fitted_in = " in log10 σ" if midpoints.attrs.get("x_space") == "log10" else ""
    for index, axes in enumerate(panels):
        if source is not None:
            axes.fill_between(sigma, 100 * (mean[index] - spread[index]),
                              100 * (mean[index] + spread[index]), color=_MEASURED, alpha=0.25,
                              linewidth=0)
            axes.plot(sigma, 100 * mean[index], "o", color=_MEASURED, markersize=3,
                      label=f"measured: mean ± 1 s.d. over {seeds} training seeds")
        axes.plot(sigma_fit, 100 * data["fitted_accuracy"][index], color=_FIT,
                  label=f"logistic fit{fitted_in} (S2 Eq. 1)")
        if data["falls_to_chance"][index] == 0:
            a_min, error = data["a_min"][index], data["a_min_error"][index]
            axes.axhspan(100 * (a_min - error), 100 * (a_min + error), color=_A_MIN, alpha=0.25)
            axes.axhline(100 * a_min, color=_A_MIN, linestyle="--", label="a_min ± error")
        else:
            mu, error = data["mu"][index], data["mu_error"][index]
            axes.axvspan(mu - error, mu + error, color=_MU, alpha=0.25)
            axes.axvline(mu, color=_MU, linestyle="--", label="midpoint μ ± error")
        if chance is not None:
            axes.axhline(100 * chance, color="grey", linestyle=":", label="chance (1/K)")
        axes.set_title(midpoint_title(midpoints, index), fontsize="small")
        axes.grid(True, alpha=0.3)
        if index + _FIT_COLUMNS >= len(panels):  # the lowest panel of its column
            axes.set_xlabel("activation noise level σ")
    every_sigma = np.concatenate(sigmas)
    style_value_axis(panels[0], "x", every_sigma, "", ticks_at_values=False)
    panels[0].set_xlim(every_sigma.min(), every_sigma.max())
    panels[0].set_ylim(0, 100)
    figure.supylabel("accuracy [%]")
    suptitle(figure, f"{title}: midpoint fit per noise site")
    _legend_below(figure, panels)
    return save(figure, path)


def plot_midpoint_bars(midpoints: RunData, path: Path, title: str) -> Path:
    """μ per noise site with its error, in network order; sites whose accuracy does not fall
    to chance are hatched and carry their a_min, the robustness S2 reports for them."""
    sites = midpoints.axes["site"]
    data = midpoints.data
    mu, error = data["mu"], data["mu_error"]
    falls = data["falls_to_chance"] != 0  # NaN (no fit) counts as falling: no bar is drawn
    figure, (axes,) = panel_grid(1, 1, (max(6.0, 0.55 * len(sites) + 2.5), 4.2))
    where = np.arange(len(sites))
    axes.bar(where[falls], mu[falls], yerr=error[falls], capsize=3, color=_MEASURED,
             label="midpoint μ ± error (1 s.d. of the fit)")
    if (~falls).any():
        axes.bar(where[~falls], np.nan_to_num(mu[~falls]), yerr=error[~falls], capsize=3,
                 color="white", edgecolor="grey", hatch="//",
                 label="accuracy does not fall to chance: μ only indicative; a_min (above the "
                       "bar) is the robustness")
    for i in where:  # a_min above the error bar, or a word at the bottom without a μ
        if not np.isfinite(mu[i]):
            axes.annotate("no fit", (i, 0.0), xycoords=("data", "axes fraction"),
                          xytext=(0, 4), textcoords="offset points", ha="center",
                          fontsize="small")
        elif not falls[i]:
            axes.annotate(f"a_min\n{format_quantity(100 * data['a_min'][i], '%')}",
                          (i, mu[i] + np.nan_to_num(error[i])), xytext=(0, 4),
                          textcoords="offset points", ha="center", va="bottom",
                          fontsize="small")
    if spans_decades(mu):
        axes.set_yscale("log")
    style_value_axis(axes, "x", np.asarray(sites), "")
    axes.set_xlabel("noise site (network order)")
    axes.set_ylabel("midpoint noise level μ (σ units)")
    axes.set_title(f"{title}\nrobustness per noise site (higher μ = more robust)",
                   fontsize="medium")
    axes.grid(True, axis="y", which="both", alpha=0.3)
    axes.margins(y=0.15)
    _legend_below(figure, [axes], ncols=1)
    return save(figure, path)


def guided_difference(run: RunData) -> tuple[float, float, float, str]:
    """Accuracy of guided − uniform allocation and its 95 % CI (fractions), and how the CI
    was made: paired Student t over trained models (seeds) when there are several, their
    repeats averaged first (repeats of one model share its weights); else Welch's t over the
    repeats of the one model, or over replicates of unknown structure."""
    allocations = list(run.axes["allocation"])
    guided, uniform = allocations.index("guided"), allocations.index("uniform")
    values, _ = sampled(run)
    names, shape = sample_levels(run)
    if names[0] == "seed" and len(names) > 1:
        interval = paired_difference(values[guided], values[uniform], names)
        if shape[0] >= 2:
            method = f"paired t over {interval.n} trained models"
        else:
            method = f"Welch's t over {plural(names[1])}; {ONE_SEED}"
        return interval.mean, interval.low, interval.high, method
    accuracy = run.data["accuracy"]
    return (*welch_difference(accuracy[guided], accuracy[uniform]),
            f"Welch's t over {plural(names[-1])}")


def plot_guided(run: RunData, path: Path) -> Path:
    """Left: accuracy per allocation (replicates as dots, mean with 95 % CI over the
    independent unit: trained models when there are several). Right: repetitions n_i per
    noise site, uniform and guided side by side."""
    allocations = np.asarray(run.axes["allocation"])
    accuracy = run.data["accuracy"]
    mean, low, high = summarise(run)
    figure, (left, right) = panel_grid(2, 2, (5.0, 4.2), sharex=False, sharey=False)
    rng = np.random.default_rng(0)  # jitter of the dots only
    for i, row in enumerate(accuracy):
        left.plot(i + rng.uniform(-0.12, 0.12, row.size), 100 * row, ".", color="grey",
                  alpha=0.6, label=f"{row.size} replicates" if i == 0 else None)
    left.errorbar(positions(allocations), 100 * mean,
                  yerr=100 * np.abs([mean - low, high - mean]), fmt="o", color="black",
                  capsize=6, markersize=7, label="mean, 95 % CI (Student t)")
    left.set_xlabel(ci_basis(run), fontsize="x-small")
    style_value_axis(left, "x", allocations, "")
    left.set_xlim(-0.6, len(allocations) - 0.4)
    left.set_ylabel("accuracy [%]")
    *difference, method = guided_difference(run)
    left.set_title(f"σ = {format_number(run.attrs.get('sigma', np.nan))}: guided − uniform =\n"
                   f"{format_difference(*difference)} (95 % CI, {method})", fontsize="medium")
    left.legend(fontsize="small")
    sites = np.asarray(run.attrs["sites"])
    where = np.arange(len(sites))
    for offset, allocation, colour in ((-0.2, "uniform", "tab:grey"), (0.2, "guided", _MEASURED)):
        counts = np.asarray(run.attrs[f"repetitions_{allocation}"])
        right.bar(where + offset, counts, 0.4, color=colour,
                  label=f"{allocation} (total {counts.sum()})")
    style_value_axis(right, "x", sites, "")
    right.set_xlabel("noise site (network order)")
    right.set_ylabel("repetitions n_i")
    right.set_title(f"repetitions per noise site (budget {run.attrs.get('budget_total', '?')})",
                    fontsize="medium")
    right.legend(fontsize="small")
    for axes in (left, right):
        axes.grid(True, axis="y", alpha=0.3)
    suptitle(figure, run.attrs.get("title", run.name))
    return save(figure, path)
