"""HDF5 results: one file per run, written incrementally, read back without re-running.

Layout (format version 1)::

    /                      attrs: format="analogsim-results", format_version, versions of
                           analogsim/torch/numpy/h5py/aihwkit, git commit, command, host,
                           started, finished
    /config/<name>         the exact TOML text of every card and spec used (after overrides)
    /runs/<run>/           attrs: anything describing the run (units as "<name>_unit")
        axes/<axis>        the values of each axis, attr "unit"
        <metric>           data with named axes (attr "axes"), e.g. accuracy[time, instance];
                           NaN where a point is not measured yet
        done               bool[axes except the last]: which points are finished

Each point is flushed as it is written, so a crash loses at most the point in flight.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from analogsim.errors import MissingResultsFileError, ResultsFileError, UsageError, require_file
from analogsim.file_lock import ResultsLock

FORMAT = "analogsim-results"
FORMAT_VERSION = 1


def _versions() -> dict[str, str]:
    versions = {}
    for package in ("analogsim", "torch", "numpy", "h5py", "aihwkit"):
        try:
            versions[f"{package}_version"] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[f"{package}_version"] = "not installed"
    return versions


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def spec_fingerprint(text: str) -> str:
    """The SHA-256 of a spec's text: which spec a results file belongs to."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stored_fingerprint(path: str | Path) -> str | None:
    """The spec fingerprint of an existing results file (None: none stored).

    Raises:
        ResultsFileError: the file is unreadable or not an analogsim results file.
    """
    with _open_results(Path(path)) as handle:
        return _decode(handle.attrs.get("spec_fingerprint"))


