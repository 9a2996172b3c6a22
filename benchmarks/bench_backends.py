"""Native analog tiles against IBM aihwkit's torch and C++ inference tiles, on the same card.

Everything is measured side by side in this one process, every backend simulating the ``pcm``
card with the same settings (the header prints them, and the aihwkit ``rpu_config`` they map to):

- forward time of one programmed layer (eval mode, K = 1, no autograd) on the shapes of
  ``bench_tile.py`` — Linear 512×512 (batch 256) and Conv2d 16→32 3×3 (64×16×32×32) — for the
  native layer, aihwkit's torch tile and its C++ tile, both through
  ``convert(..., backend="aihwkit")`` (what a user runs) and as aihwkit's bare layer (without
  analogsim's per-forward seeding), with the digital layer and ``bench_tile``'s plain-torch
  floor for scale. Targets: native ≥ 1.2× faster than the aihwkit torch tile on Linear and
  ≥ 8× on Conv2d; ≥ 8× faster than the C++ tile on both;
- a Monte-Carlo sweep: the digits MLP of the demo on ``pcm``, 20 chip instances × 4 drift
  times (1 h, 1 day, 1 month, 1 year): convert and program once, then drift and evaluate on the
  digits test set at each time. Wall time of the whole sweep (convert and program included),
  and the mean accuracy per time for each backend, which should agree. Target: native ≥ 15×
  faster than each aihwkit tile. Beside them runs ``bench_sweep.py``'s plain-torch floor of
  the same sweep: the same arithmetic as a hand-written loop over tensors, with no tiles.

The summary gives, beside each measured speed-up, the speed-up the plain-torch floor itself
has over aihwkit: what any torch implementation of the same arithmetic, drawing the same fresh
Gaussian numbers, could reach on this machine.

Writes ``benchmarks/results/bench_backends.json``. Run: ``python benchmarks/bench_backends.py``
(needs the aihwkit extra); ``--quick`` for a smoke run whose ratios are not worth quoting.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import aihwkit
import torch
import torch.nn.functional as F
from torch import nn

import analogsim as asim
from analogsim.allocator import keep_freed_memory
from analogsim.backends.aihwkit_backend import rpu_config
from analogsim.evaluation import Evaluation
from analogsim.tiles import integer_mvm
from analogsim.train.reference import trained_digits_mlp

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_tile, bench_sweep
from bench_sweep import floor_sweep
from bench_tile import best_times, floor_forward
from performance_page import cpu_name, run_mode, write_results

TILES = ("torch", "cpp")
TILE_NAMES = {"torch": "torch", "cpp": "C++"}  # as the summary prints them
DRIFT_TIMES_S = (3600.0, 86400.0, 2592000.0, 31536000.0)  # 1 h, 1 day, 1 month, 1 year
TIME_LABELS = ("1 h", "1 day", "1 month", "1 year")
FORWARD_TARGETS = {("Linear", "torch"): 1.2, ("Conv2d", "torch"): 8.0,
                   ("Linear", "cpp"): 8.0, ("Conv2d", "cpp"): 8.0}
SWEEP_TARGET = 15.0


def print_settings(chip) -> None:
    """The card's periphery and the aihwkit configuration it maps to (same for both tiles)."""
    config = rpu_config(chip, "cpp")
    forward, mapping = config.forward, config.mapping
    print(f"card {chip.name}: DAC {chip.dac.bits} bit ±{chip.dac.bound:g} "
          f"({chip.dac.input_scaling} input scaling), ADC {chip.adc.bits} bit "
          f"±{chip.adc.bound:g}, output noise {chip.output_noise.std:g}, per-read noise "
          f"{chip.per_read_noise.additive_std:g}, drift compensation "
          f"{chip.drift_compensation.method}, tiles {chip.mapping.tile_rows}x"
          f"{chip.mapping.tile_cols}")
    print(f"aihwkit: inp_res 1/{round(1 / forward.inp_res)}, inp_bound {forward.inp_bound:g}, "
          f"out_res 1/{round(1 / forward.out_res)}, out_bound {forward.out_bound:g}, out_noise "
          f"{forward.out_noise:g}, w_noise {forward.w_noise:g}, noise management "
          f"{forward.noise_management.name}, bound management {forward.bound_management.name}, "
          f"weight_scaling_omega {mapping.weight_scaling_omega:g}, "
          f"{type(config.drift_compensation).__name__}, {type(config.noise_model).__name__}")


def programmed(digital: nn.Module, chip, backend: str = "native", tile: str = "cpp",
               instances: int = 1) -> nn.Module:
    """``digital`` converted onto ``chip`` by ``backend``, programmed, in eval mode."""
    analog = asim.convert(digital, chip, backend=backend, aihwkit_tile=tile)
    asim.program(analog, seed=0, instances=instances)
    return analog.eval()


