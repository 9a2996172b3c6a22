"""The page of a device fit: data, fit and residuals of each fitted law as PNGs, and the card.

``write_fit_report(fit, "report/chip42")`` writes ``programming.png``, ``drift.png`` (when the
drift law was fitted), ``read_noise.png`` (when the read-noise law was fitted) and an
``index.html`` that shows them beside the table of fitted numbers and the card's TOML. Images
are referenced by relative paths, so the folder opens from disk anywhere.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.ticker import NullFormatter

from analogsim.cards import PcmPowerLawDrift, PolynomialProgrammingNoise
from analogsim.hardware.fit_results import Bins, ClippedLine, DeviceFit, DriftFit, ReadNoiseFit
from analogsim.physics import pcm
from analogsim.report.layout import panel_grid, save
from analogsim.report.markup import figure_html, heading, html_table, paragraph
from analogsim.units import format_duration

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
th { background: #f2f2f2; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: .85em; }
.note { color: #555; }
"""
_DATA, _FIT, _BASE = "black", "tab:blue", "tab:grey"


def _log_x(axes: Axes) -> None:
    """A logarithmic x axis labelled at its major ticks only."""
    axes.set_xscale("log")
    axes.xaxis.set_minor_formatter(NullFormatter())


def _residuals(axes: Axes, bins: Bins, x: np.ndarray, label: str, colour: str = _DATA,
               marker: str = "o") -> None:
    """(data − fit) / error of each bin, with ±2 marked."""
    axes.axhline(0, color=_FIT, lw=1)
    for level in (-2, 2):
        axes.axhline(level, color=_BASE, lw=0.8, ls=":")
    axes.plot(x, (bins.y - bins.fit) / bins.error, marker, color=colour, ms=4, label=label)
    axes.set_ylabel("(data − fit) / error")


def _plot_programming(fit: DeviceFit, path: Path) -> Path:
    m, p, stuck = fit.measurements, fit.programming, fit.stuck
    g_max = fit.chip.conductance.g_max_uS
    figure, (scatter, std, residual) = panel_grid(3, 3, (4.2, 3.4), sharex=False, sharey=False)
    flagged = stuck.low | stuck.high
    scatter.plot(m.target_uS[~flagged], m.programmed_uS[~flagged], ".", ms=1.5, alpha=0.3,
                 color=_DATA, label="devices")
    if flagged.any():
        scatter.plot(m.target_uS[flagged], m.programmed_uS[flagged], "x", ms=4, color="tab:red",
                     label=f"stuck ({int(flagged.sum())})")
    scatter.plot([0, g_max], [0, g_max], color=_FIT, lw=1, label="programmed = target")
    scatter.set(xlabel="target g_T [µS]", ylabel="first read [µS]", title="first read vs target")
    scatter.legend(fontsize="small", loc="lower right")
    grid = np.linspace(fit.chip.conductance.g_min_uS, g_max, 200)
    band = p.std_error(grid)
    std.fill_between(grid, p.std(grid) - band, p.std(grid) + band, color=_FIT, alpha=0.25)
    std.plot(grid, p.std(grid), color=_FIT, label="fit σ_prog ± 1σ")
    base = fit.base.programming
    if isinstance(base, PolynomialProgrammingNoise):
        base_std = np.polynomial.polynomial.polyval(grid / g_max, base.coefficients_uS) * (
            g_max / base.reference_g_max_uS * base.scale)
        std.plot(grid, np.maximum(base_std, 0), ":", color=_BASE, label=f"card {fit.base.name!r}")
    std.plot(p.bins.x, p.spread_uS, "s", ms=3, mfc="none", color=_BASE,
             label="spread of the first read")
    if np.any(p.read_std_uS > 0):
        std.plot(p.bins.x, p.read_std_uS, "--", color=_BASE, lw=1, label="read noise at t0")
    std.errorbar(p.bins.x, p.bins.y, p.bins.error, fmt="o", ms=3, color=_DATA,
                 label="σ_prog (read noise removed)")
    std.plot(fit.levels.levels_uS, np.zeros(fit.levels.count), "|", ms=8, color="tab:green",
             label=f"{fit.levels.count} distinguishable levels")
    std.set(xlabel="target g_T [µS]", ylabel="std [µS]", title="programming noise",
            ylim=(0, None))
    std.legend(fontsize="x-small")
    _residuals(residual, p.bins, p.bins.x, "bins")
    residual.set(xlabel="target g_T [µS]",
                 title=f"residuals (reduced χ² {p.bins.reduced_chi2:.2g})")
    return save(figure, path)


