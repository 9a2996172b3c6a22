"""IR drop: the first-order model against the exact nodal solve, and accuracy against tile size.

Part 1 compares :func:`analogsim.physics.ir_drop.effective_conductances` (the model the tiles
use, G / (1 + δ)) and its linear form G (1 − δ) with the exact nodal solve
(:func:`analogsim.physics.ir_drop.solve_crossbar`) on square crossbars of 8 to 256 rows, with
conductances in the ``pcm`` card's range, for wire segment resistances from 0.1 to 1,000 Ω (cases
whose first-order drop δ_max exceeds :data:`LARGEST_DROP` are skipped). Each crossbar is driven
by full-scale inputs (every row at 1) and by random inputs in [−1, 1]; errors are in units of
the largest ideal column current at full-scale input.

Part 2 trains the digits MLP (two hidden layers of 512) briefly and evaluates it on the ``pcm``
card with tiles of 64 to 512 rows and columns and several wire resistances, on the same chip
instances (IR drop draws nothing, so the chips are paired across resistances).

Writes ``benchmarks/results/ir_drop.json`` and, from it alone, ``docs/ir_drop.md`` and its two
figures. Run: ``python benchmarks/ir_drop.py`` (about a minute on one thread);
``--docs-only`` rewrites the page and figures from the committed JSON.
``tests/test_ir_drop.py`` checks that the committed page is what the JSON gives.
"""

from __future__ import annotations

import itertools
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from measured_page import measure_and_render

import analogsim as asim
from analogsim.datasets import load
from analogsim.model_summary import analog_layers
from analogsim.models import mlp
from analogsim.physics import ir_drop
from analogsim.statistics import interval_over_units
from analogsim.tiles.wires import OHM_TO_MEGAOHM
from analogsim.train import TrainingConfig, fit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "ir_drop.json"
PAGE = ROOT / "docs" / "ir_drop.md"
ERROR_FIGURE = ROOT / "docs" / "ir_drop_error.png"
ACCURACY_FIGURE = ROOT / "docs" / "ir_drop_accuracy.png"

CARD = "pcm"
# part 1
SIZES = (8, 16, 32, 64, 128, 256)
RESISTANCES_OHM = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
DISTRIBUTIONS = {
    "uniform": "G uniform in [g_min, g_max]",
    "weights": "g⁺ of Gaussian weights scaled to max|w| = 1: clamp(w, 0, 1)·g_max",
}
LARGEST_DROP = 20.0  # δ_max above which a case is skipped
RANDOM_INPUTS = 7  # besides the full-scale input
CROSSBAR_SEED = 0
DROP_BINS = (0.0, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0, LARGEST_DROP)
# part 2
TILE_SIZES = (64, 128, 256, 512)
WIRE_OHM = (0.0, 1.0, 3.0, 10.0)
HIDDEN = (512, 512)
CHIPS = 10  # chip instances 0…9
PROGRAM_SEED = 0
NOISE_SEED = 0
T_INFERENCE_S = 3600.0
TRAINING = TrainingConfig(epochs=20, batch_size=64, optimizer="adam", learning_rate=1e-3,
                          weight_decay=0.0, seed=0)


# ------------------------------------------------------------------------ part 1: the model


def crossbar(size: int, distribution: str, g_max: float, rng: np.random.Generator
             ) -> np.ndarray:
    """Conductances (size, size), siemens."""
    if distribution == "uniform":
        return rng.uniform(0.0, g_max, (size, size))
    w = rng.normal(0.0, 1.0, (size, size))
    return np.clip(w / np.abs(w).max(), 0.0, 1.0) * g_max


