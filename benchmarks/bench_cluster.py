"""A sweep in one process against the same sweep on a Dask LocalCluster of 2 workers.

The sweep: the digits MLP on ``pcm``, 8 read-noise scales × 4 ADC resolutions (32 points) × 4
drift times, 20 chip instances per point. The cluster runs 2 worker processes with one thread
and one torch thread each (started, and analogsim imported in them, before the clock starts;
that start-up time is printed apart). The serial run is timed twice in this process:

- with one torch thread, the resources of one worker: the points one after another, as a
  worker computes its chunks. The speed-up against it is the target: ≥ 1.6× on 2 cores;
- with torch's default threads (2 here), as ``analogsim run`` without ``--cluster`` computes;
  the speed-up against it is printed too (two torch threads already gain on one).

All three give the same numbers, checked here.

Writes ``benchmarks/results/bench_cluster.json``. Run: ``python benchmarks/bench_cluster.py``
(needs the ``cluster`` extra).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

from analogsim.allocator import keep_freed_memory
from analogsim.experiments.card_grid import CardAxis
from analogsim.experiments.cluster import ClusterRunner, cluster_client
from analogsim.experiments.sweep import SweepPlan, sweep_accuracy
from analogsim.train.reference import trained_digits_mlp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from performance_page import run_mode, write_results

TARGET = 1.6  # speed-up of the cluster against one worker's resources, at least

PLAN = SweepPlan(axes=(CardAxis("read_noise.scale", (0.5, 1, 1.5, 2, 3, 4, 6, 8), mode="scale"),
                       CardAxis("adc.bits", (6, 7, 8, 9))),
                 times_s=(1.0, 86400.0, 2592000.0, 31536000.0), instances=20)


def best_of(repeats: int, sweep) -> tuple[float, np.ndarray]:
    """The shortest of ``repeats`` runs of ``sweep()`` (seconds) and its result."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = sweep()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started_all = time.perf_counter()
    keep_freed_memory()  # as `analogsim run` does; the workers do it themselves
    model, data = trained_digits_mlp(seed=0, epochs=20)
    test = (data.x_test, data.y_test)
    points = int(np.prod([len(a.values) for a in PLAN.axes]))
    default_threads = torch.get_num_threads()
    print(f"torch {torch.__version__}; {points} points × {len(PLAN.times_s)} times × "
          f"{PLAN.instances} instances")
    serial_s, serial = best_of(args.repeats, lambda: sweep_accuracy(model, test, "pcm", PLAN))
    torch.set_num_threads(1)
    single_s, single = best_of(args.repeats, lambda: sweep_accuracy(model, test, "pcm", PLAN))
    torch.set_num_threads(default_threads)
    started = time.perf_counter()
    with cluster_client(f"local:{args.workers}") as client:
        client.run(importlib.import_module, "analogsim.experiments.sweep")  # warm workers
        startup_s = time.perf_counter() - started
        runner = ClusterRunner(client)
        cluster_s, distributed = best_of(args.repeats, lambda: sweep_accuracy(
            model, test, "pcm", PLAN, runner=runner))
    print(f"{'serial, 1 torch thread':<34}{single_s:8.2f} s")
    print(f"{f'serial, {default_threads} torch threads':<34}{serial_s:8.2f} s")
    print(f"{f'local:{args.workers} (start {startup_s:.1f} s apart)':<34}{cluster_s:8.2f} s")
    same = np.array_equal(serial, distributed) and np.array_equal(single, distributed)
    print(f"same numbers: {same}")
    speedup = single_s / cluster_s
    verdict = "met" if speedup >= TARGET else "MISSED"
    print(f"speed-up against serial with 1 torch thread {speedup:.2f}x (target >= {TARGET}x on "
          f"2 cores): {verdict}")
    print(f"speed-up against serial with {default_threads} torch threads "
          f"{serial_s / cluster_s:.2f}x")
    runs = [{"label": "serial, 1 torch thread (one worker's resources)", "time_s": single_s,
             "speedup": speedup, "target": TARGET},
            {"label": f"serial, {default_threads} torch threads (`analogsim run` without "
                      "`--cluster`)", "time_s": serial_s, "speedup": serial_s / cluster_s},
            {"label": f"local:{args.workers}", "time_s": cluster_s}]
    path = write_results("bench_cluster", {
        "points": points, "times": len(PLAN.times_s), "instances": PLAN.instances,
        "workers": args.workers, "startup_s": startup_s, "same_numbers": same, "runs": runs,
        "speedup": speedup, "target": TARGET, "met": speedup >= TARGET,
        "repeats": args.repeats}, mode=run_mode(parser, args), started=started_all)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
