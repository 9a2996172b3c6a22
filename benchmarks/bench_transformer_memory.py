"""Peak memory and time of convert + program + drift of GPT-2 small on ``pcm`` (issue 18).

The model and verbs of ``bench_transformer.py``: GPT-2 small from ``GPT2Config()``'s defaults
(random weights), ``asim.convert(model, "pcm", inplace=True)``, ``asim.program(model, seed=0)``
(K = 1), ``asim.drift(model, 3600)``. Target: their peak memory ≤ 3× the digital model's
parameter bytes.

Each configuration runs in a fresh Python process of this script: build the digital model,
collect garbage and trim the heap (``malloc_trim``), take the resident set (``VmRSS``) as the
baseline, and before each verb reset the kernel's peak to the current resident set
(``/proc/self/clear_refs``, Linux ≥ 4.0); after it, its peak (``VmHWM``) minus the baseline is
the memory it needed. The largest over the three verbs is the figure held against the target.
Configurations:

- glibc malloc's defaults, one and two torch threads: what a library user's process takes;
- large blocks (≥ 1 MiB) mapped and unmapped one by one (``mallopt`` of ``M_MMAP_THRESHOLD``
  and ``M_TRIM_THRESHOLD``): freed memory goes back to the system at once, so the peak is close
  to the peak of the memory in use; the difference to the defaults is what malloc keeps.

After drift each process also reports its resident set before and after trimming the heap,
and the bytes the tiles hold per buffer, after drift and after one forward (batch 4 × 128 tokens,
which builds each tile's forward plan).

Writes ``benchmarks/results/bench_transformer_memory.json``. Run: ``python
benchmarks/bench_transformer_memory.py`` (about 3 minutes).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

import analogsim as asim
from analogsim.conversion import analog_layers
from analogsim.errors import DigitalRemainderWarning

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_transformer import BATCH, CARD, DRIFT_S, SEED, TOKENS, build_gpt2, forward
from performance_page import run_mode, write_results

TARGET = 3.0  # peak memory of convert + program + drift / parameter bytes, at most
#: (torch threads, malloc setting) of each measuring process
CONFIGURATIONS = ((1, "default"), (2, "default"), (1, "mmap"))
MMAP_THRESHOLD = 2**20  # bytes; blocks from this size are mapped alone ("mmap" setting)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, glibc's malloc.h


def status_bytes(field: str) -> int:
    """A size of /proc/self/status (``VmRSS``, ``VmHWM``), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def trim_heap() -> None:
    """Collect garbage and return the heap's free memory to the system (glibc)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


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


def measure(malloc: str) -> dict[str, Any]:
    """In this (fresh) process: each verb's peak above the baseline (bytes), its time (s),
    the resident set after drift, and the tiles' state."""
    if malloc == "mmap":
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, MMAP_THRESHOLD)
    model = build_gpt2()
    # each parameter once: the tied lm_head is the token embedding
    parameter_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    trim_heap()
    baseline = status_bytes("VmRSS")
    verbs = {"convert": lambda: asim.convert(model, CARD, inplace=True),
             "program": lambda: asim.program(model, seed=SEED),
             "drift": lambda: asim.drift(model, DRIFT_S)}
    found: dict[str, Any] = {"parameter_bytes": parameter_bytes}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DigitalRemainderWarning)
        for verb, run in verbs.items():
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
            started = time.perf_counter()
            run()
            found[f"{verb}_s"] = time.perf_counter() - started
            found[f"{verb}_peak_bytes"] = status_bytes("VmHWM") - baseline
    found["peak_bytes"] = max(found[f"{verb}_peak_bytes"] for verb in verbs)
    found["resident_after_bytes"] = status_bytes("VmRSS") - baseline
    trim_heap()
    found["resident_after_trim_bytes"] = status_bytes("VmRSS") - baseline
    found["state_after_drift"] = tile_state_bytes(model)
    tokens = torch.randint(0, model.config.vocab_size, (BATCH, TOKENS),
                           generator=torch.Generator().manual_seed(SEED))
    with torch.inference_mode():
        forward(model.eval(), tokens)
    found["state_after_forward"] = tile_state_bytes(model)
    found["analog_weights"] = sum(layer.weight.numel() for _, layer in analog_layers(model))
    return found


def in_subprocess(threads: int, malloc: str) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process of this script."""
    done = subprocess.run([sys.executable, __file__, "--child", malloc, "--threads",
                           str(threads)], capture_output=True, text=True, check=True)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {"threads": threads, "malloc": malloc, **found,
            "peak_over_parameters": found["peak_bytes"] / found["parameter_bytes"]}


def state_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The tiles' state per buffer (and in all): bytes after drift and after a forward, and
    bytes per analog weight after the forward."""
    after_drift, after_forward = run["state_after_drift"], run["state_after_forward"]
    names = sorted(set(after_drift) | set(after_forward))
    rows = [{"buffer": name, "after_drift_bytes": after_drift.get(name, 0),
             "after_forward_bytes": after_forward.get(name, 0)} for name in names]
    rows.append({"buffer": "all", "after_drift_bytes": sum(after_drift.values()),
                 "after_forward_bytes": sum(after_forward.values())})
    for row in rows:
        row["per_weight_bytes"] = row["after_forward_bytes"] / run["analog_weights"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("default", "mmap"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    started = time.perf_counter()
    runs = [in_subprocess(threads, malloc) for threads, malloc in CONFIGURATIONS]
    defaults = [run for run in runs if run["malloc"] == "default"]
    worst = max(defaults, key=lambda run: run["peak_bytes"])
    for run in runs:
        print(f"{run['threads']} thread(s), {run['malloc']} malloc: peak "
              f"{run['peak_bytes'] / 2**20:,.0f} MiB = {run['peak_over_parameters']:.2f}x the "
              f"parameters' {run['parameter_bytes'] / 2**20:,.0f} MiB (convert "
              f"{run['convert_peak_bytes'] / 2**20:,.0f}, program "
              f"{run['program_peak_bytes'] / 2**20:,.0f}, drift "
              f"{run['drift_peak_bytes'] / 2**20:,.0f}); resident after drift "
              f"{run['resident_after_bytes'] / 2**20:,.0f}, trimmed "
              f"{run['resident_after_trim_bytes'] / 2**20:,.0f} MiB; convert "
              f"{run['convert_s']:.1f} s, program {run['program_s']:.1f} s, drift "
              f"{run['drift_s']:.1f} s")
    state = state_rows(worst)
    print("tile state after a forward, bytes per analog weight: " + ", ".join(
        f"{row['buffer']} {row['per_weight_bytes']:.2f}" for row in state))
    met = worst["peak_over_parameters"] <= TARGET
    print(f"peak / parameter bytes {worst['peak_over_parameters']:.2f}x (default malloc, worst "
          f"of {len(defaults)}), target <= {TARGET:g}x: {'met' if met else 'NOT met'}")
    path = write_results("bench_transformer_memory", {
        "runs": runs, "state": state, "parameter_bytes": worst["parameter_bytes"],
        "analog_weights": worst["analog_weights"], "peak_bytes": worst["peak_bytes"],
        "peak_over_parameters": worst["peak_over_parameters"], "target": TARGET, "met": met,
        "mmap_threshold_bytes": MMAP_THRESHOLD}, mode=run_mode(parser, args), started=started)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
