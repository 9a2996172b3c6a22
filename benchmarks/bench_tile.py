"""Forward time of the native analog layers against nn.Linear / nn.Conv2d and a plain-torch floor.

Everything is measured side by side in this one process and printed as ratios:

- analog (``pcm`` card, per-read noise off: its default) vs the digital layer: targets ≤ 1.3×
  for Linear 512×512 (batch 256) and ≤ 1.5× for Conv2d 16→32 3×3 (64×16×32×32);
- analog with every ``pcm`` default on vs a hand-written floor doing the same arithmetic
  (abs-max input scaling, DAC and ADC quantisers, F.linear/F.conv2d on the programmed weights,
  ``torch.randn`` output noise): target ≤ 1.2×;
- K = 16 instances in one call vs 16 sequential K = 1 calls (per-instance cost).

Run: ``python benchmarks/bench_tile.py`` (eval mode, K = 1, no autograd).
"""

from __future__ import annotations

import argparse
import timeit

import torch
import torch.nn.functional as F
from torch import nn

import analogsim as asim
from analogsim.physics.periphery import quantisation_step


def best_time(fn, repeats: int, number: int) -> float:
    """Best of ``repeats`` mean times of ``number`` calls, in seconds."""
    fn()
    return min(timeit.repeat(fn, repeat=repeats, number=number)) / number


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


def bench_case(name, digital, x, mvm, dims, repeats, number):
    chip = asim.load_chip("pcm")
    analog = asim.convert(digital, chip)
    asim.program(analog, seed=0, instances=1)
    analog.eval()
    layer = next(m for m in analog.modules() if hasattr(m, "tile"))
    w_normalised = layer.tile.w_effective[0].reshape(layer.weight.shape)
    with torch.inference_mode():
        t_digital = best_time(lambda: digital(x), repeats, number)
        t_analog = best_time(lambda: analog(x), repeats, number)
        t_floor = best_time(lambda: floor_forward(x, w_normalised, chip, mvm, dims), repeats,
                            number)
        programmed_16 = asim.convert(digital, chip)
        asim.program(programmed_16, seed=0, instances=16)
        programmed_16.eval()
        x16 = x.repeat(16, *([1] * (x.dim() - 1)))
        t_k16 = best_time(lambda: programmed_16(x16), max(2, repeats // 2), max(1, number // 4))
    print(f"{name:<34} {1e3 * t_digital:9.3f} {1e3 * t_floor:9.3f} {1e3 * t_analog:9.3f} "
          f"{t_analog / t_digital:10.2f}x {t_analog / t_floor:10.2f}x "
          f"{t_k16 / (16 * t_analog):10.2f}x")
    return t_analog / t_digital, t_analog / t_floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; times in ms "
          "(best of repeats)")
    print(f"{'case':<34} {'digital':>9} {'floor':>9} {'analog':>9} {'vs digital':>11} "
          f"{'vs floor':>11} {'K=16/16xK1':>11}")
    linear = nn.Linear(512, 512)
    bench_case("Linear 512x512, batch 256", linear, torch.randn(256, 512),
               lambda x, w: F.linear(x, w), (-1,), args.repeats, args.number)
    conv = nn.Conv2d(16, 32, 3, padding=1)
    bench_case("Conv2d 16->32 3x3, 64x16x32x32", conv, torch.randn(64, 16, 32, 32),
               lambda x, w: F.conv2d(x, w, padding=1), (1, 2, 3), args.repeats,
               max(1, args.number // 4))
    print("targets: vs digital <= 1.3x (Linear), <= 1.5x (Conv2d); vs floor <= 1.2x")


if __name__ == "__main__":
    main()