def _base_drift_moments(fit: DeviceFit, log_g: np.ndarray) -> tuple[np.ndarray, ...] | None:
    law = fit.base.drift
    if not isinstance(law, PcmPowerLawDrift):
        return None
    mean, std = pcm.drift_exponent_moments(
        torch.from_numpy(np.exp(log_g)), 1.0, law.mean_slope, law.mean_offset,
        (law.mean_min, law.mean_max), law.std_slope, law.std_offset, (law.std_min, law.std_max),
        law.g_rel_min)
    return mean.numpy() * law.scale, std.numpy() * law.scale


def _law_panel(axes: Axes, bins: Bins, line: ClippedLine, base: np.ndarray | None,
               grid: np.ndarray, title: str) -> None:
    axes.errorbar(np.exp(bins.x), bins.y, bins.error, fmt="o", ms=3, color=_DATA, label="bins")
    axes.plot(np.exp(grid), line(grid), color=_FIT, label="fit")
    if base is not None:
        axes.plot(np.exp(grid), base, ":", color=_BASE, label="base card")
    axes.set(xlabel="g_T / g_max", title=title)
    _log_x(axes)
    axes.legend(fontsize="small")


def _plot_drift(fit: DeviceFit, d: DriftFit, path: Path) -> Path:
    m = fit.measurements
    g_max = fit.chip.conductance.g_max_uS
    figure, (examples, means, spreads, residual) = panel_grid(4, 2, (4.8, 3.4), sharex=False,
                                                             sharey=False)
    log_g = np.log(m.target_uS[d.device] / g_max)
    picks = [int(np.argmin(np.abs(log_g - np.log(q)))) for q in (0.05, 0.2, 0.5, 0.9)]
    for colour, i in zip(("tab:red", "tab:orange", "tab:green", "tab:blue"), picks, strict=True):
        device = d.device[i]
        reads = m.read_device == device
        first = m.programmed_uS[device]
        t = np.r_[0.0, m.time_s[reads]] + d.t0_s
        examples.plot(t, np.r_[first, m.conductance_uS[reads]], ".", ms=3, color=colour,
                      label=f"g_T {m.target_uS[device]:.3g} µS, ν̂ {d.nu[i]:.3f}")
        line_t = np.geomspace(d.t0_s, t.max(), 50)
        examples.plot(line_t, np.exp(d.intercept[i]) * (line_t / d.t0_s) ** -d.nu[i], lw=1,
                      color=colour)
    examples.set(xscale="log", yscale="log", xlabel="time after programming t0 + time_s [s]",
                 ylabel="conductance [µS]", title="reads of four devices, fitted power laws")
    examples.legend(fontsize="x-small")
    grid = np.linspace(d.mean.x.min(), d.mean.x.max(), 200)
    base = _base_drift_moments(fit, grid)
    means.plot(np.exp(log_g), d.nu, ".", ms=1.5, alpha=0.2, color=_BASE, label="ν̂ per device")
    _law_panel(means, d.mean, d.mean_law, None if base is None else base[0], grid,
               "drift exponent: mean μ_ν")
    means.set_ylabel("ν")
    if d.std is not None and d.std_law is not None:
        _law_panel(spreads, d.std, d.std_law, None if base is None else base[1], grid,
                   "drift exponent: spread σ_ν (estimation noise removed)")
        _residuals(residual, d.std, np.exp(d.std.x), "σ_ν bins", "tab:orange", "s")
    spreads.set_ylabel("σ_ν")
    _residuals(residual, d.mean, np.exp(d.mean.x), "μ_ν bins")
    residual.set(xlabel="g_T / g_max", title="residuals")
    _log_x(residual)
    residual.legend(fontsize="small")
    return save(figure, path)


