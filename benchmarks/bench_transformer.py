"""GPT-2 small on ``pcm`` tiles against the digital model and a plain-torch floor (issue 18).

The model: ``transformers.GPT2LMHeadModel`` from ``GPT2Config()``'s defaults (124 M weights)
with random weights, eval mode, attention by torch's ``scaled_dot_product_attention``
(``attn_implementation="sdpa"``, transformers' default), batch 4 × 128 random tokens, no cache.
``asim.convert(model, "pcm", inplace=True)`` puts its 48 ``Conv1D`` layers (85 M weights) on
tiles; the ``lm_head``, tied to the token embedding, stays digital. ``asim.program(model,
seed=0)`` (K = 1) and ``asim.drift(model, 3600)``: every default of the card is on (7-bit DAC
with abs-max scaling, 9-bit ADC, output noise, programming noise, drift, 1/f read noise, global
drift compensation).

Side by side in one process, taking turns in every repetition, median of ``--repeats`` forwards
each after one warm-up:

- digital: the model with its original ``Conv1D`` modules put back (they hold the same weight
  tensors as the analog layers, so nothing is copied);
- floor: each analog layer replaced by :class:`FloorConv1D`, the same arithmetic written as
  plain torch: per row chunk of 512 inputs, abs-max input scaling, the DAC's rounding, one
  matmul by the programmed effective weights (with both converter steps folded in, as a good
  implementation does), the output noise (one normal per output), the ADC's rounding and
  clipping, and one multiply-add per chunk into the result (max|x| × max|W| × drift
  compensation × ADC step, bias). Everything else (embeddings, LayerNorms, attention, GELU,
  lm_head) is the model's own. Target: pcm ≤ 1.1× the floor.
- pcm: the converted model.

The floor is checked against the tiles: each floor layer, run on its tile's input from a pcm
forward with a copy of the tile's noise stream, gives the tile's output to float32 rounding.

Their memory, and the time convert, program and drift take: ``bench_transformer_memory.py``.

One torch thread by default: on a shared machine under load, each operator split over two
OpenMP threads waits for a core another process holds, so with two threads the times count
operator launches rather than work. ``--threads 2`` on an idle machine.

Writes ``benchmarks/results/bench_transformer.json``. Run: ``python
benchmarks/bench_transformer.py`` (about 3 minutes); ``--profile N`` keeps torch.profiler's
top N operators of a pcm and a floor forward.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import transformers
from torch import nn

import analogsim as asim
from analogsim.allocator import keep_freed_memory
from analogsim.conversion import analog_layers
from analogsim.errors import DigitalRemainderWarning
from analogsim.physics.periphery import code_limit, quantisation_step
from analogsim.seeding import Purpose
from analogsim.tiles.hf_layers import AnalogHFConv1D

sys.path.insert(0, str(Path(__file__).resolve().parent))
from performance_page import run_mode, write_results

CARD = "pcm"
ATTENTION = "sdpa"
BATCH, TOKENS = 4, 128
SEED = 0
DRIFT_S = 3600.0  # s after programming
FLOOR_TARGET = 1.1  # pcm forward / floor forward, at most
VARIANTS = ("digital", "floor", "pcm")


def build_gpt2() -> transformers.GPT2LMHeadModel:
    """GPT-2 small from the config's defaults, random weights (seed 0), eval mode."""
    torch.manual_seed(SEED)
    config = transformers.GPT2Config(attn_implementation=ATTENTION)
    return transformers.GPT2LMHeadModel(config).eval()


