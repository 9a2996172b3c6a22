"""GPT-2 small on ``pcm`` tiles against the digital model and a plain-torch floor (issue 18).

The model: ``transformers.GPT2LMHeadModel`` built from ``GPT2Config()``'s defaults (124 M
weights, 12 blocks of width 768) with random weights, eval mode, attention through torch's
``scaled_dot_product_attention`` (``attn_implementation="sdpa"``, what transformers picks by
default), batch 4 × 128 random tokens, no KV cache. ``asim.convert(model, "pcm",
inplace=True)`` puts its 48 ``Conv1D`` layers (85 M weights) on tiles; the ``lm_head``, tied to
the token embedding, stays digital. ``asim.program(model, seed=0)`` (K = 1) and
``asim.drift(model, 3600)``: every default of the card is on (7-bit DAC with abs-max scaling,
9-bit ADC, output noise, programming noise, drift, 1/f read noise, global drift compensation).

Side by side in one process, taking turns in every repetition (a burst of load from other
processes hits all three), median of ``--repeats`` forwards each after one warm-up:

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

The floor's arithmetic is checked against the tiles': with each floor layer drawing from a copy
of its tile's noise stream, the logits of the two agree to float32 rounding (printed).

Memory: a fresh subprocess builds the digital model, returns freed heap memory to the system
(``malloc_trim``), takes its resident set as the baseline and resets the kernel's peak
(``/proc/self/clear_refs``, Linux ≥ 4.0), then runs convert + program + drift; the peak
(``VmHWM``) minus the baseline is the memory they needed. Target: ≤ 3× the digital model's
parameter bytes. The subprocess also times convert, program and drift, and sums the tiles'
buffers by name.

Writes ``benchmarks/results/bench_transformer.json``. Run: ``python
benchmarks/bench_transformer.py`` (about 10 minutes on 2 loaded cores; ``--repeats``,
``--threads``, ``--profile N`` for torch.profiler's top N operators of each forward).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import statistics
import subprocess
import sys
import time
import warnings
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
from performance_page import write_results

CARD = "pcm"
ATTENTION = "sdpa"
BATCH, TOKENS = 4, 128
SEED = 0
DRIFT_S = 3600.0  # s after programming
FLOOR_TARGET = 1.1  # pcm forward / floor forward, at most
MEMORY_TARGET = 3.0  # peak memory of convert + program + drift / parameter bytes, at most
VARIANTS = ("digital", "floor", "pcm")


def build_gpt2() -> transformers.GPT2LMHeadModel:
    """GPT-2 small from the config's defaults, random weights (seed 0), eval mode."""
    torch.manual_seed(SEED)
    config = transformers.GPT2Config(attn_implementation=ATTENTION)
    return transformers.GPT2LMHeadModel(config).eval()


def parameter_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters, each tensor once (the tied lm_head is the embedding)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


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
                    tokens: torch.Tensor) -> dict[str, float]:
    """Logits of pcm and floor with each floor layer drawing from a copy of its tile's stream:
    max |difference| and the logits' std."""
    tiles = {name: layer.tile for name, layer in variants["pcm"].items()}
    for name, floor in variants["floor"].items():
        floor.generator.set_state(tiles[name].streams[Purpose.FORWARD][0].get_state())
    with torch.inference_mode():
        swap(model, variants["pcm"])
        analog = forward(model, tokens)
        swap(model, variants["floor"])
        plain = forward(model, tokens)
    return {"max_abs_difference": float((analog - plain).abs().max()),
            "logit_std": float(analog.std())}


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
    """Self CPU time (ms) of the ``top`` operators of one pcm forward, beside the same
    operators' time in one floor forward."""
    from torch.profiler import profile

    found: dict[str, dict[str, tuple[float, int]]] = {}
    with torch.inference_mode():
        for label in ("floor", "pcm"):
            swap(model, variants[label])
            with profile() as profiler:
                forward(model, tokens)
            found[label] = {e.key: (e.self_cpu_time_total / 1e3, e.count)
                            for e in profiler.key_averages()}
    order = sorted(found["pcm"], key=lambda op: -found["pcm"][op][0])[:top]
    return [{"operator": op, "pcm_ms": found["pcm"][op][0], "pcm_calls": found["pcm"][op][1],
             "floor_ms": found["floor"].get(op, (0.0, 0))[0],
             "floor_calls": found["floor"].get(op, (0.0, 0))[1]} for op in order]


# ------------------------------------------------------------------------ memory (subprocess)


def status_bytes(field: str) -> int:
    """A size of /proc/self/status (``VmRSS``, ``VmHWM``), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def tile_state_bytes(model: nn.Module) -> dict[str, int]:
    """Bytes the analog layers' tiles hold, summed over tiles per buffer (and the 1/f read
    noise cache ``read_noise_q`` and the forward plan's matrices, where present)."""
    totals: dict[str, int] = {}
    for _, layer in analog_layers(model):
        tile = layer.tile
        held = dict(tile.named_buffers(recurse=False))
        if tile.read_noise_q is not None:
            held["read_noise_q"] = tile.read_noise_q
        for name, tensor in held.items():
            totals[name] = totals.get(name, 0) + tensor.numel() * tensor.element_size()
        if tile.plan is not None:
            totals["plan"] = totals.get("plan", 0) + sum(
                m.numel() * m.element_size() for m in tile.plan.matrices)
    return {name: size for name, size in sorted(totals.items()) if size}


