"""Measurement files for fitting a device card: the layout, and reading them.

Writing them is :mod:`.measurement_writer`; drawing them from a card,
:mod:`.simulated_measurements`.

Layout
------
A measurement file is a table in *long format*: one row per conductance read. It is either

- a CSV file (``.csv``): one header row of column names, then one row per read, cells separated
  by commas, semicolons or tabs (the one the header row uses; the numbers keep their decimal
  point); lines starting with ``#`` and blank lines are skipped (use them for notes); or
- an HDF5 file (``.h5``, ``.hdf5``): one 1-D dataset per column at the file's root, all of the
  same length, named as the CSV columns. A dataset may carry a ``units`` attribute; if it does,
  it must be the unit below (``"uS"`` or ``"µS"``, ``"s"``).

==================  ======  ===============  ===================================================
column              unit    required         meaning
==================  ======  ===============  ===================================================
``device``          —       with ``time_s``  device id (integer or text), shared by the rows of
                                             one device
``target_uS``       µS      yes              target conductance g_T the device was programmed to
``programmed_uS``   µS      yes              the first read after programming, taken t0 after
                                             the programming pulse (t0 = ``drift.t0_s`` of the
                                             base card: 20 s for ``pcm``, and 20 s when the card
                                             has no power-law drift)
``time_s``          s       no               time of a later read, counted from that first read
                                             as ``analogsim.drift(t_seconds=...)`` counts it:
                                             the read was taken t0 + time_s after programming
``conductance_uS``  µS      with ``time_s``  the conductance read at ``time_s``
==================  ======  ===============  ===================================================

Without ``time_s``, each row is one device (``device`` may be left out: then each row is its own
device). With ``time_s``, each row is one later read of a device and repeats that device's
``target_uS`` and ``programmed_uS``; several rows of one device at the same ``time_s`` are
repeated reads (they give the read noise). A device without later reads has one row whose
``time_s`` and ``conductance_uS`` cells are both empty (HDF5: both NaN). Example::

    device,target_uS,programmed_uS,time_s,conductance_uS
    0,12.5,12.81,60,12.47
    0,12.5,12.81,60,12.66
    0,12.5,12.81,3600,11.93
    1,3.2,3.05,,

Every cell of the numeric columns is a plain decimal number without its unit. A file is refused
with :class:`~analogsim.errors.DataError` (naming the file, the column, the row and the fix) when
a required column is missing or a column is unknown, a cell is not a finite number, a
conductance is negative, a conductance column looks like siemens (all values below 1e-3), a time
is negative, ``time_s`` comes without ``conductance_uS`` (or the other way round), reads come
without ``device``, or the rows of one device disagree on its target or first read.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from analogsim.errors import DataError, MissingDataFileError, require_file
from analogsim.tiles.programmed import SIEMENS_LIMIT as SIEMENS_LIMIT
from analogsim.tiles.programmed import check_conductances

#: Every column of the layout and its unit.
COLUMNS = {"device": "", "target_uS": "µS", "programmed_uS": "µS", "time_s": "s",
           "conductance_uS": "µS"}
REQUIRED = ("target_uS", "programmed_uS")
_CONDUCTANCES = ("target_uS", "programmed_uS", "conductance_uS")
_READ_COLUMNS = ("time_s", "conductance_uS")
_UNIT_SPELLINGS = {"µS": {"uS", "µS", "microsiemens"}, "s": {"s", "seconds"}}


@dataclass(frozen=True)
class Measurements:
    """Measured devices and their later reads, as read from one file (µS, s).

    Attributes:
        source: the file the numbers come from (or a description of simulated ones).
        device: (N,) device ids as text, one per device.
        target_uS: (N,) target conductances g_T, µS.
        programmed_uS: (N,) first reads after programming, at t0, µS.
        read_device: (M,) index into the device arrays of each later read.
        time_s: (M,) time of each later read after the first read, s.
        conductance_uS: (M,) conductance of each later read, µS.
    """

    source: str
    device: np.ndarray
    target_uS: np.ndarray
    programmed_uS: np.ndarray
    read_device: np.ndarray
    time_s: np.ndarray
    conductance_uS: np.ndarray

    @property
    def devices(self) -> int:
        """Number of devices."""
        return len(self.target_uS)

    @property
    def has_reads(self) -> bool:
        """Whether the file has later reads (``time_s`` and ``conductance_uS``)."""
        return len(self.time_s) > 0


# ------------------------------------------------------------------------------------ reading


def load_measurements(path: str | Path) -> Measurements:
    """Read and check a measurement file (CSV or HDF5, layout in the module docstring).

    Raises:
        DataError: the file is missing, unreadable or breaks the layout; the message names the
            file, the column and row, and how to fix it.
    """
    path = Path(path)
    require_file(path, "measurement file", DataError, MissingDataFileError)
    if path.suffix.lower() == ".csv":
        columns, where = _read_csv(path)
    elif path.suffix.lower() in (".h5", ".hdf5"):
        columns, where = _read_hdf5(path)
    else:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; measurements are a .csv "
                        "file or an .h5/.hdf5 file (layout: analogsim.hardware.measurements)")
    return _build(columns, str(path), where)


def _read_csv(path: Path) -> tuple[dict[str, np.ndarray], Callable[[int], str]]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file; write the measurements as CSV text "
                        "or as HDF5 (.h5)") from None
    numbered = [(n, line) for n, line in enumerate(lines, 1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise DataError(f"{path}: no header row; the first line that is not a # comment names "
                        f"the columns ({', '.join(COLUMNS)})")
    delimiter = _delimiter(numbered[0][1], path)
    rows = list(csv.reader((line for _, line in numbered), delimiter=delimiter))
    header = [name.strip() for name in rows[0]]
    _check_header(header, str(path))
    body, line_numbers = rows[1:], [n for n, _ in numbered[1:]]
    for row, number in zip(body, line_numbers, strict=True):
        if len(row) != len(header):
            raise DataError(f"{path}: line {number} has {len(row)} cells but the header names "
                            f"{len(header)} columns; every row needs one cell per column")
    columns = {name: np.array([row[i].strip() for row in body], dtype=object)
               for i, name in enumerate(header)}
    return columns, lambda i: f"line {line_numbers[i]}"


#: The cell separators a CSV measurement file may use; its header row says which.
DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs"}


def _delimiter(header: str, path: Path) -> str:
    """The separator of a CSV file: the one of :data:`DELIMITERS` its header row uses."""
    used = [d for d in DELIMITERS if d in header.strip()]
    if len(used) > 1:
        raise DataError(f"{path}: the header row {header.strip()!r} mixes "
                        f"{' and '.join(DELIMITERS[d] for d in used)}; separate every cell by "
                        "the same one of commas, semicolons or tabs")
    if not used and header.strip() not in COLUMNS:
        raise DataError(f"{path}: the header row {header.strip()!r} is not separated by "
                        f"commas, semicolons or tabs; name the columns ({', '.join(COLUMNS)}) "
                        "separated by one of them")
    return used[0] if used else ","


def _read_hdf5(path: Path) -> tuple[dict[str, np.ndarray], Callable[[int], str]]:
    try:
        with h5py.File(path, "r") as file:
            names = [name for name, item in file.items() if isinstance(item, h5py.Dataset)]
            _check_header(names, str(path))
            columns = {}
            for name in names:
                dataset = file[name]
                if dataset.ndim != 1:
                    raise DataError(f"{path}: dataset {name!r} has shape {dataset.shape}; every "
                                    "column is a 1-D dataset, one value per read")
                unit = dataset.attrs.get("units")
                if isinstance(unit, bytes):
                    unit = unit.decode()
                expected = COLUMNS[name]
                if unit is not None and expected and unit not in _UNIT_SPELLINGS[expected]:
                    raise DataError(f"{path}: dataset {name!r} has units {unit!r}; the column "
                                    f"holds {expected} (convert it, or fix the attribute)")
                columns[name] = dataset[()]
    except OSError as error:
        raise DataError(f"{path}: not a readable HDF5 file ({error})") from None
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"{path}: the column datasets differ in length {lengths}; every column "
                        "has one value per read")
    return columns, lambda i: f"row {i} (counting from 0)"


def _check_header(names: Sequence[str], source: str) -> None:
    duplicated = sorted({name for name in names if list(names).count(name) > 1})
    if duplicated:
        raise DataError(f"{source}: the column {duplicated[0]!r} appears twice; name each "
                        "column once")
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise DataError(f"{source}: unknown column {unknown[0]!r}; the columns are "
                        f"{', '.join(COLUMNS)} (rename it, or drop it)")
    for name in REQUIRED:
        if name not in names:
            what = ("target conductance, µS" if name == "target_uS"
                    else "first read after programming, µS")
            raise DataError(f"{source}: missing the required column {name!r} ({what}); "
                            f"columns found: {list(names)}")
    for name, other in (_READ_COLUMNS, _READ_COLUMNS[::-1]):
        if name in names and other not in names:
            raise DataError(f"{source}: column {name!r} is given without {other!r}; a later "
                            "read needs both its time (time_s, s after the first read) and its "
                            f"conductance (conductance_uS, µS): add {other!r} or drop {name!r}")
    if "time_s" in names and "device" not in names:
        raise DataError(f"{source}: later reads (time_s, conductance_uS) need a 'device' column "
                        "saying which device each read belongs to")


def _numbers(values: np.ndarray, name: str, source: str, where: Callable[[int], str],
             empty_allowed: bool) -> np.ndarray:
    """A column as float64, with a clear error for text, empty or non-finite cells."""
    if values.dtype.kind in "iuf":
        numbers = values.astype(np.float64)
    elif values.dtype.kind in "OSU":
        numbers = np.empty(len(values))
        for i, cell in enumerate(values):
            cell = cell.decode() if isinstance(cell, bytes) else str(cell)
            try:
                numbers[i] = float(cell) if cell or not empty_allowed else np.nan
            except ValueError:
                raise DataError(f"{source}: {where(i)}, column {name!r}: {cell!r} is not a "
                                f"number; write plain decimal numbers in {COLUMNS[name]} without "
                                "units (e.g. 12.5 or 1.25e1)") from None
    else:
        raise DataError(f"{source}: column {name!r} holds {values.dtype} values; it must hold "
                        f"numbers in {COLUMNS[name]}")
    bad = ~np.isfinite(numbers)
    if empty_allowed:
        bad &= ~np.isnan(numbers)
    if bad.any():
        i = int(np.argmax(bad))
        cell = "empty" if values.dtype.kind in "OSU" and not str(values[i]) else numbers[i]
        raise DataError(f"{source}: {where(i)}, column {name!r}: the cell is {cell}; every cell "
                        f"must be a finite number in {COLUMNS[name]}")
    return numbers


def _check_conductance(values: np.ndarray, name: str, source: str,
                       where: Callable[[int], str]) -> None:
    """The check every measured conductance gets, here and in a chip's read-back."""
    check_conductances(values, source, f"column {name!r}", where,
                       empty_allowed=name in _READ_COLUMNS)


