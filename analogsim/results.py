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

from analogsim.errors import ResultsFileError

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


class ResultsWriter:
    """Writes one results file; the only writer of it. Use as a context manager.

    Args:
        path: the .h5 file; parent folders are created.
        command: the command line (or call) that produced the results.
    """

    def __init__(self, path: str | Path, command: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = h5py.File(self.path, "w", locking=False)  # one writer; readers may watch
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
        self.file.require_group("config")
        self.file.require_group("runs")
        self.file.flush()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.file.id.valid:
            self.file.attrs["finished"] = _now()
            self.file.close()

    def add_config(self, name: str, toml_text: str) -> None:
        """Store the exact TOML of a card or spec under /config/<name>."""
        group = self.file["config"]
        if name in group:
            del group[name]
        group.create_dataset(name, data=toml_text, dtype=h5py.string_dtype())
        self.file.flush()

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
                raise ValueError(f"metric {metric!r} spans unknown axis {unknown[0]!r}; the run's "
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


def load_results(path: str | Path) -> Results:
    """Read an analogsim results file into numpy arrays and plain Python values.

    Raises:
        ResultsFileError: missing, unreadable (truncated/corrupt), not an analogsim file, or of
            a format version this analogsim does not read.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsFileError(f"results file {str(path)!r} does not exist")
    try:
        handle = h5py.File(path, "r", locking=False)  # readable while a run writes it
    except OSError as error:
        raise ResultsFileError(
            f"{path} is not a readable HDF5 file (truncated or corrupt?): {error}"
        ) from None
    with handle:
        attrs = {k: _decode(v) for k, v in handle.attrs.items()}
        if attrs.get("format") != FORMAT:
            raise ResultsFileError(
                f"{path} is an HDF5 file but not an analogsim results file "
                f"(root attribute format={attrs.get('format')!r}, expected {FORMAT!r})"
            )
        version = attrs.get("format_version")
        if version != FORMAT_VERSION:
            raise ResultsFileError(
                f"{path} has results format version {version!r}; this analogsim reads version "
                f"{FORMAT_VERSION}"
            )
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
