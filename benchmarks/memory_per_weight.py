"""Bytes of programmed state per weight for every shipped card, and the peak of program + drift.

Measures, for each card of ``devices/`` (issue 18, real-size models):

- the bytes per weight a programmed tile holds, buffer by buffer: once per model (``fixed``) and
  per chip instance, from one ``Linear(1024, 1024)`` programmed with K = 1 and K = 2 instances,
  drifted to a year and pushed through one forward (which builds the forward plan). Storages
  are counted once each (``untyped_storage().nbytes()``), so views cost nothing. ``state``
  is what ``state_dict`` saves (``STATE_BUFFERS``), ``in memory`` adds the caches (1/f read
  noise's Q_s, the forward plan); ``estimate`` is :func:`analogsim.memory.estimate_memory`;
- the resident memory of program (K = 1) and of a drift to a year on a stack of five
  ``Linear(2048, 2048)`` (21 M weights), relative to the digital parameters' bytes, in a fresh
  process per card with ``MALLOC_MMAP_THRESHOLD_=65536``: glibc then maps every block over
  64 KiB on its own and unmaps it when freed, so the resident set (``VmRSS``) is the live
  tensors and its high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs``) is their
  peak. torch's CPU tensors are invisible to ``tracemalloc``; ``ru_maxrss`` cannot be reset;
- what storing programmed conductances in float16 changes: the drifted weights against float32
  storage (same seed, same draws), and the accuracy of two digits MLPs over 20 chips.

Writes ``benchmarks/results/memory_per_weight.json`` and renders ``docs/memory.md`` from it;
every number on the page comes from the JSON. A ``--baseline FILE`` (this script run with
``--no-precision --output FILE`` on other code: the code before issue 18) becomes the page's
"before" columns, and stays in the JSON through later runs.

Run: ``python benchmarks/memory_per_weight.py`` (2–3 min on 2 cores, each process < 1 GiB);
``--docs-only`` re-renders the page from the JSON (``tests/test_programmed_memory.py`` checks
the committed page is that render).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "memory_per_weight.json"
PAGE = ROOT / "docs" / "memory.md"
YEAR_S = 365 * 86400.0
TIMES_S = {"1 h": 3600.0, "1 day": 86400.0, "1 year": YEAR_S}
SIDE = 1024  # the per-weight layer: Linear(SIDE, SIDE)
STACK = (5, 2048)  # the peak model: STACK[0] × Linear(STACK[1], STACK[1])
MMAP_THRESHOLD = 65536  # bytes; MALLOC_MMAP_THRESHOLD_ of the peak processes
PRECISION_LAYER = (512, 512)  # in, out of the layer the storage precision is measured on
PRECISION_INSTANCES = 8
ACCURACY_CHIPS = 20  # chip instances of each digits MLP


# ------------------------------------------------------------------------------ measuring

def tile_bytes(model: nn.Module) -> dict[str, int]:
    """Bytes of every distinct storage the analog tiles of ``model`` hold, by buffer name;
    the caches as ``read_noise_q (cache)`` and ``forward plan (cache)``."""
    from analogsim.conversion import analog_layers
    from analogsim.tiles.programmed import STATE_BUFFERS

    seen: set[int] = set()
    found: dict[str, int] = {}
    for _, layer in analog_layers(model):
        tile = layer.tile
        items = [(name, getattr(tile, name)) for name in STATE_BUFFERS]
        items.append(("read_noise_q (cache)", tile.read_noise_q))
        plan = tile.plan
        if plan is not None:
            planes = [p for chunk in plan.planes.values() for d in chunk for p in d.planes]
            items += [("forward plan (cache)", t) for t in
                      [plan.exact, *plan.matrices, *plan.q, *planes]]
        for name, tensor in items:
            if tensor is None or not tensor.numel():
                continue
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                found[name] = found.get(name, 0) + storage.nbytes()
    return found


def per_weight(card: str) -> dict[str, Any]:
    """Bytes per weight of a programmed Linear(SIDE, SIDE) on ``card``: per buffer, the
    state, in memory and the estimate, each as [fixed, per instance]."""
    import analogsim as asim
    from analogsim.memory import estimate_memory
    from analogsim.tiles.programmed import STATE_BUFFERS

    measured, estimates = {}, {}
    for instances in (1, 2):
        torch.manual_seed(0)
        model = asim.convert(nn.Sequential(nn.Linear(SIDE, SIDE)), card).eval()
        estimates[instances] = estimate_memory(model, instances).total
        asim.program(model, seed=0, instances=instances)
        asim.drift(model, YEAR_S)
        with torch.no_grad(), asim.instances_folded(model):
            model(torch.randn(64 * instances, SIDE))
        measured[instances] = tile_bytes(model)
    weights = SIDE * SIDE

    def split(one: float, two: float) -> list[float]:  # [fixed, per instance] per weight
        return [(2 * one - two) / weights, (two - one) / weights]

    names = sorted(set(measured[1]) | set(measured[2]))
    buffers = {n: split(measured[1].get(n, 0), measured[2].get(n, 0)) for n in names}
    state = [n for n in names if n in STATE_BUFFERS]
    total = {k: sum(measured[k][n] for n in names if n in measured[k]) for k in (1, 2)}
    return {
        "devices": 2 if asim.load_chip(card).conductance.pair == "differential" else 1,
        "buffers": buffers,
        "state": [sum(buffers[n][i] for n in state) for i in (0, 1)],
        "in_memory": split(total[1], total[2]),
        "estimate": split(estimates[1], estimates[2]),
    }


def _status() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    return {key: int(re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)[1]) * 1024
            for key in ("VmRSS", "VmHWM")}


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS


def peak(card: str) -> dict[str, Any]:
    """Resident bytes above the converted model's while programming and drifting the stack
    (run in a process of its own with MALLOC_MMAP_THRESHOLD_; see the module docstring)."""
    import analogsim as asim

    torch.manual_seed(0)
    count, width = STACK
    digital = nn.Sequential(*[nn.Linear(width, width) for _ in range(count)])
    parameter_bytes = sum(p.numel() * p.element_size() for p in digital.parameters())
    model = asim.convert(digital, card).eval()
    del digital
    gc.collect()
    base = _status()["VmRSS"]
    _reset_peak()
    asim.program(model, seed=0, instances=1)
    programmed = _status()
    _reset_peak()
    asim.drift(model, YEAR_S)
    drifted = _status()
    return {"parameter_bytes": parameter_bytes,
            "weights": sum(m.weight.numel() for m in model), "largest_layer": width * width,
            "state_bytes": sum(tile_bytes(model).values()),
            "program_peak": programmed["VmHWM"] - base, "programmed": programmed["VmRSS"] - base,
            "drift_peak": drifted["VmHWM"] - base, "drifted": drifted["VmRSS"] - base}


def peak_in_subprocess(card: str) -> dict[str, Any]:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}
    done = subprocess.run([sys.executable, __file__, "--peak", card], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def _drifted_weights(chip: Any, storage: torch.dtype, t_s: float) -> torch.Tensor:
    """w_effective (K, out, rows) of one PRECISION_LAYER on PRECISION_INSTANCES instances,
    drifted to ``t_s`` (0: as programmed), with the programmed conductances stored as
    ``storage``."""
    import analogsim as asim
    from analogsim.tiles import device_model

    torch.manual_seed(1)
    model = asim.convert(nn.Sequential(nn.Linear(*PRECISION_LAYER)), chip).eval()
    with mock.patch.object(device_model, "CONDUCTANCE_STORAGE", storage):
        asim.program(model, seed=0, instances=PRECISION_INSTANCES)
    assert model[0].tile.g_programmed.dtype == storage
    if t_s > 0:
        asim.drift(model, t_s)
    return model[0].tile.w_effective


def conductance_precision() -> dict[str, Any]:
    """float16 against float32 programmed conductances on the pcm card: weights, accuracy."""
    import analogsim as asim
    from analogsim.conversion import analog_layers
    from analogsim.physics import pcm, programming
    from analogsim.tiles import device_model
    from analogsim.train.reference import trained_digits_mlp

    times = {"programmed": 0.0, **TIMES_S}
    weights = {}
    for label, chip in (("pcm", asim.load_chip("pcm")),
                        ("pcm, no read noise", asim.load_chip("pcm", read_noise_law="none"))):
        for time, t_s in times.items():
            half, single = (_drifted_weights(chip, dtype, t_s)
                            for dtype in (torch.float16, torch.float32))
            delta = (half - single).double()
            weights[f"{label} @ {time}"] = {"max": delta.abs().max().item(),
                                            "rms": delta.pow(2).mean().sqrt().item()}
    accuracy = {}
    for hidden in ((64, 64), (256, 256)):
        digital, data = trained_digits_mlp(seed=0, hidden=hidden)
        test = (data.x_test, data.y_test)
        rows = {}
        for dtype in (torch.float32, torch.float16):
            model = asim.convert(digital, "pcm").eval()
            with mock.patch.object(device_model, "CONDUCTANCE_STORAGE", dtype):
                asim.program(model, seed=0, instances=ACCURACY_CHIPS)
            assert all(layer.tile.g_programmed.dtype == dtype
                       for _, layer in analog_layers(model))
            for time, t_s in TIMES_S.items():
                asim.drift(model, t_s)
                rows.setdefault(time, []).append(asim.evaluate(model, test).accuracy)
        name = "-".join(str(n) for n in (64, *hidden, 10))
        accuracy[name] = {time: {
            "float32": float(a.mean()), "float16": float(b.mean()),
            "std_over_chips": float(a.std(ddof=1)),
            "max_difference": float(abs(a - b).max()),
            "chips_differing": int((a != b).sum()), "chips": len(a),
            "samples": len(data.y_test)} for time, (a, b) in rows.items()}
    chip = asim.load_chip("pcm")
    read, law, g_max = chip.read_noise, chip.programming, chip.conductance.g_max_uS
    factor = pcm.read_noise_time_factor(3600.0, read.t0_s, read.t_read_s)
    idle = programming.polynomial_programming_std(torch.zeros(1), law.coefficients_uS, g_max,
                                                  law.reference_g_max_uS) * law.scale
    spacing = 2.0 ** (math.floor(math.log2(2 * g_max)) - 10)
    return {"weights": weights, "accuracy": accuracy,
            "layer": f"Linear{PRECISION_LAYER}", "instances": PRECISION_INSTANCES,
            "bound_relative": 2.0**-11, "pcm_g_max_uS": g_max, "pcm_spacing_uS": spacing,
            "rounding_fraction": device_model.CONDUCTANCE_ROUNDING_FRACTION,
            "dtypes": {card: str(device_model.conductance_dtype(asim.load_chip(card)))
                       .removeprefix("torch.") for card in asim.list_chips()},
            "pcm_read_noise_min_relative_1h": read.q_coefficient * factor * read.scale,
            "pcm_idle_programming_std_uS": float(idle),
            "cache_devices": device_model.CACHE_DEVICES,
            "block_devices": device_model.BLOCK_DEVICES}


def measure(precision: bool, names: list[str] | None = None) -> dict[str, Any]:
    import analogsim as asim

    cards = {}
    for card in names or asim.list_chips():
        cards[card] = {**per_weight(card), "peak": peak_in_subprocess(card)}
        print(f"{card}: {json.dumps(cards[card])}", flush=True)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch "
                          f"{torch.__version__}",
               "layer": f"Linear({SIDE}, {SIDE})",
               "stack": f"{STACK[0]} × Linear({STACK[1]}, {STACK[1]})",
               "mmap_threshold": MMAP_THRESHOLD, "cards": cards}
    if precision:
        results["conductances"] = conductance_precision()
    return results


# ------------------------------------------------------------------------------ the page

def _b(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) >= 0.005 else "0"


def _pair(values: list[float]) -> str:
    return f"{_b(values[0])} + {_b(values[1])}·K"


def _ratios(p: dict[str, Any]) -> list[str]:
    """final, program peak, drift peak over the parameter bytes; peak over final; bytes per
    weight of the largest layer the peak adds to the final state."""
    digital, top = p["parameter_bytes"], max(p["program_peak"], p["drift_peak"])
    return [f"{p[key] / digital:.2f}" for key in ("drifted", "program_peak", "drift_peak")] + [
        f"{top / p['drifted']:.2f}", f"{(top - p['drifted']) / p['largest_layer']:.0f}"]


def render(results: dict[str, Any]) -> str:
    """docs/memory.md from the results JSON."""
    cards, before = results["cards"], results.get("before", {}).get("cards", {})
    precision = results["conductances"]
    lines = [
        "# Memory",
        "",
        "<!-- Written by benchmarks/memory_per_weight.py from "
        "benchmarks/results/memory_per_weight.json; do not edit. -->",
        "",
        "How many bytes a programmed model holds per weight on each shipped card, and how high "
        "memory climbs while `program` and `drift` run (issue 18, real-size models). Measured "
        f"by `python benchmarks/memory_per_weight.py` on {results['machine']}; the *before* "
        "columns are the same script run on the code before issue 18.",
        "",
        "- [Bytes per weight](#bytes-per-weight)",
        "- [Peak of program and drift](#peak-of-program-and-drift)",
        "- [Conductances in float16](#conductances-in-float16)",
        "",
        "## Bytes per weight",
        "",
        f"One `{results['layer']}` per card, programmed on K = 1 and K = 2 chip instances, "
        "drifted to a year, one forward run; bytes per weight as *once + per instance·K*. "
        "*State* is what `state_dict` saves (with the drift exponents a drift caches in layers "
        f"of at most {precision['cache_devices']:,} devices per instance, not this one's); "
        "*in memory* adds the caches (1/f read noise's Q_s, the forward plan's matrix); "
        "*estimate* is `analogsim.memory.estimate_memory`, "
        "which `program` checks against the memory available (its docstring has the formula).",
        "",
        "| card | devices per weight | state | in memory | estimate | before: state | "
        "before: in memory |",
        "|---|---|---|---|---|---|---|",
    ]
    for card, c in cards.items():
        old = before.get(card)
        lines.append(f"| {card} | {c['devices']} | {_pair(c['state'])} | "
                     f"{_pair(c['in_memory'])} | {_pair(c['estimate'])} | "
                     + (f"{_pair(old['state'])} | {_pair(old['in_memory'])} |" if old
                        else "— | — |"))
    names = sorted({n for c in cards.values() for n in c["buffers"]})
    lines += ["", "Buffer by buffer, now (bytes per weight, *once + per instance·K*; scales and "
              "compensation factors take a few bytes per output and tile):", "",
              "| buffer | " + " | ".join(cards) + " |", "|---" * (len(cards) + 1) + "|"]
    for name in names:
        row = [_pair(c["buffers"][name]) if name in c["buffers"] else "—" for c in cards.values()]
        if any(r not in ("—", "0 + 0·K") for r in row):
            lines.append(f"| `{name}` | " + " | ".join(row) + " |")
    lines += [
        "",
        "What issue 18 changed, and why it is exact:",
        "",
        "- The targets are packed to one float32 per weight (`g_target_packed`, was "
        "`g_target`, one per device): a differential pair's targets put one device at g_min, "
        "so the pair is the other device's conductance with a sign "
        "(`analogsim.tiles.programmed.pack_targets`; unpacked bit for bit).",
        "- A card without programming error or stuck devices (ideal) shares the targets as "
        "every instance's conductances instead of copying them per instance.",
        "- PCM drift exponents are drawn by each instance from a stream of its own (seed, "
        "layer, instance), so a drift can redraw the same exponents from the targets, in "
        "float32, one block at a time, instead of keeping them. The stream is new (they used "
        "to follow the programming error in the programming stream), so pcm results moved to "
        "other draws of the same distributions.",
        "- 1/f read noise's Q_s and the drift exponents are kept between drifts only for "
        f"layers of at most {precision['cache_devices']:,} devices per instance; a larger "
        "layer recomputes them at every drift (the same values; a power and a normal draw "
        "per device).",
        "- The programmed conductances are float16 where the card's programming error dwarfs "
        "float16's rounding: the one rounding, see [below](#conductances-in-float16).",
        "- The estimate counted the conductance-square weights' forward plan, which is a view; "
        "it now counts what the tiles hold.",
        "",
        "The programmed conductances keep both devices of a pair: programming error, drift and "
        "read noise act on the idle device too (pcm: σ_prog(g_min) = "
        f"{precision['pcm_idle_programming_std_uS']:.3g} µS, clamped at 0, so half the idle "
        "devices sit above g_min), so neither is derivable from the other.",
        "",
        "## Peak of program and drift",
        "",
        f"A stack of {results['stack']} on each card, K = 1, programmed and drifted to a year "
        "in a fresh process: resident memory above the converted model's, over the digital "
        "parameters' bytes. *Final* is after the drift; *peak / final* the higher of the two "
        "peaks over it; *working set* what that peak adds, in bytes per weight of the largest "
        "layer.",
        "",
        "| card | final | program peak | drift peak | peak / final | working set | "
        "before: final | before: program peak | before: drift peak | before: peak / final | "
        "before: working set |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for card, c in cards.items():
        old = before.get(card)
        lines.append(f"| {card} | " + " | ".join(_ratios(c["peak"])) + " | "
                     + (" | ".join(_ratios(old["peak"])) if old else "— | — | — | — | —")
                     + " |")
    weights = {c["peak"]["weights"] for c in cards.values()}
    lines += [
        "",
        f"({', '.join(f'{w:,}' for w in sorted(weights))} weights.) Programming and aging run "
        "one layer at a time and, inside a layer, on blocks of instances of at most "
        f"{precision['block_devices']:,} devices (one instance of a larger layer), with the "
        "physics evaluated in place on its draws; so what they add to the final state is one "
        "layer's working set (for one instance of it: its aged conductances, new weights and "
        "a few temporaries), freed before the next layer. Nothing is gathered over the model, "
        "except the |w| of the layers a card codes with `coding.scope = \"global\"` (their "
        "threshold is a quantile over all of them). Measured with "
        f"`MALLOC_MMAP_THRESHOLD_={results['mmap_threshold']}`: every tensor above that many "
        "bytes is then mapped on its own and unmapped when freed, so the resident set is the "
        "live tensors and its high-water mark their peak (torch's CPU tensors are invisible to "
        "`tracemalloc`).",
    ]
    return "\n".join(lines + _precision_section(precision)) + "\n"


def _precision_section(precision: dict[str, Any]) -> list[str]:
    spacing, g_max = precision["pcm_spacing_uS"], precision["pcm_g_max_uS"]
    rounding = spacing / math.sqrt(12)
    idle = precision["pcm_idle_programming_std_uS"]
    lines = [
        "",
        "## Conductances in float16",
        "",
        "float16 keeps 11 significant bits: a conductance g is rounded by at most "
        f"{precision['bound_relative']:.3g}·g, and below 2·g_max = {2 * g_max:g} µS (pcm) by "
        f"at most half a spacing of {spacing:g} µS, an error of std {rounding:.2g} µS "
        "(uniform). It adds to the programming error's variance; a card keeps its programmed "
        "conductances in float16 when that std is at most "
        f"{100 * precision['rounding_fraction']:g} % of the smallest programming-error std "
        "over its target range (`analogsim.tiles.device_model.conductance_dtype`: then the "
        "rounding adds at most "
        f"{100 * precision['rounding_fraction']**2:.2g} % to any device's error variance), "
        f"else in float32. On pcm the smallest is σ_prog(g_min) = {idle:.3g} µS, so the "
        f"rounding is {100 * rounding / idle:.1f} % of it. Aging, read noise and the weights "
        "the MVM sees are computed in float32 from the stored values. Per card:",
        "",
        "| card | stored as |",
        "|---|---|",
        *[f"| {card} | {dtype} |" for card, dtype in precision["dtypes"].items()],
        "",
        f"Measured: a {precision['layer']} on {precision['instances']} instances, programmed "
        "with the same seed once with float16 and once with float32 storage, drifted; the "
        "change of the weights the MVM sees, in units of max|W|:",
        "",
        "| card @ time | max \\|Δw\\| | rms Δw |",
        "|---|---|---|",
    ]
    for label, w in precision["weights"].items():
        lines.append(f"| {label} | {w['max']:.2g} | {w['rms']:.2g} |")
    chips = {a["chips"] for times in precision["accuracy"].values() for a in times.values()}
    lines += ["", f"The digits MLPs on pcm, {', '.join(map(str, sorted(chips)))} chips, "
              "accuracy (%) with float32 and float16 conductances:", "",
              "| model | time | float32 | float16 | std over chips | largest change of a chip "
              "| chips changed |", "|---|---|---|---|---|---|---|"]
    for model, times in precision["accuracy"].items():
        for time, a in times.items():
            lines.append(
                f"| {model} | {time} | {100 * a['float32']:.2f} | {100 * a['float16']:.2f} | "
                f"{100 * a['std_over_chips']:.2f} | {100 * a['max_difference']:.2f} "
                f"({round(a['max_difference'] * a['samples'])} of {a['samples']} samples) | "
                f"{a['chips_differing']} of {a['chips']} |")
    lines += ["", "So the conductances of such cards are float16, half the bytes of float32: "
              "the rounding is far below the programming error it rides on, and its effect on "
              "accuracy is the table's. A card with a small programming error somewhere in its "
              "range (rram), none (ideal) or g_max beyond float16 keeps float32. A chip's "
              "measured conductances loaded as its programmed state are stored the same way."]
    return lines


# ------------------------------------------------------------------------------ main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs-only", action="store_true", help="re-render the page only")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the results JSON")
    parser.add_argument("--baseline", type=Path, help="results of other code: 'before'")
    parser.add_argument("--no-precision", action="store_true",
                        help="skip the float16 storage measurements (for a baseline)")
    parser.add_argument("--cards", nargs="+", help="only these cards (a partial run)")
    parser.add_argument("--peak", help=argparse.SUPPRESS)  # one card, in a child process
    args = parser.parse_args()
    if args.peak:
        print(json.dumps(peak(args.peak)))
        return 0
    if not args.docs_only:
        results = measure(not args.no_precision, args.cards)
        if args.baseline is not None:
            results["before"] = json.loads(args.baseline.read_text())
        elif args.output.exists() and "before" in json.loads(args.output.read_text()):
            results["before"] = json.loads(args.output.read_text())["before"]
        results.get("before", {}).pop("before", None)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=1) + "\n")
        if args.output != RESULTS:
            return 0
    PAGE.write_text(render(json.loads(RESULTS.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