def _build(columns: dict[str, np.ndarray], source: str,
           where: Callable[[int], str]) -> Measurements:
    rows = len(columns["target_uS"])
    if rows == 0:
        raise DataError(f"{source}: the file has a header but no rows of measurements")
    has_reads = "time_s" in columns
    values = {name: _numbers(columns[name], name, source, where,
                             empty_allowed=name in _READ_COLUMNS)
              for name in COLUMNS if name in columns and name != "device"}
    for name in _CONDUCTANCES:
        if name in values:
            _check_conductance(values[name], name, source, where)
    if "device" in columns:
        ids = np.array([v.decode() if isinstance(v, bytes) else str(v).strip()
                        for v in columns["device"]])
    else:
        ids = np.arange(rows).astype(str)
    if has_reads:
        time, read = values["time_s"], values["conductance_uS"]
        mismatch = np.isnan(time) != np.isnan(read)
        if mismatch.any():
            i = int(np.argmax(mismatch))
            raise DataError(f"{source}: {where(i)}: time_s and conductance_uS must be both given "
                            "or both empty (a device without later reads)")
        if np.nanmin(time, initial=0.0) < 0:
            i = int(np.nanargmin(time))
            raise DataError(f"{source}: {where(i)}, column 'time_s': {time[i]:g} s is negative; "
                            "time_s counts seconds after the first read (≥ 0)")
    names, first, index = np.unique(ids, return_index=True, return_inverse=True)
    if not has_reads and len(names) < rows:
        repeated = np.setdiff1d(np.arange(rows), first)[0]
        raise DataError(f"{source}: device {str(ids[repeated])!r} appears on "
                        f"{where(int(first[index[repeated]]))} and {where(int(repeated))}; "
                        "without time_s each device has one row")
    for name in REQUIRED:
        per_device = values[name][first]
        differs = values[name] != per_device[index]
        if differs.any():
            i = int(np.argmax(differs))
            raise DataError(f"{source}: device {str(ids[i])!r} has {name} "
                            f"{per_device[index[i]]:g} on {where(int(first[index[i]]))} but "
                            f"{values[name][i]:g} on {where(i)}; each device has one target and "
                            "one first read, repeated on each of its rows")
    order = np.argsort(first)  # devices in the order they first appear
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    reads = np.isfinite(values["time_s"]) if has_reads else np.zeros(rows, bool)
    return Measurements(
        source=source, device=names[order], target_uS=values["target_uS"][first[order]],
        programmed_uS=values["programmed_uS"][first[order]], read_device=rank[index][reads],
        time_s=values["time_s"][reads] if has_reads else np.empty(0),
        conductance_uS=values["conductance_uS"][reads] if has_reads else np.empty(0))
