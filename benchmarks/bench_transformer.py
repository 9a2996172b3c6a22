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

Memory, in a fresh subprocess per thread count (``--memory-threads``): build the digital
model, trim the heap (``malloc_trim``), take the resident set as the baseline, and before each
of convert, program and drift reset the kernel's peak (``/proc/self/clear_refs``, Linux ≥ 4.0);
the largest peak (``VmHWM``) minus the baseline is the memory they needed. Target: ≤ 3× the
digital model's parameter bytes. The subprocess also times the three verbs and sums the tiles'
buffers by name.

One torch thread by default: on a shared machine under load, each operator split over two
OpenMP threads waits for a core another process holds, so with two threads the times count
operator launches rather than work. ``--threads 2`` on an idle machine.

Writes ``benchmarks/results/bench_transformer.json``. Run: ``python
benchmarks/bench_transformer.py`` (about 5 minutes); ``--profile N`` keeps torch.profiler's
top N operators of a pcm and a floor forward.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
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
from performance_page import run_mode, write_results

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
    """Bytes the tiles hold, summed per buffer, with the 1/f read-noise cache
    (``read_noise_q``) and the forward plan's matrices (``plan``) where present."""
    totals: dict[str, int] = {}
    for _, layer in analog_layers(model):
        tile = layer.tile
        held = [*tile.named_buffers(recurse=False), ("read_noise_q", tile.read_noise_q),
                *[("plan", m) for m in (tile.plan.matrices if tile.plan else [])]]
        for name, tensor in held:
            if tensor is not None and tensor.numel():
                totals[name] = totals.get(name, 0) + tensor.numel() * tensor.element_size()
    return dict(sorted(totals.items()))


def trim_heap() -> None:
    """Collect garbage and return the heap's free memory to the system (glibc)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure_programming() -> dict[str, Any]:
    """In this (fresh) process: peak memory and times of convert + program + drift.

    The peak is reset before each verb, so each verb's own peak is known too; all are bytes
    above the resident set before convert.
    """
    model = build_gpt2()
    trim_heap()
    baseline = status_bytes("VmRSS")
    verbs = {
        "convert": lambda: asim.convert(model, CARD, inplace=True),
        "program": lambda: asim.program(model, seed=SEED),
        "drift": lambda: asim.drift(model, DRIFT_S),
    }
    times, peaks = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DigitalRemainderWarning)
        for verb, run in verbs.items():
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
            started = time.perf_counter()
            run()
            times[f"{verb}_s"] = time.perf_counter() - started
            peaks[verb] = status_bytes("VmHWM") - baseline
    after = status_bytes("VmRSS") - baseline
    trim_heap()
    weights = sum(layer.weight.numel() for _, layer in analog_layers(model))
    return {"method": "VmHWM minus VmRSS before convert (the kernel's peak reset through "
                      "/proc/self/clear_refs before each verb, the heap trimmed before the "
                      "baseline), default malloc settings",
            "baseline_bytes": baseline, "growth_bytes": max(peaks.values()),
            "peak_by_verb_bytes": peaks, "resident_after_bytes": after,
            "resident_after_trim_bytes": status_bytes("VmRSS") - baseline,
            # each parameter once: the tied lm_head is the token embedding
            "parameter_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
            "analog_weights": weights,
            "state_bytes": tile_state_bytes(model), **times}


def memory_in_subprocess(threads: int) -> dict[str, Any]:
    """:func:`measure_programming` in a fresh Python process with ``threads`` torch threads."""
    done = subprocess.run([sys.executable, __file__, "--memory-child", "--threads", str(threads)],
                          capture_output=True, text=True, check=True)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {"threads": threads, **found,
            "growth_over_parameters": found["growth_bytes"] / found["parameter_bytes"]}


def memory_figures(runs: list[dict[str, Any]], after_forward: dict[str, int]) -> dict[str, Any]:
    """Every run, the worst one against the target, and the tiles' state per buffer after
    drift and after the first forward (which builds the forward plan)."""
    worst = max(runs, key=lambda run: run["growth_bytes"])
    after_drift, weights = worst["state_bytes"], worst["analog_weights"]
    names = [*sorted(set(after_drift) | set(after_forward)), "all"]
    after_drift["all"], after_forward["all"] = (sum(after_drift.values()),
                                                sum(after_forward.values()))
    state = [{"buffer": name, "after_drift_bytes": after_drift.get(name, 0),
              "after_forward_bytes": after_forward.get(name, 0),
              "per_weight_bytes": after_forward.get(name, 0) / weights} for name in names]
    return {"runs": runs, "method": worst["method"], "parameter_bytes": worst["parameter_bytes"],
            "growth_bytes": worst["growth_bytes"],
            "growth_over_parameters": worst["growth_over_parameters"],
            "target": MEMORY_TARGET, "met": worst["growth_over_parameters"] <= MEMORY_TARGET,
            "state": state}


# ------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed forwards of each")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: see the module docstring)")
    parser.add_argument("--memory-threads", type=int, nargs="+", default=[1, 2],
                        help="torch threads of each memory subprocess")
    parser.add_argument("--profile", type=int, default=12, metavar="N",
                        help="torch.profiler's top N operators of each forward (0: none)")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        print(json.dumps(measure_programming()))
        return
    started = time.perf_counter()
    memory_runs = [memory_in_subprocess(threads) for threads in args.memory_threads]
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
                  "analog_layers": len(analog), "analog_weights": memory_runs[0]["analog_weights"],
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
        "memory": memory_figures(memory_runs, tile_state_bytes(model)),
        "profile": profile,
    }
    report(figures)
    path = write_results("bench_transformer", figures, mode=run_mode(parser, args),
                         started=started)
    print(f"wrote {path}")


def report(figures: dict[str, Any]) -> None:
    """Print the headline figures (the JSON has them all)."""
    fw, mem = figures["forward"], figures["memory"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; GPT-2 small on "
          f"{CARD}, batch {BATCH} x {TOKENS} tokens; forward, median of {fw['repeats']}:")
    for row in fw["variants"]:
        print(f"  {row['label']:<8} {row['median_s']:7.3f} s  / floor {row['over_floor']:5.2f}x"
              f"  / digital {row['over_digital']:5.2f}x")
    print(f"pcm / floor {fw['pcm_over_floor']:.2f}x (per repetition "
          f"{fw['paired_pcm_over_floor_min']:.2f}-{fw['paired_pcm_over_floor_max']:.2f}x), target"
          f" <= {fw['target']:g}x: {'met' if fw['met'] else 'NOT met'}; floor vs tile per layer:"
          f" largest difference {figures['agreement']:.2g} of max |output|")
    for run in mem["runs"]:
        print(f"memory, {run['threads']} thread(s): peak {run['growth_bytes'] / 2**20:,.0f} MiB "
              f"= {run['growth_over_parameters']:.2f}x the parameters (target <= "
              f"{mem['target']:g}x); convert {run['convert_s']:.1f} s, program "
              f"{run['program_s']:.1f} s, drift {run['drift_s']:.1f} s")
    print("tile state after the first forward, bytes per analog weight: " + ", ".join(
        f"{row['buffer']} {row['per_weight_bytes']:.2f}" for row in mem["state"]))


if __name__ == "__main__":
    main()