class FloorConv1D(nn.Module):
    """A programmed ``Conv1D`` through the card's periphery, as plain torch.

    Args:
        layer: the programmed analog layer whose state (effective weights (1, out, rows)
            normalised to max|W|, max|W| per tile (chunks, out), drift compensation
            (1, chunks, out)) and card it computes with.
    """

    def __init__(self, layer: AnalogHFConv1D) -> None:
        super().__init__()
        tile, chip = layer.tile, layer.chip
        dac, adc = chip.dac, chip.adc
        self.input_step = quantisation_step(dac.bits, dac.bound)
        output_step = quantisation_step(adc.bits, adc.bound)
        self.limit = code_limit(adc.bits)
        self.noise_std = chip.output_noise.std / output_step  # in ADC codes
        rows = tile.w_effective.shape[-1]
        self.chunks = [(a, min(a + chip.mapping.tile_rows, rows))
                       for a in range(0, rows, chip.mapping.tile_rows)]
        gain = self.input_step / output_step  # DAC codes → ADC codes
        self.matrices = [tile.w_effective[0, :, a:b] * gain for a, b in self.chunks]  # (out, r)
        factors = tile.weight_scale * tile.compensation_factor[0] * output_step  # (chunks, out)
        self.factors = list(factors)
        self.bias = layer.bias.detach()
        self.generator = torch.Generator().manual_seed(SEED)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for (a, b), matrix, factor in zip(self.chunks, self.matrices, self.factors, strict=True):
            x_j = x[..., a:b]
            scale = torch.maximum(x_j.amax(-1, keepdim=True), x_j.amin(-1, keepdim=True).neg_())
            scale.masked_fill_(scale == 0, 1.0)  # (B, T, 1) max|x| per input vector
            codes = torch.div(x_j, scale * self.input_step).round_()  # DAC
            y = F.linear(codes, matrix)  # (B, T, out) in ADC codes
            y.add_(torch.empty_like(y).normal_(0.0, self.noise_std, generator=self.generator))
            y.round_().clamp_(-self.limit, self.limit)  # ADC
            y.mul_(scale)
            if total is None:
                total = torch.addcmul(self.bias, y, factor, out=y)
            else:
                total.addcmul_(y, factor)
        return total


def swap(model: nn.Module, modules: dict[str, nn.Module]) -> None:
    """Put ``modules`` (qualified name → module) into ``model`` in place of what is there."""
    for name, module in modules.items():
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, module)


