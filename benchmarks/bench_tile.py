"""Forward time of the native analog layers against nn.Linear / nn.Conv2d and a plain-torch floor.

Everything is measured side by side in this one process and printed as ratios:

- analog (``pcm`` card with the noise drawn per forward off: per-read noise is 0 in the card,
  output noise set to 0; DAC and ADC on) vs the digital layer: targets ≤ 1.3× for Linear
  512×512 (batch 256) and ≤ 1.5× for Conv2d 16→32 3×3 (64×16×32×32);
- analog with every ``pcm`` default on vs a hand-written floor doing the same arithmetic
  (abs-max input scaling, DAC and ADC quantisers, F.linear/F.conv2d on the programmed weights,
  ``torch.randn`` output noise): target ≤ 1.2×;
- analog ``pcm`` with S3's full weight coding (sign protection, adaptive mapping, adaptive
  redundancy) vs the same floor: the coding is decoded once per drift state, so the target is
  the same ≤ 1.2×;
- K = 16 instances in one call vs 16 sequential K = 1 calls (per-instance cost).

The layers take turns in every repeat (best of ``--repeats`` means of ``--number`` calls), so
a burst of load from other processes hits all of them rather than one.

Writes ``benchmarks/results/bench_tile.json``. Run: ``python benchmarks/bench_tile.py`` (eval
mode, K = 1, no autograd; ``--threads 1`` is steadier on a machine other processes load).
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import analogsim as asim
from analogsim.allocator import keep_freed_memory
from analogsim.physics.periphery import quantisation_step

sys.path.insert(0, str(Path(__file__).resolve().parent))
from performance_page import run_mode, write_results

#: Every coding part at once (S3's full protection), for the coded-tile column.
FULL_CODING = "sign+adaptive_mapping+redundancy"
#: Targets: analog with no per-forward noise / digital layer, by case; pcm (and coded) / floor.
QUIET_TARGETS = {"Linear": 1.3, "Conv2d": 1.5}
FLOOR_TARGET = 1.2


def best_times(fns: dict[str, Callable[[], object]], repeats: int, number: int
               ) -> dict[str, float]:
    """Best of ``repeats`` mean times (s) of ``number`` calls of each function, after one call
    each. The functions take turns in every repeat, so a burst of load from other processes
    hits all of them rather than one."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for label, fn in fns.items():
            best[label] = min(best[label], timeit.timeit(fn, number=number) / number)
    return best


def floor_forward(x, w, chip, mvm, out_dims):
    """The same arithmetic as the tile, written plainly: scale, DAC, MVM, noise, ADC, rescale."""
    scale = x.abs().amax(dim=out_dims, keepdim=True)
    x_n = x / scale
    step = quantisation_step(chip.dac.bits, chip.dac.bound)
    x_n = torch.round(x_n / step).mul_(step).clamp_(-chip.dac.bound, chip.dac.bound)
    y = mvm(x_n, w)
    y = y + torch.randn_like(y) * chip.output_noise.std
    step = quantisation_step(chip.adc.bits, chip.adc.bound)
    y = torch.round(y / step).mul_(step).clamp_(-chip.adc.bound, chip.adc.bound)
    return y * scale


def programmed_layer(digital: nn.Module, chip, instances: int = 1) -> nn.Module:
    analog = asim.convert(digital, chip)
    asim.program(analog, seed=0, instances=instances)
    return analog.eval()


def bench_case(name, digital, x, mvm, dims, repeats, number) -> dict[str, Any]:
    """One row: times (s) of the digital layer, the floor and the analog layers; their ratios."""
    chip = asim.load_chip("pcm")
    quiet_chip = asim.load_chip("pcm", output_noise_std=0.0)  # per-read noise is 0 in pcm too
    analog = programmed_layer(digital, chip)
    quiet = programmed_layer(digital, quiet_chip)
    batch16 = programmed_layer(digital, chip, instances=16)
    coded = programmed_layer(digital, asim.load_chip("pcm", **{"coding.scheme": FULL_CODING}))
    w_normalised = analog.tile.w_effective[0].reshape(analog.weight.shape)
    x16 = x.repeat(16, *([1] * (x.dim() - 1)))
    with torch.inference_mode(), asim.instances_folded(batch16):
        times = best_times({"digital": lambda: digital(x), "quiet": lambda: quiet(x),
                            "analog": lambda: analog(x), "coded": lambda: coded(x),
                            "floor": lambda: floor_forward(x, w_normalised, chip, mvm, dims)},
                           repeats, number)
        t_k16 = best_times({"k16": lambda: batch16(x16)}, max(2, repeats // 2),
                           max(1, number // 4))["k16"]
    t_digital, t_quiet, t_analog, t_coded, t_floor = (
        times[label] for label in ("digital", "quiet", "analog", "coded", "floor"))
    kind = type(digital).__name__
    row = {"label": name, "digital_s": t_digital, "quiet_s": t_quiet, "floor_s": t_floor,
           "pcm_s": t_analog, "coded_s": t_coded, "k16_s": t_k16,
           "quiet_over_digital": t_quiet / t_digital, "quiet_target": QUIET_TARGETS[kind],
           "pcm_over_floor": t_analog / t_floor, "coded_over_floor": t_coded / t_floor,
           "floor_target": FLOOR_TARGET, "k16_over_16_k1": t_k16 / (16 * t_analog)}
    row["met"] = (row["quiet_over_digital"] <= row["quiet_target"]
                  and max(row["pcm_over_floor"], row["coded_over_floor"]) <= FLOOR_TARGET)
    print(f"{name:<32} {1e3 * t_digital:8.3f} {1e3 * t_quiet:8.3f} {1e3 * t_floor:8.3f} "
          f"{1e3 * t_analog:8.3f} {t_quiet / t_digital:12.2f}x {t_analog / t_floor:10.2f}x "
          f"{t_coded / t_floor:10.2f}x {t_k16 / (16 * t_analog):10.2f}x")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    # Freed memory kept, as `analogsim run` does: otherwise whether a fresh activation
    # page-faults depends on what this process allocated before (a conv alone measured 7.9 ms
    # here, and 2.6 ms after a large Linear had raised glibc's mmap threshold).
    keep_freed_memory()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; times in ms "
          "(best of repeats)")
    print("columns: digital layer; analog pcm with forward noise off; plain-torch floor; analog "
          "pcm defaults; ratios")
    print(f"{'case':<32} {'digital':>8} {'no noise':>8} {'floor':>8} {'pcm':>8} "
          f"{'nonoise/dig':>13} {'pcm/floor':>11} {'coded/floor':>11} {'K16/16xK1':>11}")
    linear = nn.Linear(512, 512)
    rows = [bench_case("Linear 512×512, batch 256", linear, torch.randn(256, 512),
                       lambda x, w: F.linear(x, w), (-1,), args.repeats, args.number)]
    conv = nn.Conv2d(16, 32, 3, padding=1)
    rows.append(bench_case("Conv2d 16→32 3×3, 64×16×32×32", conv, torch.randn(64, 16, 32, 32),
                           lambda x, w: F.conv2d(x, w, padding=1), (1, 2, 3), args.repeats,
                           max(1, args.number // 4)))
    print(f"targets: no noise vs digital <= {QUIET_TARGETS['Linear']}x (Linear), <= "
          f"{QUIET_TARGETS['Conv2d']}x (Conv2d); pcm and coded pcm vs floor <= {FLOOR_TARGET}x")
    path = write_results("bench_tile", {"cases": rows, "repeats": args.repeats,
                                        "number": args.number},
                         mode=run_mode(parser, args), started=started)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
