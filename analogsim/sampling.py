"""The sampling structure of a run's metric: which nested levels (training seed → chip
instance → noise draw) its last axis holds, as named axes.

A metric stores its replicates along its last axis. When that axis flattens several levels
(``replicate`` = seed-major seeds × draws), the run carries the attributes ``sample_axes``
(level names, outermost first) and ``sample_shape`` (their sizes), written by
:func:`sampling_attrs`; :func:`sampled` splits the last axis back into them, so that
:func:`analogsim.statistics.interval_over_units` computes the interval over the outermost
level. The stored numbers are unchanged: the split is a reshape of a C-ordered array.

Files written before these attributes existed are read by the axis name: ``seed`` is its
own level; ``instance``/``chip`` are the chips of one trained model; a guided
multi-execution run's ``models``/``repeats`` attributes give (seed, repeat); any other
``replicate`` axis is taken as independent replicates.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from analogsim.statistics import count

SAMPLE_AXES = "sample_axes"
SAMPLE_SHAPE = "sample_shape"
#: Axis names meaning the chip instances of one trained model.
CHIP_AXES = ("instance", "chip")


class _Run(Protocol):
    data: dict[str, np.ndarray]
    dims: dict[str, tuple[str, ...]]
    attrs: dict[str, Any]


def sampling_attrs(**levels: int) -> dict[str, list]:
    """Run attributes naming the levels a metric's last axis flattens, outermost first, e.g.
    ``sampling_attrs(seed=3, draw=20)`` for replicates ordered seed-major."""
    return {SAMPLE_AXES: list(levels), SAMPLE_SHAPE: [int(n) for n in levels.values()]}


def sample_levels(run: _Run, metric: str = "accuracy") -> tuple[tuple[str, ...],
                                                                 tuple[int, ...]]:
    """(names, sizes) of the sampling levels along the last axis of ``metric``."""
    last = run.dims[metric][-1] if run.dims.get(metric) else "replicate"
    size = run.data[metric].shape[-1] if run.data[metric].ndim else 1
    names = run.attrs.get(SAMPLE_AXES)
    if names is not None:
        names = tuple(str(n) for n in np.atleast_1d(names))
        shape = tuple(int(n) for n in np.atleast_1d(run.attrs[SAMPLE_SHAPE]))
        if int(np.prod(shape)) == size:
            return names, shape
    if last in CHIP_AXES:
        return ("seed", last), (1, size)
    models = int(run.attrs.get("models", 0))
    if run.attrs.get("kind") == "guided" and models >= 1 and size % models == 0:
        return ("seed", "repeat"), (models, size // models)
    return (last,), (size,)


def sampled(run: _Run, metric: str = "accuracy") -> tuple[np.ndarray, tuple[str, ...]]:
    """``metric`` with its last axis split into its sampling levels, and the names of all its
    axes: e.g. accuracy[method, sigma, replicate] → accuracy[method, sigma, seed, draw]."""
    names, shape = sample_levels(run, metric)
    values = np.asarray(run.data[metric], dtype=float)
    dims = tuple(run.dims.get(metric, ()))[:-1]
    return values.reshape(*values.shape[:-1], *shape), (*dims, *names)


def describe_levels(names: tuple[str, ...], shape: tuple[int, ...]) -> str:
    """'3 seeds × 20 draws' (before NaN points are discounted)."""
    return " × ".join(count(n, name) for name, n in zip(names, shape, strict=True))