def model_errors(size: int, distribution: str, g_max: float) -> list[dict[str, Any]]:
    """One row per wire resistance: the drop and the errors of both forms of the model."""
    rng = np.random.default_rng([CROSSBAR_SEED, size, list(DISTRIBUTIONS).index(distribution)])
    g = crossbar(size, distribution, g_max, rng)
    inputs = np.vstack([np.ones((1, size)), rng.uniform(-1.0, 1.0, (RANDOM_INPUTS, size))])
    ideal = inputs @ g
    scale = ideal[0].max()  # the largest ideal column current at full-scale input
    rows = []
    for r in RESISTANCES_OHM:
        delta = ir_drop.relative_drops(torch.from_numpy(g), r).numpy()
        if delta.max() > LARGEST_DROP:
            continue
        started = time.perf_counter()
        exact = ir_drop.solve_crossbar(g, inputs, r).numpy()
        seconds = time.perf_counter() - started
        rows.append({
            "size": size, "distribution": distribution, "r_ohm": r,
            "mean_g_uS": float(g.mean() * 1e6), "r_g_n2": float(r * g.mean() * size**2),
            "delta_max": float(delta.max()),
            "drop": float((ideal[0] - exact[0]).max() / scale),
            "error": float(np.abs(inputs @ (g / (1 + delta)) - exact).max() / scale),
            "error_linear": float(np.abs(inputs @ (g * (1 - delta)) - exact).max() / scale),
            "exact_seconds": seconds,
        })
    return rows