def bench_forward(name, digital, x, mvm, dims, chip, repeats, number
                  ) -> dict[str, dict[str, float]]:
    """One row of forward times (ms); returns the speed-ups over each aihwkit tile (by tile)
    of native and of the plain-torch floor, and the times (s) by label."""
    native = programmed(digital, chip)
    wrapped = {tile: programmed(digital, chip, "aihwkit", tile) for tile in TILES}
    bare = {tile: model.chips[0] for tile, model in wrapped.items()}  # aihwkit's own layer
    w_normalised = native.tile.w_effective[0].reshape(native.weight.shape)
    layers = {"digital": digital, "native": native,
              **{f"aihwkit {tile}": wrapped[tile] for tile in TILES},
              **{f"bare {tile}": bare[tile] for tile in TILES}}
    fns = {"floor": lambda: floor_forward(x, w_normalised, chip, mvm, dims),
           **{label: (lambda layer=layer: layer(x)) for label, layer in layers.items()}}
    with torch.inference_mode():
        times = best_times(fns, repeats, number)
    ratios = {tile: times[f"aihwkit {tile}"] / times["native"] for tile in TILES}
    floor_ratios = {tile: times[f"aihwkit {tile}"] / times["floor"] for tile in TILES}
    bare_ratios = {tile: times[f"bare {tile}"] / times["native"] for tile in TILES}
    print(f"{name:<32} {1e3 * times['digital']:8.3f} {1e3 * times['floor']:8.3f} "
          f"{1e3 * times['native']:8.3f} {1e3 * times['aihwkit torch']:8.3f} "
          f"{1e3 * times['bare torch']:8.3f} {1e3 * times['aihwkit cpp']:8.3f} "
          f"{1e3 * times['bare cpp']:8.3f} {ratios['torch']:6.2f}x ({bare_ratios['torch']:5.2f}x)"
          f" {ratios['cpp']:6.2f}x ({bare_ratios['cpp']:5.2f}x)")
    return {"native": ratios, "floor": floor_ratios, "times": times, "label": name}


def sweep(model, chip, test, backend, tile, instances) -> tuple[dict[str, float], list]:
    """Convert, program ``instances`` chips once, drift and evaluate at each time; wall times."""
    start = time.perf_counter()
    analog = asim.convert(model, chip, backend=backend, aihwkit_tile=tile)
    asim.program(analog, seed=0, instances=instances)
    programmed_at = time.perf_counter()
    accuracy = []
    for t in DRIFT_TIMES_S:
        asim.drift(analog, t)
        accuracy.append(asim.evaluate(analog, test, seed=0))
    end = time.perf_counter()
    times = {"program": programmed_at - start, "drift+evaluate": end - programmed_at,
             "total": end - start}
    return times, accuracy


def floor_run(model, chip, test, instances) -> tuple[dict[str, float], list]:
    """``bench_sweep``'s plain-torch floor of the sweep at the card's read noise; wall time."""
    start = time.perf_counter()
    accuracy = floor_sweep(model, test, chip, (1.0,), instances)[0]  # (time, instance)
    total = time.perf_counter() - start
    return {"total": total}, [Evaluation(row, len(test[0])) for row in accuracy]


def bench_sweep(chip, instances, epochs, repeats) -> dict[str, dict[str, float]]:
    """The Monte-Carlo sweep on each backend and the plain-torch floor (best total of
    ``repeats``); returns the speed-ups over each aihwkit tile of native and of the floor."""
    model, data = trained_digits_mlp(seed=0, epochs=epochs)
    test = (data.x_test, data.y_test)
    digital = asim.evaluate(model, test).mean
    print(f"\nMonte-Carlo sweep: digits MLP 64-64-64-10 ({epochs} epochs, digital accuracy "
          f"{100 * digital:.2f} %), {chip.name} card, {instances} instances x "
          f"{len(DRIFT_TIMES_S)} drift times, {len(test[0])} test samples; wall times in s "
          f"(best total of {repeats})")
    print("mean accuracy over the instances ± half-width of its 95 % CI, per drift time")
    print(f"{'backend':<17} {'program':>8} {'drift+eval':>10} {'total':>8} {'vs native':>10}  "
          + " ".join(f"{label:>13}" for label in TIME_LABELS))
    backends = {"native": ("native", "cpp"), "aihwkit torch": ("aihwkit", "torch"),
                "aihwkit C++": ("aihwkit", "cpp")}
    runs = {label: [] for label in (*backends, "plain-torch floor")}
    for _ in range(repeats):  # backends take turns, as in best_times
        for label, (backend, tile) in backends.items():
            runs[label].append(sweep(model, chip, test, backend, tile, instances))
        runs["plain-torch floor"].append(floor_run(model, chip, test, instances))
    totals, rows = {}, []
    for label, label_runs in runs.items():
        times, accuracy = min(label_runs, key=lambda run: run[0]["total"])
        totals[label] = times["total"]
        rows.append({"backend": label, **{f"{k.replace('+', '_')}_s": v for k, v in times.items()},
                     "accuracy": [a.mean for a in accuracy]})
        split = (f"{times['program']:8.3f} {times['drift+evaluate']:10.3f}" if "program" in times
                 else f"{'':8} {'':10}")
        print(f"{label:<17} {split} {times['total']:8.3f} "
              f"{times['total'] / totals['native']:9.1f}x  "
              + " ".join(f"{100 * a.mean:6.2f}±{50 * (a.ci95[1] - a.ci95[0]):4.2f}%"
                         for a in accuracy))
    return {**{who: {"torch": totals["aihwkit torch"] / totals[label],
                     "cpp": totals["aihwkit C++"] / totals[label]}
               for who, label in (("native", "native"), ("floor", "plain-torch floor"))},
            "runs": rows}