def measure_programming() -> dict[str, Any]:
    """In this (fresh) process: peak memory and times of convert + program + drift."""
    model = build_gpt2()
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    baseline = status_bytes("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    times = {}
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DigitalRemainderWarning)
        asim.convert(model, CARD, inplace=True)
    times["convert_s"] = time.perf_counter() - started
    started = time.perf_counter()
    asim.program(model, seed=SEED)
    times["program_s"] = time.perf_counter() - started
    started = time.perf_counter()
    asim.drift(model, DRIFT_S)
    times["drift_s"] = time.perf_counter() - started
    peak = status_bytes("VmHWM")
    weights = sum(layer.weight.numel() for _, layer in analog_layers(model))
    return {"method": "VmHWM after convert + program + drift minus VmRSS before (peak reset "
                      "through /proc/self/clear_refs, freed heap trimmed first), default malloc",
            "baseline_bytes": baseline, "peak_bytes": peak, "growth_bytes": peak - baseline,
            "parameter_bytes": parameter_bytes(model), "analog_weights": weights,
            "state_bytes": tile_state_bytes(model), **times}


def memory_in_subprocess(threads: int) -> dict[str, Any]:
    """:func:`measure_programming` in a fresh Python process."""
    done = subprocess.run([sys.executable, __file__, "--memory-child", "--threads", str(threads)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards of each")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--profile", type=int, default=12, metavar="N",
                        help="torch.profiler's top N operators of a pcm and a floor forward "
                             "(0: none)")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        print(json.dumps(measure_programming()))
        return
    started = time.perf_counter()
    memory = memory_in_subprocess(args.threads)
    keep_freed_memory()  # as `analogsim run` does, for every variant alike
    model = build_gpt2()
    digital = {name: module for name, module in model.named_modules()
               if type(module).__name__ == "Conv1D"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DigitalRemainderWarning)
        asim.convert(model, CARD, inplace=True)
    asim.program(model, seed=SEED)
    asim.drift(model, DRIFT_S)
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
                  "parameter_bytes": memory["parameter_bytes"],
                  "analog_layers": len(analog), "analog_weights": memory["analog_weights"],
                  "batch": BATCH, "tokens": TOKENS, "attention": ATTENTION, "card": CARD,
                  "drift_s": DRIFT_S},
        "forward": {"repeats": args.repeats, "times_s": times,
                    "variants": [{"label": label, "median_s": median[label],
                                  "over_floor": median[label] / median["floor"],
                                  "over_digital": median[label] / median["digital"]}
                                 for label in VARIANTS],
                    "pcm_over_floor": median["pcm"] / median["floor"],
                    "pcm_over_digital": median["pcm"] / median["digital"],
                    "floor_over_digital": median["floor"] / median["digital"],
                    "paired_pcm_over_floor_min": min(paired),
                    "paired_pcm_over_floor_max": max(paired),
                    "target": FLOOR_TARGET,
                    "met": median["pcm"] / median["floor"] <= FLOOR_TARGET},
        "agreement": {**agreement,
                      "relative": agreement["max_abs_difference"] / agreement["logit_std"]},
        "memory": {**memory, "growth_over_parameters":
                   memory["growth_bytes"] / memory["parameter_bytes"],
                   "target": MEMORY_TARGET,
                   "met": memory["growth_bytes"] / memory["parameter_bytes"] <= MEMORY_TARGET},
        "profile": profile,
    }
    report(figures)
    path = write_results("bench_transformer", figures, mode="full", started=started)
    print(f"wrote {path}")


def report(figures: dict[str, Any]) -> None:
    """Print the measured figures."""
    m, fw, mem = figures["model"], figures["forward"], figures["memory"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; GPT-2 small "
          f"({m['parameters']:,} parameters, {m['analog_layers']} analog layers, "
          f"{m['analog_weights']:,} analog weights), batch {m['batch']} x {m['tokens']} tokens, "
          f"{m['attention']} attention, card {m['card']} after drift to {m['drift_s']:g} s")
    print(f"forward, median of {fw['repeats']} (s):")
    for row in fw["variants"]:
        print(f"  {row['label']:<8} {row['median_s']:8.3f}   / floor {row['over_floor']:5.2f}x"
              f"   / digital {row['over_digital']:5.2f}x")
    verdict = "met" if fw["met"] else "NOT met"
    print(f"pcm / floor {fw['pcm_over_floor']:.2f}x (target <= {FLOOR_TARGET:g}x: {verdict}; "
          f"per repetition {fw['paired_pcm_over_floor_min']:.2f}-"
          f"{fw['paired_pcm_over_floor_max']:.2f}x); pcm / digital {fw['pcm_over_digital']:.2f}x")
    a = figures["agreement"]
    print(f"floor vs pcm on shared noise streams: max |logit difference| "
          f"{a['max_abs_difference']:.3g} (logit std {a['logit_std']:.3g})")
    print(f"convert {mem['convert_s']:.1f} s, program {mem['program_s']:.1f} s, drift "
          f"{mem['drift_s']:.1f} s")
    verdict = "met" if mem["met"] else "NOT met"
    print(f"peak memory of convert + program + drift: {mem['growth_bytes'] / 2**20:,.0f} MiB = "
          f"{mem['growth_over_parameters']:.2f}x the parameters' {mem['parameter_bytes'] / 2**20:,.0f}"
          f" MiB (target <= {MEMORY_TARGET:g}x: {verdict})")
    print("tile state after drift (MiB): " + ", ".join(
        f"{name} {size / 2**20:,.0f}" for name, size in mem["state_bytes"].items()))
    if figures["profile"]:
        print(f"{'operator':<28} {'pcm ms':>9} {'calls':>6} {'floor ms':>9} {'calls':>6}")
        for row in figures["profile"]:
            print(f"{row['operator']:<28} {row['pcm_ms']:9.1f} {row['pcm_calls']:6d} "
                  f"{row['floor_ms']:9.1f} {row['floor_calls']:6d}")


if __name__ == "__main__":
    main()