class ResultsWriter:
    """Writes one results file; the only writer of it. Use as a context manager.

    The writer holds the file from construction to :meth:`close`: an exclusive lock on the
    sidecar ``<path>.lock`` (:mod:`analogsim.file_lock`) records its pid, host and start time,
    and a second writer of the same file, in this process or another, is refused at once.

    With a ``fingerprint`` (of the spec that makes the file) an existing file of the same
    fingerprint is resumed: its runs and finished points are kept, and :meth:`create_run`
    returns the run already there. A file of another spec is refused, never overwritten.
    Without one, an existing file is replaced.

    Args:
        path: the .h5 file; parent folders are created.
        command: the command line (or call) that produced the results.
        fingerprint: :func:`spec_fingerprint` of the spec.

    Raises:
        ResultsFileError: ``path`` holds results of another spec, is not an analogsim file, or
            is being written by another writer (the message names it: pid, host, start time).
    """

    def __init__(self, path: str | Path, command: str | None = None,
                 fingerprint: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.resumed = False
        self.lock = ResultsLock(self.path, command)  # before the file is read or written
        try:
            if fingerprint is not None and self.path.exists():
                stored = stored_fingerprint(self.path)
                if stored != fingerprint:
                    raise ResultsFileError(
                        f"{self.path} holds results of another spec (fingerprint "
                        f"{str(stored)[:12]}…, this spec {fingerprint[:12]}…); give another "
                        "output file or remove it")
                self.resumed = True
            # one writer (the lock); readers may watch the file while it grows
            self.file = h5py.File(self.path, "a" if self.resumed else "w", locking=False)
        except BaseException:
            self.lock.release()
            raise
        if not self.resumed:
            self.file.attrs.update(
                {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    **_versions(),
                    "git_commit": _git_commit(),
                    "command": command if command is not None else " ".join(sys.argv),
                    "host": platform.node(),
                    "started": _now(),
                }
            )
            if fingerprint is not None:
                self.file.attrs["spec_fingerprint"] = fingerprint
        self.file.require_group("config")
        self.file.require_group("runs")
        self.file.flush()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file and release it to the next writer."""
        try:
            if self.file.id.valid:
                self.file.attrs["finished"] = _now()
                self.file.close()
        finally:
            self.lock.release()

    def add_config(self, name: str, toml_text: str) -> None:
        """Store the exact TOML of a card or spec under /config/<name>."""
        group = self.file["config"]
        if name in group:
            del group[name]
        group.create_dataset(name, data=toml_text, dtype=h5py.string_dtype())
        self.file.flush()

    def finished(self, name: str) -> bool:
        """Whether run ``name`` exists with every point done (a resumed file)."""
        runs = self.file["runs"]
        return name in runs and bool(runs[name]["done"][()].all())

    def create_run(
        self,
        name: str,
        axes: Mapping[str, Sequence[Any]],
        metrics: Sequence[str] | Mapping[str, Sequence[str]] = ("accuracy",),
        units: Mapping[str, str] | None = None,
        attrs: Mapping[str, Any] | None = None,
        point_axes: int | None = None,
    ) -> Run:
        """Create /runs/<name> with named axes; a point fills the axes after ``point_axes``.

        Args:
            axes: axis name → values, in order; e.g. {"time": [...], "instance": range(K)}.
            metrics: one dataset per name, NaN-filled, shaped by all the axes; or a mapping
                name → the axes it spans (a subset, in order), for tables that live beside the
                main metric, e.g. {"accuracy": ("site", "sigma", "seed"), "mu": ("site",)}.
            units: axis or metric name → unit string.
            attrs: run attributes (numbers, strings).
            point_axes: how many leading axes index a point (default: all but the last, whose
                values a point writes at once, such as chip instances).
        """
        if name in self.file["runs"]:  # resuming: the run as it was left
            run = Run(self, self.file["runs"][name])
            stored = {a: list(_decode(v[()])) for a, v in run.group["axes"].items()}
            wanted = {a: list(_decode(np.asarray(list(v)))) for a, v in axes.items()}
            if stored != wanted:
                raise ResultsFileError(f"{self.path}: run {name!r} has axes {stored}, not "
                                       f"{wanted}; the file does not belong to this run")
            return run
        units = dict(units or {})
        group = self.file["runs"].create_group(name)
        group.attrs.update(dict(attrs or {}))
        axes_group = group.create_group("axes", track_order=True)
        shape = []
        for axis, values in axes.items():
            array = np.asarray(list(values))
            if array.dtype.kind in "UO":
                dataset = axes_group.create_dataset(
                    axis, data=array.astype(object), dtype=h5py.string_dtype()
                )
            else:
                dataset = axes_group.create_dataset(axis, data=array)
            dataset.attrs["unit"] = units.get(axis, "")
            shape.append(len(array))
        spans = dict(metrics) if isinstance(metrics, Mapping) else {m: tuple(axes) for m in metrics}
        sizes = dict(zip(axes, shape, strict=True))
        for metric, dims in spans.items():
            unknown = [d for d in dims if d not in sizes]
            if unknown:
                raise UsageError(f"metric {metric!r} spans unknown axis {unknown[0]!r}; the run's "
                                 f"axes are {list(axes)}")
            dataset = group.create_dataset(metric, shape=[sizes[d] for d in dims], dtype="f8",
                                           fillvalue=np.nan)
            dataset.attrs["axes"] = list(dims)
            dataset.attrs["unit"] = units.get(metric, "")
        point_shape = shape[: len(shape) - 1 if point_axes is None else point_axes]
        group.create_dataset("done", shape=point_shape or (1,), dtype=bool, fillvalue=False)
        self.file.flush()
        return Run(self, group)


@dataclass
class Run:
    """Handle to one run being written."""

    writer: ResultsWriter
    group: h5py.Group

    def write_point(self, index: tuple[int, ...], **values: Any) -> None:
        """Write the values of one point (all axes but the last) and flush.

        ``values`` maps metric names to arrays along the last axis.
        """
        for metric, value in values.items():
            self.group[metric][index] = np.asarray(value)
        self.group["done"][index or (0,)] = True
        self.writer.file.flush()

    def is_done(self, index: tuple[int, ...]) -> bool:
        """Whether the point ``index`` was written (in this session or before a resume)."""
        return bool(self.group["done"][index or (0,)])

    def read(self, metric: str) -> np.ndarray:
        """A metric as written so far (NaN where not yet measured)."""
        return self.group[metric][()]

    def write_table(self, name: str, values: Any) -> None:
        """Write a whole metric at once (e.g. a per-site fit table) and flush; ``done`` is
        left to :meth:`write_point`."""
        self.group[name][...] = np.asarray(values)
        self.writer.file.flush()


@dataclass(frozen=True)
class RunData:
    """One run read back: axis values, metric arrays with their axis names, attributes."""

    name: str
    axes: dict[str, np.ndarray]
    units: dict[str, str]
    data: dict[str, np.ndarray]
    dims: dict[str, tuple[str, ...]]
    done: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Results:
    """A results file read back: root attributes, configs (TOML text) and runs."""

    path: Path
    attrs: dict[str, Any]
    config: dict[str, str]
    runs: dict[str, RunData]


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return np.array([_decode(v) for v in value])
    if isinstance(value, np.generic):
        return value.item()
    return value


def _open_results(path: Path) -> h5py.File:
    """An analogsim results file opened for reading, its format checked.

    Raises:
        ResultsFileError: missing, unreadable (truncated/corrupt), not an analogsim file, or of
            a format version this analogsim does not read.
    """
    require_file(path, "results file", ResultsFileError, MissingResultsFileError)
    try:
        handle = h5py.File(path, "r", locking=False)  # readable while a run writes it
    except OSError as error:
        raise ResultsFileError(
            f"{path} is not a readable HDF5 file (truncated or corrupt?): {error}"
        ) from None
    found = _decode(handle.attrs.get("format"))
    version = _decode(handle.attrs.get("format_version"))
    if found != FORMAT:
        handle.close()
        raise ResultsFileError(
            f"{path} is an HDF5 file but not an analogsim results file "
            f"(root attribute format={found!r}, expected {FORMAT!r})"
        )
    if version != FORMAT_VERSION:
        handle.close()
        raise ResultsFileError(
            f"{path} has results format version {version!r}; this analogsim reads version "
            f"{FORMAT_VERSION}"
        )
    return handle


def load_results(path: str | Path) -> Results:
    """Read an analogsim results file into numpy arrays and plain Python values.

    Raises:
        ResultsFileError: missing, unreadable (truncated/corrupt), not an analogsim file, or of
            a format version this analogsim does not read.
    """
    path = Path(path)
    with _open_results(path) as handle:
        attrs = {k: _decode(v) for k, v in handle.attrs.items()}
        config = {name: _decode(ds[()]) for name, ds in handle.get("config", {}).items()}
        runs = {}
        for name, group in handle.get("runs", {}).items():
            axes = {a: _decode(ds[()]) for a, ds in group["axes"].items()}
            units = {a: _decode(ds.attrs.get("unit", "")) for a, ds in group["axes"].items()}
            data, dims = {}, {}
            for key, ds in group.items():
                if key in ("axes", "done") or not isinstance(ds, h5py.Dataset):
                    continue
                data[key] = ds[()]
                dims[key] = tuple(_decode(a) for a in ds.attrs.get("axes", []))
                units[key] = _decode(ds.attrs.get("unit", ""))
            runs[name] = RunData(
                name=name,
                axes=axes,
                units=units,
                data=data,
                dims=dims,
                done=group["done"][()],
                attrs={k: _decode(v) for k, v in group.attrs.items()},
            )
    return Results(path=path, attrs=attrs, config=config, runs=runs)
