"""Writing measurements in the layout :func:`~analogsim.hardware.load_measurements` reads
(:mod:`analogsim.hardware.measurements`): CSV or HDF5, one row per read.

A measurement file is an exchange format for a lab (what :func:`fit_device` reads), not a
results file: results are written by the experiment engine through :mod:`analogsim.results`.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from analogsim.errors import DataError
from analogsim.hardware.measurements import Measurements


def _long_rows(m: Measurements) -> dict[str, np.ndarray]:
    """The long-format columns of ``m``: its reads, plus one row for each device without any."""
    without = np.setdiff1d(np.arange(m.devices), m.read_device)
    device = np.concatenate([m.read_device, without])
    order = np.argsort(device, kind="stable")
    columns = {"device": m.device[device], "target_uS": m.target_uS[device],
               "programmed_uS": m.programmed_uS[device]}
    if m.has_reads:
        columns["time_s"] = np.concatenate([m.time_s, np.full(len(without), np.nan)])
        columns["conductance_uS"] = np.concatenate([m.conductance_uS,
                                                    np.full(len(without), np.nan)])
    return {name: values[order] for name, values in columns.items()}


def write_measurements(m: Measurements, path: str | Path, *, note: str = "",
                       digits: int = 6) -> Path:
    """Write measurements in the layout :func:`load_measurements` reads (CSV or HDF5 by suffix).

    Args:
        note: text written as ``#`` comment lines at the top of a CSV file, or as the ``note``
            attribute of an HDF5 file.
        digits: significant digits of the conductances and times written (HDF5 stores them as
            float32, about 7 digits).
    """
    path = Path(path)
    columns = _long_rows(m)
    if path.suffix.lower() == ".csv":
        lines = [f"# {line}" for line in note.splitlines()] + [",".join(columns)]
        cells = [columns["device"].astype(str)] + [
            np.where(np.isnan(v), "", np.char.mod(f"%.{digits}g", v))
            for name, v in columns.items() if name != "device"]
        lines += [",".join(row) for row in zip(*cells, strict=True)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif path.suffix.lower() in (".h5", ".hdf5"):
        with h5py.File(path, "w") as file:
            if note:
                file.attrs["note"] = note
            ids = columns["device"]
            numeric = all(i.lstrip("-").isdigit() for i in ids)
            file.create_dataset("device", data=ids.astype(np.int64) if numeric
                                else ids.astype(h5py.string_dtype()), compression="gzip",
                                shuffle=True)
            for name, values in columns.items():
                if name != "device":
                    rounded = np.array([float(f"{v:.{digits}g}") for v in values])
                    dataset = file.create_dataset(name, data=rounded.astype(np.float32),
                                                  compression="gzip", shuffle=True)
                    dataset.attrs["units"] = "uS" if name.endswith("_uS") else "s"
    else:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; write .csv, .h5 or .hdf5")
    return path