def bound_summary(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """The stated bounds: error / δ_max² up to δ_max = 1, error / drop above."""
    small = [c for c in cases if c["delta_max"] <= 1.0]
    large = [c for c in cases if c["delta_max"] > 1.0]
    bins = []
    for low, high in itertools.pairwise(DROP_BINS):
        inside = [c for c in cases if low < c["delta_max"] <= high]
        if inside:
            bins.append({"low": low, "high": high, "cases": len(inside),
                         "drop": max(c["drop"] for c in inside),
                         "error": max(c["error"] for c in inside),
                         "error_linear": max(c["error_linear"] for c in inside),
                         "error_per_drop": max(c["error"] / c["drop"] for c in inside),
                         "error_linear_per_drop": max(c["error_linear"] / c["drop"]
                                                      for c in inside)})
    ratio = [c["delta_max"] / c["r_g_n2"] for c in cases]
    return {
        "per_delta_squared": max(c["error"] / c["delta_max"] ** 2 for c in small),
        "linear_per_delta_squared": max(c["error_linear"] / c["delta_max"] ** 2 for c in small),
        "per_drop_above_1": max(c["error"] / c["drop"] for c in large),
        "linear_per_drop_above_1": max(c["error_linear"] / c["drop"] for c in large),
        "delta_per_r_g_n2": [min(ratio), max(ratio)], "bins": bins,
    }


# ------------------------------------------------------------------------ part 2: accuracy


def largest_drop_per_ohm(amodel: torch.nn.Module) -> float:
    """δ_max at 1 Ω over every physical tile and device of instance 0's programmed
    conductances (δ is proportional to r)."""
    largest = 0.0
    for _, layer in analog_layers(amodel):
        tile = layer.tile
        g = tile.g_programmed[0]  # (D, out, rows) µS
        for a, b in tile.layout.row_chunks:
            for c, d in tile.layout.column_groups:
                delta = ir_drop.relative_drops(g[:, c:d, a:b].transpose(-1, -2).double(),
                                               OHM_TO_MEGAOHM)
                largest = max(largest, float(delta.max()))
    return largest


def interval(values: np.ndarray) -> dict[str, Any]:
    found = interval_over_units(values, ("chip",))
    return {"mean": found.mean, "low": found.low, "high": found.high, "n": found.n,
            "unit": found.unit}


def accuracy_against_tile_size(model: torch.nn.Module, data: Any) -> list[dict[str, Any]]:
    rows = []
    for size in TILE_SIZES:
        reference = None
        for r in WIRE_OHM:
            chip = asim.load_chip(CARD, mapping_tile_rows=size, mapping_tile_cols=size,
                                  wires_segment_resistance_ohm=r)
            amodel = asim.convert(model, chip)
            asim.program(amodel, seed=PROGRAM_SEED, instances=CHIPS)
            per_ohm = largest_drop_per_ohm(amodel)
            asim.drift(amodel, T_INFERENCE_S)
            result = asim.evaluate(amodel, (data.x_test, data.y_test), seed=NOISE_SEED)
            accuracy = np.asarray(result.accuracy, dtype=float)
            reference = accuracy if reference is None else reference
            rows.append({"tile": size, "r_ohm": r, "delta_max": per_ohm * r,
                         "accuracy": accuracy.tolist(), "interval": interval(accuracy),
                         "difference": interval(accuracy - reference)})
    return rows


def run() -> dict[str, Any]:
    torch.set_num_threads(1)
    torch.manual_seed(0)  # the model's initialisation
    started = time.perf_counter()
    chip = asim.load_chip(CARD)
    g_max = chip.conductance.g_max_uS * 1e-6
    cases = [row for size in SIZES for distribution in DISTRIBUTIONS
             for row in model_errors(size, distribution, g_max)]
    part1 = time.perf_counter() - started
    data = load("digits", seed=0)
    model = mlp(hidden=HIDDEN)
    fit(model, data, config=TRAINING)
    model.eval()
    with torch.no_grad():
        digital = int((model(data.x_test).argmax(1) == data.y_test).sum()) / len(data.y_test)
    return {
        "cases": cases, "bounds": bound_summary(cases),
        "accuracy": {"digital": digital, "rows": accuracy_against_tile_size(model, data)},
        "settings": {
            "card": CARD, "g_max_uS": chip.conductance.g_max_uS, "sizes": list(SIZES),
            "resistances_ohm": list(RESISTANCES_OHM), "distributions": DISTRIBUTIONS,
            "largest_drop": LARGEST_DROP, "random_inputs": RANDOM_INPUTS,
            "crossbar_seed": CROSSBAR_SEED, "tile_sizes": list(TILE_SIZES),
            "wire_ohm": list(WIRE_OHM), "hidden": list(HIDDEN), "chips": CHIPS,
            "program_seed": PROGRAM_SEED, "noise_seed": NOISE_SEED,
            "t_inference_s": T_INFERENCE_S, "train_samples": len(data.y_train),
            "test_samples": len(data.y_test), "epochs": TRAINING.epochs,
            "optimizer": TRAINING.optimizer, "learning_rate": TRAINING.learning_rate,
            "batch_size": TRAINING.batch_size, "training_seed": TRAINING.seed,
        },
        "made": {"wall_time_s": time.perf_counter() - started, "model_part_s": part1,
                 "threads": 1, "torch": torch.__version__,
                 "python": platform.python_version()},
    }


# ------------------------------------------------------------------------ the page


def pct(value: float, digits: int = 2) -> str:
    return f"{100 * value:.{digits}f}"


def upper(value: float, decimals: int) -> str:
    """``value`` rounded up to ``decimals`` places: a bound the data stay below."""
    step = 10.0**-decimals
    return f"{np.ceil(value / step) * step:.{decimals}f}"


def error_table(bounds: dict[str, Any]) -> list[str]:
    lines = ["| δ_max | cases | largest drop, % | largest error, % (G/(1+δ)) | error / drop | "
             "largest error, % (G(1−δ)) | error / drop |", "|---|---|---|---|---|---|---|"]
    for b in bounds["bins"]:
        lines.append(f"| {b['low']:g} – {b['high']:g} | {b['cases']} | {pct(b['drop'])} | "
                     f"{pct(b['error'], 3)} | {b['error_per_drop']:.2f} | "
                     f"{pct(b['error_linear'], 3)} | {b['error_linear_per_drop']:.2f} |")
    return lines


def size_table(cases: list[dict[str, Any]]) -> list[str]:
    """Error at the largest δ_max ≤ 1 and the largest overall, per size and distribution."""
    lines = ["| crossbar | G | mean G, µS | r, Ω | r·Ḡ·N² | δ_max | drop, % | error, % |",
             "|---|---|---|---|---|---|---|---|"]
    for size in sorted({c["size"] for c in cases}):
        for distribution in DISTRIBUTIONS:
            mine = [c for c in cases if c["size"] == size and c["distribution"] == distribution]
            within = [c for c in mine if c["delta_max"] <= 1.0]
            picks = [mine[-1]]
            if within and within[-1] is not mine[-1]:
                picks.insert(0, within[-1])
            for p in picks:
                lines.append(f"| {size}×{size} | {distribution} | {p['mean_g_uS']:.2f} | "
                             f"{p['r_ohm']:g} | {p['r_g_n2']:.3g} | {p['delta_max']:.3g} | "
                             f"{pct(p['drop'])} | {pct(p['error'], 3)} |")
    return lines


def accuracy_table(accuracy: dict[str, Any]) -> list[str]:
    lines = ["| tile | r, Ω | δ_max | accuracy, % (95 % CI) | difference to r = 0, points "
             "(95 % CI) |", "|---|---|---|---|---|"]
    for row in accuracy["rows"]:
        a, d = row["interval"], row["difference"]
        difference = ("—" if row["r_ohm"] == 0 else
                      f"{100 * d['mean']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]")
        lines.append(f"| {row['tile']}×{row['tile']} | {row['r_ohm']:g} | "
                     f"{row['delta_max']:.3g} | {pct(a['mean'])} [{pct(a['low'])}, "
                     f"{pct(a['high'])}] | {difference} |")
    return lines


def test_set_error(accuracy: dict[str, Any], settings: dict[str, Any]) -> float:
    """The binomial standard error of an accuracy at the digital one on the test images."""
    p = accuracy["digital"]
    return float(np.sqrt(p * (1 - p) / settings["test_samples"]))


def loss_sentence(accuracy: dict[str, Any]) -> str:
    """Where the accuracy falls most against r = 0 on the same tiles."""
    worst = min(accuracy["rows"], key=lambda row: row["difference"]["mean"])
    d = worst["difference"]
    return (f"The largest loss is {-100 * d['mean']:.2f} points [{-100 * d['high']:.2f}, "
            f"{-100 * d['low']:.2f}], on {worst['tile']}×{worst['tile']} tiles at "
            f"{worst['r_ohm']:g} Ω (δ_max {worst['delta_max']:.3g}).")


def gain_note(accuracy: dict[str, Any], settings: dict[str, Any]) -> str:
    """What the largest gain against r = 0 is, next to the test set's standard error."""
    best = max(accuracy["rows"], key=lambda row: row["difference"]["mean"])["difference"]
    if best["mean"] <= 0:
        return ""
    kind = "below" if best["mean"] < test_set_error(accuracy, settings) else "above"
    return f" (the largest gain above, {100 * best['mean']:+.2f} points, is {kind} it)"


def render_page(summary: dict[str, Any]) -> str:
    """docs/ir_drop.md from the JSON summary alone."""
    s, b, made = summary["settings"], summary["bounds"], summary["made"]
    acc = summary["accuracy"]
    largest_size = max(c["size"] for c in summary["cases"])
    lines = [
        "# IR drop: wire resistance in the crossbars", "",
        "<!-- Generated by `python benchmarks/ir_drop.py` from benchmarks/results/ir_drop.json "
        "(`--docs-only` rewrites it and its figures from the JSON). Do not edit by hand. -->", "",
        "The wires of a crossbar have resistance. The currents of the cells flow along their "
        "row from the driver and down their column to the ADC, and drop a voltage on every "
        "wire segment on the way, so each cell sees less than its input voltage: the column "
        "currents fall short of G·V, more so the larger the tile (longer wires carrying more "
        "cells' current) and the larger the conductances. A card turns this on with one key:",
        "", "```toml", "[wires]",
        "segment_resistance_ohm = 1.0  # Ω between adjacent cells, along rows and columns", "```",
        "", "Absent or 0 (the default), nothing changes: the tiles take exactly the path they "
        "took before wires existed, bit for bit.", "",
        "## The model", "",
        "Each physical tile of a layer (a row chunk × a column group of `[mapping]`, one "
        "crossbar per device of a differential pair) is a resistor network: row i is driven at "
        "its start (before column 0), column j is held at virtual ground by its ADC at its end "
        "(after the last row), cell (i, j) is a conductance G_ij, and every wire segment between "
        "adjacent cells, between a driver and its first cell and between the last cell of a "
        "column and its ADC has resistance r. Cell (i, j) is j + 1 segments from its driver and "
        "rows − i segments from its ADC.", "",
        "With linear devices and ideal access switches (the assumptions of CrossSim's "
        "parasitic solvers, `sandialabs/cross-sim` `simulator/circuits/array/`) and inputs "
        "applied as voltage amplitudes at the same time, the network is linear: the column "
        "currents are I = Vᵀ·M for an effective conductance matrix M(G, r) that does not depend "
        "on the input. So the drop folds into the conductances the MVM sees, once per read of "
        "the conductances (programming, drift, measured conductances), with no cost per "
        "forward. To first order in r the ideal cell currents G_ij·V_i flow through the wires, "
        "and the output contribution of cell (i, j) falls by the relative drop", "",
        "    δ_ij = r · ( Σ_l G_il (min(j, l) + 1)  +  Σ_k G_kj (rows − max(i, k)) ),", "",
        "the first sum from the row segments the cell shares with the cells of its row, the "
        "second from the column segments it shares with the cells of its column; both are two "
        "cumulative sums over the tile (`analogsim.physics.ir_drop.relative_drops`). "
        "M = G·(1 − δ) is exact to first order; analogsim uses the same first order in "
        "rational form, **M = G / (1 + δ)** (`effective_conductances`), which stays positive "
        "and is closer to the exact solve (below). In the tile "
        "(`analogsim/tiles/wires.py`) each device's conductance (µS, with r in MΩ) is divided "
        "by its 1 + δ before the weights are read out of the conductances, so the normalised "
        "weight becomes (g⁺/(1 + δ⁺) − g⁻/(1 + δ⁻)) / (g_max − g_min): a multiplicative "
        "correction per device, in conductance units. The drift-compensation read-out and the "
        "conductance-square weights of per-read noise see the same corrected conductances. "
        "A live (training-mode) tile maps its weights onto conductances (without levels, so "
        "gradients pass) and applies the same correction at every forward: hardware-aware "
        "training sees the drop.", "",
        "What the model leaves out: pulse-width-modulated inputs (aihwkit's time-domain model "
        "`analog_mvm_irdrop_t.py` integrates them, which makes the drop input-dependent), "
        "non-linear device I–V curves, the resistance of access transistors, drivers and ADC "
        "inputs beyond one wire segment, and wire capacitance. A partly filled tile is modelled "
        "as its used block in the corner next to the drivers and ADCs, its unused cells "
        "conducting nothing; a single device's mid-range reference current is subtracted "
        "ideally. The aihwkit backend refuses a card with wire resistance (its own IR-drop "
        "models are other models).", "",
        "## With weight coding", "",
        "A coded tile (`[coding]`: sign protection, adaptive mapping, redundancy; "
        "`analogsim/tiles/coding.py`) stores its cells as one row and decodes each weight "
        "from its cells' reads. With wire resistance the cells are placed on the same "
        "crossbars as the uncoded weights, the way a designer lays out a coded array for an "
        "MVM (`coded_placement` in `analogsim/tiles/wires.py`):", "",
        "- weight (o, i)'s cells sit in output o's column, in a bundle of adjacent rows "
        "driven by input i, so the copies of redundancy add their currents on the column "
        "(as the cost model prices them: extra cells, no extra ADCs);",
        "- the bundle of input i has `r_small` rows, plus `r_large − r_small` rows when any "
        "weight of input i in that tile is large; copy t of a weight is in row t of its "
        "bundle, and the extra rows' places in the columns of small weights hold no cell "
        "(no conductance). The bundles follow the inputs as the rows do without coding, so "
        "a redundant tile's crossbar has r_small·rows rows and more, not `mapping.tile_rows` "
        "(the cost model counts the copies' devices outside the tiles, not the unused places "
        "of their rows);",
        "- the sign and small/large side bits are digital and are not on the crossbar; with "
        "weight slicing every slice is coded and has its own copy of the crossbars, as "
        "without coding.", "",
        "Each crossbar's cells (and unused places at 0 µS) then get the same first-order "
        "correction G / (1 + δ), and the tile decodes the weights from the corrected cells "
        "(drift compensation of a coded tile, which rescales the cells' reads, sees them "
        "too). With one cell per weight (no redundancy) every cell is where the uncoded "
        "weight would be and gets the uncoded tile's factor for the same conductances; with "
        "r = 0 a coded tile takes its path of before, bit for bit (`tests/"
        "test_coding_composition.py` checks both, and a five-row crossbar of copies by "
        "hand).", "",
        "The drop is larger on coded tiles than on uncoded ones: sign protection maps |w| = 0 "
        "to x = −1, a device at g_max, so the many small weights of a trained layer conduct "
        "fully where the uncoded pair holds them near g_min, the crossbar carries more current "
        "and each cell's δ is larger; the decoding then turns a change of x̂ into m/2 times it "
        "on the weight. The weight error of both grows with the tile size and with g_max, "
        "and the coded one is the larger (`tests/test_coding_composition.py` checks both on "
        "Gaussian weights; this page measures the uncoded tile only). "
        "A live (training-mode) coded tile trains on the digital weight as without wires "
        "(coding acts only on programmed tiles) and sees the uncoded drop.", "",
        "## Its error against the exact nodal solve", "",
        f"The exact solve (`solve_crossbar`) writes Kirchhoff's current law at the "
        f"2·rows·cols row- and column-line nodes and solves the sparse system (scipy's sparse "
        f"LU). It was run on square crossbars of {', '.join(str(n) for n in s['sizes'])} rows "
        f"with conductances up to the `{s['card']}` card's g_max = {s['g_max_uS']:g} µS, two "
        "distributions (" + "; ".join(f"{k}: {v}" for k, v in s["distributions"].items())
        + f"), wire resistances {', '.join(f'{r:g}' for r in s['resistances_ohm'])} Ω "
        f"(cases with δ_max > {s['largest_drop']:g} skipped), crossbar seed "
        f"{s['crossbar_seed']}. Inputs: all rows at full scale, and {s['random_inputs']} "
        "random vectors uniform in [−1, 1]. The drop and the error are the largest over "
        "columns and inputs, in units of the largest ideal column current at full-scale "
        "input; the drop is at full-scale input.", "",
        "The governing number is δ_max, the model's largest relative drop; it is r·Ḡ·N² "
        f"(Ḡ the mean conductance, N the side) times {b['delta_per_r_g_n2'][0]:.2f} to "
        f"{b['delta_per_r_g_n2'][1]:.2f} on these crossbars. A small crossbar with large r "
        "stands for a large one with small r: a 64×64 tile at 64 Ω has the δ of a 512×512 "
        "tile at 1 Ω.", "",
        f"**Stated bound.** Up to δ_max = 1 the model's error is below "
        f"{upper(b['per_delta_squared'], 3)}·δ_max² of the largest column current "
        f"(the linear form G(1 − δ): {upper(b['linear_per_delta_squared'], 3)}·δ_max²); "
        f"above, up to δ_max = {s['largest_drop']:g}, it stays below "
        f"{upper(100 * b['per_drop_above_1'], 1)} % of the drop itself (the linear form: "
        f"{upper(100 * b['linear_per_drop_above_1'], 0)} %, "
        "where 1 − δ turns negative). `tests/test_ir_drop.py` holds the model to "
        "0.1·δ_max² and 10 % of the drop on other random crossbars of 8 to 32 rows. By "
        "δ_max:", "",
        *error_table(b), "",
        "Per crossbar, the case with the largest δ_max ≤ 1 and the largest case run:", "",
        *size_table(summary["cases"]), "",
        f"At the same δ_max the error grows only slowly with the size (compare the rows "
        f"above); {largest_size}×{largest_size} is the largest crossbar solved exactly here "
        "(the sparse LU of larger ones takes minutes). Every case is in the JSON.", "",
        "![error of the model against the exact solve](ir_drop_error.png)", "",
        "## Accuracy against tile size", "",
        f"The digits MLP with two hidden layers of {s['hidden'][0]} (`analogsim.models.mlp("
        f"hidden=({s['hidden'][0]}, {s['hidden'][1]}))`), trained digitally for {s['epochs']} "
        f"epochs ({s['optimizer']}, learning rate {s['learning_rate']:g}, batch "
        f"{s['batch_size']}, seed {s['training_seed']}, initialisation torch seed 0) on the "
        f"{s['train_samples']} training images of `load_digits` (split seed 0), digital "
        f"accuracy {pct(acc['digital'])} % on its {s['test_samples']} test images. It runs on "
        f"the `{s['card']}` card with `mapping.tile_rows = tile_cols` = "
        f"{', '.join(str(t) for t in s['tile_sizes'])} and `wires.segment_resistance_ohm` = "
        f"{', '.join(f'{r:g}' for r in s['wire_ohm'])} Ω, on {s['chips']} chip instances "
        f"(ids 0–{s['chips'] - 1}, program seed {s['program_seed']}, noise seed "
        f"{s['noise_seed']}) read {s['t_inference_s']:g} s after programming with the card's "
        "drift compensation. IR drop draws nothing, so every resistance runs on the same chips "
        "as r = 0 at the same tile size, and the differences are paired per chip. δ_max is the "
        "largest first-order drop over the layers' tiles and devices of chip 0 as programmed; "
        "where it exceeds 1 the model is in the range the second table above covers (its error "
        "a fraction of the drop) and the accuracy is that of the model, not of an exact "
        "circuit.", "",
        *accuracy_table(acc), "",
        f"Intervals: Student's t over n = {acc['rows'][0]['interval']['n']} chip instances, on "
        f"one test set. {loss_sentence(acc)} IR drop is a systematic change of the weights: "
        "on a given test set it moves the accuracy by a fixed amount, up or down, that chips "
        "do not average out and another test set would not repeat. Differences smaller than "
        f"the binomial standard error of {s['test_samples']} test images, "
        f"√(p(1 − p)/{s['test_samples']}) = {100 * test_set_error(acc, s):.2f} points at the "
        f"digital accuracy, are no evidence of an effect on the task{gain_note(acc, s)}.", "",
        "![accuracy against tile size](ir_drop_accuracy.png)", "",
        "## Reproduce", "",
        "`python benchmarks/ir_drop.py` (one thread) writes `benchmarks/results/ir_drop.json`, "
        "this page and its figures; `--docs-only` rewrites the page and figures from the JSON. "
        f"Made in {made['wall_time_s']:.0f} s ({made['model_part_s']:.0f} s of them the exact "
        f"solves) on {made['threads']} thread (torch {made['torch']}, Python "
        f"{made['python']}).", "",
    ]
    return "\n".join(lines)


def render_figures(summary: dict[str, Any]) -> None:
    """docs/ir_drop_error.png and docs/ir_drop_accuracy.png from the JSON summary alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = summary["cases"]
    figure, axis = plt.subplots(figsize=(6.4, 4.4))
    sizes = sorted({c["size"] for c in cases})
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(sizes)))
    for size, colour in zip(sizes, colours, strict=True):
        mine = [c for c in cases if c["size"] == size]
        x = [c["delta_max"] for c in mine]
        axis.scatter(x, [c["error"] for c in mine], color=colour, s=18,
                     label=f"{size}×{size}")
        axis.scatter(x, [c["error_linear"] for c in mine], facecolors="none",
                     edgecolors=colour, s=18)
    bound = summary["bounds"]["per_delta_squared"]
    x = np.logspace(np.log10(min(c["delta_max"] for c in cases)), 0, 50)
    axis.plot(x, bound * x**2, "k--", linewidth=1,
              label=f"{upper(bound, 3)}·δ_max² (the bound)")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("δ_max (largest first-order relative drop)")
    axis.set_ylabel("error / largest ideal column current")
    axis.set_title("filled: G/(1+δ) (the model); open: G(1−δ)")
    axis.legend(fontsize=8)
    axis.grid(True, which="major", alpha=0.3)
    figure.tight_layout()
    figure.savefig(ERROR_FIGURE, dpi=110, metadata={"Software": None})
    plt.close(figure)

    rows = summary["accuracy"]["rows"]
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    for r in summary["settings"]["wire_ohm"]:
        mine = [row for row in rows if row["r_ohm"] == r]
        tiles = [row["tile"] for row in mine]
        means = np.array([100 * row["interval"]["mean"] for row in mine])
        errors = np.array([[100 * (row["interval"]["mean"] - row["interval"]["low"]),
                            100 * (row["interval"]["high"] - row["interval"]["mean"])]
                           for row in mine]).T
        axis.errorbar(tiles, means, yerr=errors, marker="o", capsize=3, label=f"r = {r:g} Ω")
    axis.set_xscale("log", base=2)
    axis.set_xticks(summary["settings"]["tile_sizes"])
    axis.set_xticklabels([str(t) for t in summary["settings"]["tile_sizes"]])
    axis.set_xlabel("tile rows = columns")
    axis.set_ylabel("test accuracy, % (95 % CI over chips)")
    axis.legend(fontsize=8)
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(ACCURACY_FIGURE, dpi=110, metadata={"Software": None})
    plt.close(figure)


def main() -> None:
    measure_and_render(__doc__.splitlines()[0], RESULTS, PAGE, run, render_page, render_figures)


if __name__ == "__main__":
    main()
