"""Where exact integer products of DAC codes beat float32 (the rule in analogsim.integer_mvm).

For each shape (rows × outputs, batch of input vectors), one instance: the time of
``integer_mvm.matmul`` (int8 conversion of the codes, three int8 products, float32
combination; digit planes computed once beforehand, as a tile's forward plan keeps them)
against ``F.linear`` on the same float codes, side by side in this process. The last column is
what ``integer_mvm.worth_it`` decides; it should say "integer" only where the ratio is below 1.

Writes ``benchmarks/results/bench_integer_mvm.json``. Run: ``python
benchmarks/bench_integer_mvm.py`` (``--quick`` for a few shapes).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import timeit
from pathlib import Path

import torch
import torch.nn.functional as F

from analogsim.allocator import keep_freed_memory
from analogsim.tiles import integer_mvm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from performance_page import run_mode, write_results


def best_time(fn, repeats: int, number: int) -> float:
    """Best of ``repeats`` mean times of ``number`` calls, in seconds."""
    fn()
    return min(timeit.repeat(fn, repeat=repeats, number=number)) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="three shapes only")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    keep_freed_memory()
    generator = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, AMX "
          f"{'yes' if integer_mvm.amx_available() else 'no (float32 products by default)'}; "
          "times in µs (best of repeats)")
    print(f"{'rows':>5} {'out':>5} {'batch':>6} {'float32':>9} {'integer':>9} {'ratio':>6}  "
          "worth_it")
    shapes = ([(512, 512, 256), (256, 256, 256), (512, 512, 64)] if args.quick else
              itertools.product((256, 512, 1024), (128, 256, 512, 1024), (64, 256, 1024)))
    found = []
    with torch.inference_mode():
        for rows, out, batch in shapes:
            w = torch.randn(1, out, rows, generator=generator)
            codes = torch.randint(-63, 64, (batch, rows), generator=generator).float()
            planes = [integer_mvm.digit_planes(w[0])]  # once, as a tile's forward plan keeps them
            number = max(1, int(2e7 / (rows * out * batch)))
            t_float = best_time(lambda x=codes, m=w[0]: F.linear(x, m), args.repeats, number)
            t_integer = best_time(lambda x=codes, p=planes: integer_mvm.matmul(x, p), args.repeats,
                                  number)
            choice = "integer" if integer_mvm.worth_it(batch, rows, out) else "float32"
            print(f"{rows:5d} {out:5d} {batch:6d} {1e6 * t_float:9.1f} {1e6 * t_integer:9.1f} "
                  f"{t_integer / t_float:6.2f}  {choice}")
            found.append({"rows": rows, "out": out, "batch": batch, "float32_s": t_float,
                          "integer_s": t_integer, "integer_over_float32": t_integer / t_float,
                          "choice": choice})
    ratios = [row["integer_over_float32"] for row in found]
    chosen = [row["integer_over_float32"] for row in found if row["choice"] == "integer"]
    path = write_results("bench_integer_mvm", {
        "amx": integer_mvm.amx_available(), "min_rows": integer_mvm.MIN_ROWS,
        "min_outputs": integer_mvm.MIN_OUTPUTS, "shapes": found, "ratio_min": min(ratios),
        "ratio_max": max(ratios), "chosen_ratio_min": min(chosen, default=None),
        "chosen_ratio_max": max(chosen, default=None)},
        mode=run_mode(parser, args), started=started)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
