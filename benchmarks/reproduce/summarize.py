"""Print the numbers behind docs/reproductions.md from the results files of the specs here.

Run after ``analogsim run benchmarks/reproduce/<spec>.toml``:
``python benchmarks/reproduce/summarize.py results/s0_noise_aware_sam.h5 ...``.
For each run: mean accuracy with its 95 % CI (over seeds × draws or seeds × chip instances) for
every method and σ, and training-time ratios against the first method; for sweeps (S3), the
accuracy grid and the noise tolerance threshold of each row (largest σ within 1 pp of the
digital model).
"""

from __future__ import annotations

import argparse

import numpy as np

import analogsim as asim
from analogsim.report.summaries import tolerance_threshold
from analogsim.statistics import confidence_interval


def describe(path: str) -> None:
    results = asim.load_results(path)
    print(f"== {path}")
    if "sweep" in results.runs:
        describe_sweep(results)
    for name in ("attack", "chip"):
        run = results.runs.get(name)
        if run is None:
            continue
        x_axis = run.dims["accuracy"][1]
        samples = int(run.attrs.get("test_samples", 1000))
        print(f"-- {run.attrs.get('title', name)}")
        print(f"{'method':<22}" + "".join(f"{f'{x_axis}={v:g}':>22}" for v in run.axes[x_axis]))
        for i, method in enumerate(run.axes["method"]):
            cells = []
            for j in range(len(run.axes[x_axis])):
                row = run.data["accuracy"][i, j]
                low, high = confidence_interval(row, samples)
                cells.append(f"{100 * row.mean():6.2f} [{100 * low:5.1f},{100 * high:5.1f}]")
            print(f"{method:<22}" + "".join(f"{c:>22}" for c in cells))
    timing = results.runs.get("training_time")
    if timing is not None:
        seconds = timing.data["seconds"].mean(axis=1)
        print("-- training time (mean over seeds) and ratio to the first method")
        for method, value in zip(timing.axes["method"], seconds, strict=True):
            print(f"{method:<22}{value:8.1f} s {value / seconds[0]:6.2f}x")
    finals = {n: r.data["test_accuracy"][-1] for n, r in results.runs.items()
              if n.startswith("train_")}
    norms = {n: np.nanmean(r.data["gradient_norm"][-10:]) for n, r in results.runs.items()
             if n.startswith("train_")}
    print("-- last-epoch test accuracy / mean ‖∇L‖ over the last 10 epochs, per training")
    for name in sorted(finals):
        print(f"{name:<34}{100 * finals[name]:7.2f} %  {norms[name]:9.4f}")


def describe_sweep(results: asim.Results) -> None:
    """A sweep's mean accuracy per point (first card axis as rows, the second as columns, the
    first drift time) and, along a noise-scale axis, S3's tolerance threshold per row."""
    run = results.runs["sweep"]
    dims = run.dims["accuracy"]
    if len(dims) != 4:
        print(f"-- sweep over {dims[:-1]}: not a two-axis grid; see the report")
        return
    rows, columns = dims[0], dims[1]
    mean = run.data["accuracy"][:, :, 0].mean(axis=-1)
    reference = run.attrs.get("digital_accuracy")
    if reference is None:  # written by an older analogsim: the training's last test accuracy
        reference = next(r.data["test_accuracy"][-1] for n, r in results.runs.items()
                         if n.startswith("train_"))
    print(f"-- {run.attrs.get('title', 'sweep')}: accuracy % (mean of "
          f"{run.data['accuracy'].shape[-1]} instances); digital model {100 * reference:.2f} %")
    print(f"{rows:<34}" + "".join(f"{v:>9.4g}" for v in run.axes[columns]) +
          f"{'threshold':>11}{'r_avg':>9}")
    for i, label in enumerate(run.axes[rows]):
        threshold = (tolerance_threshold(np.asarray(run.axes[columns], float), mean[i],
                                         reference) if run.units.get(columns) == "×"
                     else np.nan)
        print(f"{label!s:<34}" + "".join(f"{100 * a:9.2f}" for a in mean[i]) +
              f"{threshold:11.4g}{run.data['r_avg'][i, 0]:9.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    for path in parser.parse_args().files:
        describe(path)


if __name__ == "__main__":
    main()