def _plot_read_noise(fit: DeviceFit, r: ReadNoiseFit, path: Path) -> Path:
    figure, (data, residual) = panel_grid(2, 2, (4.8, 3.6), sharex=False, sharey=False)
    for time in np.unique(r.time_s):
        at = r.time_s == time
        label = format_duration(time)
        line = data.errorbar(r.bins.x[at], r.bins.y[at], r.bins.error[at], fmt="o", ms=3,
                             label=f"{label} after the first read")
        data.plot(r.bins.x[at], r.bins.fit[at], "-", lw=1, color=line[0].get_color())
        residual.plot(r.bins.x[at], ((r.bins.y - r.bins.fit) / r.bins.error)[at], "o", ms=3,
                      color=line[0].get_color())
    _log_x(data)
    _log_x(residual)
    data.set(yscale="log", xlabel="g_prog / g_max",
             ylabel="std of repeated reads / g", title="1/f read noise: data (points), fit (lines)")
    data.legend(fontsize="x-small")
    residual.axhline(0, color=_FIT, lw=1)
    for level in (-2, 2):
        residual.axhline(level, color=_BASE, lw=0.8, ls=":")
    residual.set(xlabel="g_prog / g_max", ylabel="(data − fit) / error",
                 title=f"residuals (reduced χ² {r.bins.reduced_chi2:.2g})")
    return save(figure, path)


def _value_rows(fit: DeviceFit) -> list[list[str]]:
    rows = []
    for value in fit.values:
        numbers = value.value if isinstance(value.value, tuple) else (value.value,)
        errors = value.error if isinstance(value.error, tuple) else (value.error,)
        shown = ", ".join(f"{v:.5g}" for v in numbers)
        error = "" if value.error is None else ", ".join(f"{e:.2g}" for e in errors)
        rows.append([value.key, shown, error, value.comment])
    return rows


def write_fit_report(fit: DeviceFit, out_dir: str | Path) -> Path:
    """Draw the fit's data, fits and residuals and write ``out_dir/index.html``.

    Returns:
        The path of index.html; its images sit beside it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    m = fit.measurements
    sections = [
        heading("programming", "Programming noise"),
        paragraph("σ_prog(g_T) = Σ c_i (g_T/g_max)^i, fitted to the spread of the first read "
                  "around its target in bins of target, after removing the read noise the card "
                  "adds at t0. Green ticks: levels whose ±1 σ ranges touch."),
        figure_html(_plot_programming(fit, out_dir / "programming.png"), "programming noise"),
    ]
    if fit.drift is not None:
        sections += [
            heading("drift", "Drift"),
            paragraph(f"ν per device from the slope of ln g against ln((t0 + time_s)/t0), "
                      f"t0 = {fit.drift.t0_s:g} s; bins of ln(g_T/g_max) give μ_ν and σ_ν, each "
                      "fitted to clip(slope · ln g_rel + offset, min, max)."),
            figure_html(_plot_drift(fit, fit.drift, out_dir / "drift.png"), "drift"),
        ]
    if fit.read_noise is not None:
        sections += [
            heading("read_noise", "Read noise"),
            paragraph("Std of repeated reads at each time, relative to the conductance, fitted "
                      "to Q_s(g_prog) · √ln((t + t_read)/(2 t_read)), t = t0 + time_s."),
            figure_html(_plot_read_noise(fit, fit.read_noise, out_dir / "read_noise.png"),
                        "read noise"),
        ]
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in fit.notes)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>device fit: {html.escape(fit.chip.name)}</title>
<style>{_STYLE}</style></head><body>
<h1>Device card fitted to measurements: {html.escape(fit.chip.name)}</h1>
<p class="note">Measurements: {html.escape(m.source)} — {m.devices} devices,
{len(m.time_s)} later reads. Base card: {html.escape(fit.base.name)}. Fitted:
{html.escape(", ".join(fit.fitted_sections))}; everything else is the base card's.</p>
{heading("values", "Fitted numbers")}
{html_table(["field", "value", "± 1σ", "how"], _value_rows(fit))}
<ul>{notes}</ul>
{"".join(sections)}
{heading("card", "The card")}
<pre>{html.escape(fit.toml())}</pre>
</body></html>
"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
