"""Regenerate the example measurement files of this folder from the simulated chip.

    .venv/bin/python docs/measurements/make_examples.py [OUT_DIR]

- ``pcm_2000.h5``: the ``pcm`` card, 2,000 devices with targets uniform in 0–25 µS; the first
  read after programming, then 3 repeated reads at each of 1 min, 1 h, 1 day and 1 week after it
  (seed 0). Fit it with ``fit_device("docs/measurements/pcm_2000.h5", base="pcm")``.
- ``rram_2000.csv``: the ``rram`` card, 2,000 devices with targets uniform in 0–40 µS, the first
  read only (its relaxation law is not the power-law drift the fit knows; seed 0). Fit it with
  ``fit_device("docs/measurements/rram_2000.csv", base="rram")``.

Layout of both: :mod:`analogsim.hardware.measurements`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from analogsim.hardware import simulate_measurements, write_measurements

HERE = Path(__file__).resolve().parent
PCM_TIMES_S = (60.0, 3600.0, 86400.0, 604800.0)


def write_examples(out_dir: Path = HERE) -> list[Path]:
    """Write both example files into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pcm = simulate_measurements("pcm", devices=2000, times_s=PCM_TIMES_S, repeats=3, seed=0)
    rram = simulate_measurements("rram", devices=2000, seed=0)
    how = "docs/measurements/make_examples.py"
    return [
        write_measurements(pcm, out_dir / "pcm_2000.h5", note=f"{pcm.source}; made by {how}: "
                           "2000 devices, 3 reads at each of 1 min, 1 h, 1 day, 1 week"),
        write_measurements(rram, out_dir / "rram_2000.csv", note=f"{rram.source}; made by "
                           f"{how}: 2000 devices, first read only\nconductances in µS"),
    ]


if __name__ == "__main__":
    for path in write_examples(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