def verdict(what: str, ratios: dict[str, float], target: float) -> str:
    """One summary line: native's speed-up against the target, and the floor's beside it."""
    met = "met" if ratios["native"] >= target else "NOT met"
    return (f"{what:<40} {ratios['native']:7.2f}x  target >= {target:g}x  {met:<8}"
            f"(plain-torch floor {ratios['floor']:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=20)
    parser.add_argument("--sweep-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice); 1 is steadier "
                             "on a machine other processes load")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 repeats, few calls, 4 instances, 10 epochs")
    args = parser.parse_args()
    started = time.perf_counter()
    instances, epochs = 20, 40
    if args.quick:
        args.repeats, args.number, args.sweep_repeats = 2, 2, 1
        instances, epochs = 4, 10
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as `analogsim run` does, for every backend alike
    torch.manual_seed(0)
    chip = asim.load_chip("pcm")
    print(f"torch {torch.__version__}, aihwkit {aihwkit.__version__}, "
          f"{torch.get_num_threads()} threads" + (" (--quick: ratios not meaningful)"
                                                   if args.quick else ""))
    print(f"{cpu_name()}; exact int8 products of DAC codes (AMX): "
          f"{'on' if integer_mvm.amx_available() else 'off'}")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f} on {} cores".format(
        *os.getloadavg(), os.cpu_count()))
    print_settings(chip)
    print("\nforward, eval mode, K = 1, programmed, inference_mode; times in ms (best of "
          f"{args.repeats}); 'bare' is aihwkit's own layer without analogsim's wrapper; "
          "speed-up of native over aihwkit via convert (bare)")
    print(f"{'case':<32} {'digital':>8} {'floor':>8} {'native':>8} {'ai torch':>8} "
          f"{'bare':>8} {'ai C++':>8} {'bare':>8} {'torch/native':>15} {'C++/native':>15}")
    forward = {}
    linear = nn.Linear(512, 512)
    forward["Linear"] = bench_forward(
        "Linear 512×512, batch 256", linear, torch.randn(256, 512),
        lambda x, w: F.linear(x, w), (-1,), chip, args.repeats, args.number)
    conv = nn.Conv2d(16, 32, 3, padding=1)
    forward["Conv2d"] = bench_forward(
        "Conv2d 16→32 3×3, 64×16×32×32", conv, torch.randn(64, 16, 32, 32),
        lambda x, w: F.conv2d(x, w, padding=1), (1, 2, 3), chip, args.repeats,
        max(1, args.number // 4))
    sweep_ratios = bench_sweep(chip, instances, epochs, args.sweep_repeats)

    print("\nsummary: speed-up of native over aihwkit (and of the plain-torch floor)")
    summary = []
    for (case, tile), target in FORWARD_TARGETS.items():
        ratios = {who: forward[case][who][tile] for who in ("native", "floor")}
        print(verdict(f"forward {case}, aihwkit {TILE_NAMES[tile]} tile", ratios, target))
        summary.append({"what": f"forward {case}, aihwkit {TILE_NAMES[tile]} tile", **ratios,
                        "target": target, "met": ratios["native"] >= target})
    for tile in TILES:
        ratios = {who: sweep_ratios[who][tile] for who in ("native", "floor")}
        print(verdict(f"Monte-Carlo sweep, aihwkit {TILE_NAMES[tile]} tile", ratios,
                      SWEEP_TARGET))
        summary.append({"what": f"Monte-Carlo sweep, aihwkit {TILE_NAMES[tile]} tile", **ratios,
                        "target": SWEEP_TARGET, "met": ratios["native"] >= SWEEP_TARGET})
    forward_rows = [{"case": forward[case]["label"], **{f"{label.replace(' ', '_')}_s": t
                                      for label, t in forward[case]["times"].items()}}
                    for case in forward]
    path = write_results("bench_backends", {
        "aihwkit": aihwkit.__version__, "instances": instances, "epochs": epochs,
        "forward": forward_rows, "sweep": sweep_ratios["runs"], "summary": summary},
        mode=run_mode(parser, args), started=started)
    print(f"wrote {path}")
    print("load average at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
