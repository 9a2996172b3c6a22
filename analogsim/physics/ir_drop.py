"""IR drop: wire resistance along the rows and columns of a crossbar lowers its output currents.

Geometry (one crossbar, one device per cell; a differential pair is two such crossbars):

- ``rows`` input lines, each driven by its DAC at one end, before the first column;
- ``cols`` output lines, each held at virtual ground by its ADC's integrator (TIA) at one
  end, after the last row;
- cell (i, j) is a conductance G_ij (siemens) between row line i and column line j;
- every wire segment between adjacent cells has resistance r (ohm), and so does the segment
  between the driver and the first cell of a row and between the last cell of a column and
  its ADC. Cell (i, j) is then j + 1 segments from its driver and rows − i segments from its
  ADC: the cell farthest from both is (0, cols − 1).

Assumptions, as CrossSim's parasitic-resistance solvers make them (sandialabs/cross-sim
``simulator/circuits/array/readme.md``): devices are linear resistors, the access transistors
ideal switches, the ADC end of a column an ideal virtual ground. Inputs are voltage amplitudes
applied at the same time (not pulse widths: aihwkit's time-domain model
``analog_mvm_irdrop_t.py`` integrates pulse-width-modulated inputs, which makes the drop
depend on the input). Under these assumptions the crossbar is a linear network: the column
currents are I = Vᵀ M for an *effective conductance matrix* M(G, r) that does not depend on
the input V. The drop therefore folds into the conductances the MVM sees, once per programmed
state, at no cost per forward.

Two ways to compute M:

- :func:`solve_crossbar` / :func:`exact_conductances`: the nodal (Kirchhoff) solve, a sparse
  linear system of 2·rows·cols node voltages (scipy's sparse LU), for checking on small
  crossbars;
- :func:`effective_conductances`: the first-order model, cheap enough for every tile of every
  layer. To first order in r the ideal cell currents G_ij V_i flow through the wires, and the
  output contribution of cell (i, j) falls by the relative drop

      δ_ij = r · (Σ_l G_il (min(j, l) + 1) + Σ_k G_kj (rows − max(i, k))),

  the first sum from the row segments the cell shares with the cells of its row, the second
  from the column segments it shares with the cells of its column (both are two cumulative
  sums over the crossbar). M = G (1 − δ) is exact to first order; the model uses the same
  first order in rational form, M = G / (1 + δ), which stays positive and is about ten times
  closer to the exact solve (docs/ir_drop.md measures both: below 0.06·δ_max² of the largest
  column current up to δ_max = 1, and about 5 % of the drop up to δ_max = 20).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

from analogsim.errors import ShapeError, UsageError


def _check_resistance(r: float) -> None:
    if not r >= 0 or not np.isfinite(r):
        raise UsageError(f"the wire segment resistance must be a finite number ≥ 0 Ω, got {r!r}")


def relative_drops(g: torch.Tensor, r: float) -> torch.Tensor:
    """The first-order relative drop δ of every cell's output contribution (see the module).

    Args:
        g: (..., rows, cols) conductances, siemens (or µS with r in MΩ: only r·G counts).
        r: resistance of one wire segment, ohm.

    Returns:
        δ, dimensionless, shaped as ``g``: r times the conductance-weighted number of wire
        segments each cell shares with the others on its way to its driver and its ADC.
    """
    _check_resistance(r)
    # row i, segment s (0 = driver side) carries the currents of cells s..cols−1: suffix sums;
    # the row voltage at cell j has fallen by r times the sum over its segments 0..j
    row = g.flip(-1).cumsum(-1).flip(-1).cumsum(-1)
    # column j, segment below row s carries the currents of rows 0..s: prefix sums; the column
    # voltage at row i has risen by r times the sum over its segments i..rows−1
    column = g.cumsum(-2).flip(-2).cumsum(-2).flip(-2)
    return (row + column).mul_(r)


def effective_conductances(g: torch.Tensor, r: float) -> torch.Tensor:
    """The conductances a crossbar's MVM sees with wire resistance r: G / (1 + δ).

    First order in r (:func:`relative_drops`), in rational form. Differentiable in g;
    vectorised over leading dimensions (instances, devices of a pair).

    Args:
        g: (..., rows, cols) conductances, siemens (or µS with r in MΩ).
        r: resistance of one wire segment, ohm; 0 gives ``g`` itself.

    Returns:
        (..., rows, cols) in the unit of ``g``: column currents are I_j = Σ_i V_i M_ij.
    """
    if r == 0:
        return g
    return g / relative_drops(g, r).add_(1.0)


# ------------------------------------------------------------------------ exact nodal solve


def _admittance(g: np.ndarray, r: float) -> scipy.sparse.csc_matrix:
    """The nodal admittance matrix (siemens) of the crossbar's 2·rows·cols free nodes: row
    nodes first (index i·cols + j), then column nodes; drivers and ADCs are fixed potentials."""
    rows, cols = g.shape
    n = rows * cols
    u = np.arange(n).reshape(rows, cols)  # row-line node at cell (i, j)
    w = u + n  # column-line node at cell (i, j)
    wire = 1.0 / r
    entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def branch(a: np.ndarray, b: np.ndarray, conductance: np.ndarray | float) -> None:
        value = np.broadcast_to(conductance, a.shape).ravel()
        a, b = a.ravel(), b.ravel()
        entries.extend([(a, a, value), (b, b, value), (a, b, -value), (b, a, -value)])

    branch(u, w, g)  # the cells
    branch(u[:, :-1], u[:, 1:], wire)  # row segments between cells
    branch(w[:-1, :], w[1:, :], wire)  # column segments between cells
    ends = np.concatenate([u[:, 0], w[-1, :]])  # segments to the driver and to the ADC
    entries.append((ends, ends, np.full(ends.shape, wire)))
    i, j, v = (np.concatenate(parts) for parts in zip(*entries, strict=True))
    return scipy.sparse.csc_matrix((v, (i, j)), shape=(2 * n, 2 * n))


def crossbar_node_voltages(g: torch.Tensor | np.ndarray, v: torch.Tensor | np.ndarray,
                           r: float) -> tuple[np.ndarray, np.ndarray]:
    """The exact node voltages of a crossbar driven by a batch of input vectors.

    Args:
        g: (rows, cols) conductances, siemens.
        v: (batch, rows) input voltages at the drivers, volts.
        r: resistance of one wire segment, ohm; > 0.

    Returns:
        (row-line voltages, column-line voltages), each (batch, rows, cols) volts, float64.
    """
    g64, v64 = _float64(g), _float64(v)
    if g64.ndim != 2 or v64.ndim != 2 or v64.shape[1] != g64.shape[0]:
        raise ShapeError(f"crossbar_node_voltages takes g (rows, cols) and v (batch, rows); "
                         f"got {g64.shape} and {v64.shape}")
    _check_resistance(r)
    if r == 0:
        raise UsageError("crossbar_node_voltages needs r > 0 (with r = 0 the row lines are at "
                         "the inputs and the columns at ground)")
    rows, cols = g64.shape
    rhs = np.zeros((2 * rows * cols, v64.shape[0]))
    rhs[np.arange(rows) * cols] = v64.T / r  # drivers through their first segment
    # a minimum-degree ordering of the symmetric pattern keeps the factor of this grid-like
    # network about half as large as the default column ordering does
    lu = scipy.sparse.linalg.splu(_admittance(g64, r), permc_spec="MMD_AT_PLUS_A")
    x = lu.solve(rhs)  # (2·rows·cols, batch)
    x = x.T.reshape(-1, 2, rows, cols)
    return x[:, 0], x[:, 1]


def solve_crossbar(g: torch.Tensor | np.ndarray, v: torch.Tensor | np.ndarray,
                   r: float) -> torch.Tensor:
    """Exact column currents of a crossbar with wire resistance (nodal solve).

    Args:
        g: (rows, cols) conductances, siemens.
        v: (batch, rows) input voltages, volts.
        r: resistance of one wire segment, ohm; 0 gives v @ g.

    Returns:
        (batch, cols) currents into the ADCs, amperes, float64.
    """
    if r == 0:
        return torch.from_numpy(_float64(v) @ _float64(g))
    _, column = crossbar_node_voltages(g, v, r)
    return torch.from_numpy(column[:, -1, :] / r)  # through the last segment to ground


def exact_conductances(g: torch.Tensor | np.ndarray, r: float) -> torch.Tensor:
    """The exact effective conductance matrix M (rows, cols), siemens, float64: column
    currents are I = Vᵀ M for every input V (one nodal solve per row)."""
    rows = _float64(g).shape[0]
    return solve_crossbar(g, np.eye(rows), r)


def _float64(a: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().to(torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)