def forward(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Logits (B, T, vocabulary) of one forward without a KV cache."""
    return model(tokens, use_cache=False).logits


def floor_agreement(model: nn.Module, variants: dict[str, dict[str, nn.Module]],
                    tokens: torch.Tensor) -> float:
    """Largest |floor − tile| output over the layers of one pcm forward, as a fraction of the
    layer's max |output|: each floor layer runs on its tile's input with a copy of the tile's
    noise stream."""
    worst, states = 0.0, {}

    def before(name: str, layer: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        states[name] = layer.tile.streams[Purpose.FORWARD][0].get_state()

    def after(name: str, layer: nn.Module, args: tuple[torch.Tensor, ...],
              output: torch.Tensor) -> None:
        nonlocal worst
        floor = variants["floor"][name]
        floor.generator.set_state(states[name])
        worst = max(worst, float((floor(args[0]) - output).abs().max() / output.abs().max()))

    handles = [hook for name, layer in variants["pcm"].items() for hook in (
        layer.register_forward_pre_hook(functools.partial(before, name)),
        layer.register_forward_hook(functools.partial(after, name)))]
    with torch.inference_mode():
        swap(model, variants["pcm"])
        forward(model, tokens)
    for handle in handles:
        handle.remove()
    return worst


def time_forwards(model: nn.Module, variants: dict[str, dict[str, nn.Module]],
                  tokens: torch.Tensor, repeats: int) -> dict[str, list[float]]:
    """Wall times (s) of ``repeats`` forwards of each variant, taking turns (a different one
    first in each repetition), after one warm-up forward each."""
    times: dict[str, list[float]] = {label: [] for label in variants}
    labels = list(variants)
    with torch.inference_mode():
        for label in labels:
            swap(model, variants[label])
            forward(model, tokens)
        for repeat in range(repeats):
            shift = repeat % len(labels)
            for label in labels[shift:] + labels[:shift]:
                swap(model, variants[label])
                started = time.perf_counter()
                forward(model, tokens)
                times[label].append(time.perf_counter() - started)
    return times


def profile_forwards(model: nn.Module, variants: dict[str, dict[str, nn.Module]],
                     tokens: torch.Tensor, top: int) -> list[dict[str, Any]]:
    """Self CPU time (ms) and calls of the ``top`` operators of one pcm and one floor forward
    (by the larger of their two times)."""
    from torch.profiler import profile

    found: dict[str, dict[str, tuple[float, int]]] = {}
    with torch.inference_mode():
        for label in ("floor", "pcm"):
            swap(model, variants[label])
            with profile() as profiler:
                forward(model, tokens)
            found[label] = {e.key: (e.self_cpu_time_total / 1e3, e.count)
                            for e in profiler.key_averages()}
    pcm, floor = (defaultdict(lambda: (0.0, 0), found[label]) for label in ("pcm", "floor"))
    order = sorted({*pcm, *floor}, key=lambda op: -max(pcm[op][0], floor[op][0]))[:top]
    return [{"operator": op, "pcm_ms": pcm[op][0], "pcm_calls": pcm[op][1],
             "floor_ms": floor[op][0], "floor_calls": floor[op][1]} for op in order]


# ------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed forwards of each")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: see the module docstring)")
    parser.add_argument("--profile", type=int, default=12, metavar="N",
                        help="torch.profiler's top N operators of each forward (0: none)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    keep_freed_memory()  # as `analogsim run` does, for every variant alike
    model = build_gpt2()
    digital = {name: module for name, module in model.named_modules()
               if type(module).__name__ == "Conv1D"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DigitalRemainderWarning)
        asim.convert(model, CARD, inplace=True)
    asim.program(model, seed=SEED)
    asim.drift(model, DRIFT_S)
    model.eval()  # the new analog layers start in training mode, on their live weights
    analog = dict(analog_layers(model))
    variants = {"digital": digital, "floor": {n: FloorConv1D(m) for n, m in analog.items()},
                "pcm": analog}
    tokens = torch.randint(0, model.config.vocab_size, (BATCH, TOKENS),
                           generator=torch.Generator().manual_seed(SEED))
    agreement = floor_agreement(model, variants, tokens)
    times = time_forwards(model, variants, tokens, args.repeats)
    median = {label: statistics.median(t) for label, t in times.items()}
    paired = [a / f for a, f in zip(times["pcm"], times["floor"], strict=True)]
    profile = profile_forwards(model, variants, tokens, args.profile) if args.profile else []
    swap(model, analog)
    figures = {
        "model": {"parameters": sum(p.numel() for p in model.parameters()),
                  "analog_layers": len(analog),
                  "analog_weights": sum(layer.weight.numel() for layer in analog.values()),
                  "batch": BATCH, "tokens": TOKENS, "attention": ATTENTION, "card": CARD,
                  "drift_s": DRIFT_S},
        "forward": {"repeats": args.repeats, "times_s": times,
                    "variants": [{"label": label, "median_s": median[label],
                                  "over_floor": median[label] / median["floor"],
                                  "over_digital": median[label] / median["digital"]}
                                 for label in VARIANTS],
                    "pcm_over_floor": median["pcm"] / median["floor"],
                    "pcm_over_digital": median["pcm"] / median["digital"],
                    "paired_pcm_over_floor_min": min(paired),
                    "paired_pcm_over_floor_max": max(paired),
                    "target": FLOOR_TARGET, "met": median["pcm"] / median["floor"] <= FLOOR_TARGET},
        "agreement": agreement,
        "profile": profile,
    }
    report(figures)
    path = write_results("bench_transformer", figures, mode=run_mode(parser, args),
                         started=started)
    print(f"wrote {path}")


def report(figures: dict[str, Any]) -> None:
    """Print the headline figures (the JSON has them all)."""
    fw = figures["forward"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; GPT-2 small on "
          f"{CARD}, batch {BATCH} x {TOKENS} tokens; forward, median of {fw['repeats']}:")
    for row in fw["variants"]:
        print(f"  {row['label']:<8} {row['median_s']:7.3f} s  / floor {row['over_floor']:5.2f}x"
              f"  / digital {row['over_digital']:5.2f}x")
    print(f"pcm / floor {fw['pcm_over_floor']:.2f}x (per repetition "
          f"{fw['paired_pcm_over_floor_min']:.2f}-{fw['paired_pcm_over_floor_max']:.2f}x), target"
          f" <= {fw['target']:g}x: {'met' if fw['met'] else 'NOT met'}; floor vs tile per layer:"
          f" largest difference {figures['agreement']:.2g} of max |output|")


if __name__ == "__main__":
    main()
