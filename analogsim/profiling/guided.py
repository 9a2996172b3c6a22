"""Guided multi-execution: repetitions per noise operator from walking-noise midpoints (S2 §8).

Executing noise operator i n_i times on the same activation and averaging the results cuts its
noise std by 1/√n_i (METHODS.md §12; :class:`~analogsim.profiling.noise_operator.NoiseOperator`
does the averaging, :func:`~analogsim.profiling.noise_operator.set_repetitions` applies a
list). The baseline spends the budget n_t = 2·L uniformly over the L operators; the guided
allocation gives more repetitions to the layers that walking noise found most sensitive (small
midpoint μ_i):

    n_i* = n_t · (1/μ_i) / Σ_j (1/μ_j),

rounded to natural numbers that still sum to n_t (:func:`allocate_repetitions`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from analogsim.errors import SpecError

logger = logging.getLogger(__name__)


def uniform_repetitions(num_ops: int, per_op: int = 2) -> list[int]:
    """The baseline of S2 Table 3: every noise operator executed ``per_op`` times.

    Args:
        num_ops: number of noise operators L.
        per_op: repetitions of each operator (S2 uses 2).

    Returns:
        ``[per_op] * num_ops``, summing to the budget n_t = per_op · L.
    """
    if isinstance(num_ops, bool) or not isinstance(num_ops, int) or num_ops < 1:
        raise SpecError(
            f"The 'num_ops' of uniform_repetitions must be an int ≥ 1; got {num_ops!r}."
        )
    if isinstance(per_op, bool) or not isinstance(per_op, int) or per_op < 1:
        raise SpecError(f"The 'per_op' of uniform_repetitions must be an int ≥ 1; got {per_op!r}.")
    return [per_op] * num_ops


def allocate_repetitions(midpoints: Sequence[float] | np.ndarray, total: int) -> list[int]:
    """Split a repetition budget over noise operators in inverse proportion to their midpoints.

    The real-valued shares n_i* = total · (1/μ_i) / Σ_j (1/μ_j) (S2 §8) are rounded by
    largest remainders (Hamilton) with a floor of 1, as in METHODS.md §12 [INFERRED; it
    reproduces the published S2 Table 3 lists]:

    1. n_i = max(1, ⌊n_i*⌋);
    2. the units still missing go, one each, to the largest fractional parts n_i* − ⌊n_i*⌋
       among the entries that step 1 did not raise to 1;
    3. if step 1 overshot the budget, units are taken, one each, from the smallest fractional
       parts among the entries above 1 (cycling again if one pass is not enough).

    Ties keep the operator order. The result sums to ``total`` and every entry is ≥ 1.

    Args:
        midpoints: per-operator midpoint noise levels μ_i (same unit for all, e.g. the σ of
            the walking-noise sweep), all finite and > 0.
        total: the budget n_t, an int ≥ len(midpoints) (e.g. 2·L to match the uniform baseline).

    Returns:
        Repetitions n_i per operator, in the order of ``midpoints``.
    """
    mu = np.asarray(midpoints, dtype=float)
    if mu.ndim != 1 or mu.size == 0:
        raise SpecError(
            "The 'midpoints' of allocate_repetitions must be a non-empty 1-D sequence; "
            f"got shape {mu.shape}."
        )
    bad = np.flatnonzero(~np.isfinite(mu) | (mu <= 0))
    if bad.size:
        raise SpecError(
            "The 'midpoints' of allocate_repetitions must be finite and > 0; "
            f"got {float(mu[bad[0]])!r} at index {int(bad[0])}."
        )
    if isinstance(total, bool) or not isinstance(total, int | np.integer) or total < mu.size:
        raise SpecError(
            f"The 'total' of allocate_repetitions must be an int ≥ the number of operators "
            f"({mu.size}) so that each runs at least once; got {total!r}."
        )

    weights = 1.0 / mu
    shares = total * weights / weights.sum()  # n_i*
    floors = np.floor(shares).astype(int)
    remainders = shares - floors
    raised = floors < 1
    counts = np.maximum(floors, 1)

    missing = total - int(counts.sum())
    if missing > 0:
        # Step 2. The remainders of the unraised entries sum to at least `missing` and each is
        # < 1, so one pass over them always suffices.
        candidates = np.flatnonzero(~raised)
        order = candidates[np.argsort(-remainders[candidates], kind="stable")]
        counts[order[:missing]] += 1
    elif missing < 0:
        # Step 3. total ≥ number of operators guarantees enough units above the floor.
        excess = -missing
        while excess:
            candidates = np.flatnonzero(counts > 1)
            order = candidates[np.argsort(remainders[candidates], kind="stable")]
            take = order[:excess]
            counts[take] -= 1
            excess -= take.size

    allocation = [int(count) for count in counts]
    logger.debug(
        "allocate_repetitions: total=%d, shares=%s -> %s",
        total,
        np.array2string(shares, precision=3),
        allocation,
    )
    return allocation
