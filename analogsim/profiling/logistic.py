"""The logistic of S2 Eq. 1, F(σ) = 2·δa / (1 + exp((σ − μ)/s)) + a_min, a sum of such terms,
and what a fit of it returns (:class:`MidpointFit`, fitted by
:func:`~analogsim.profiling.midpoint.fit_midpoint`; METHODS.md §11).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from analogsim.errors import SpecError

XSpace = Literal["linear", "log10"]
X_SPACES: tuple[XSpace, ...] = ("linear", "log10")


def logistic(
    sigma: np.ndarray | float, mu: float, s: float, delta_a: float, a_min: float
) -> np.ndarray:
    """S2 Eq. 1: F(σ) = 2·δa / (1 + exp((σ − μ)/s)) + a_min.

    Args:
        sigma: noise levels σ (any shape), in the unit of μ and s.
        mu: midpoint μ, where F = a_min + δa.
        s: slope scale, > 0, in the unit of σ.
        delta_a: half the drop, (a_max − a_min)/2, as a fraction.
        a_min: accuracy at large σ, as a fraction.

    Returns:
        F(σ), accuracy as a fraction, the shape of ``sigma``.
    """
    with np.errstate(over="ignore"):  # exp saturates to 0 or 1 far from μ, as intended
        return 2.0 * delta_a * expit(-(np.asarray(sigma, dtype=float) - mu) / s) + a_min


def stacked_logistic(x: np.ndarray, theta: np.ndarray, components: int) -> np.ndarray:
    """a_min + Σ_j 2·δa_j / (1 + exp((x − μ_j)/s_j)); θ = (μ_1, s_1, δa_1, …, a_min)."""
    total = np.full(np.shape(x), theta[3 * components], dtype=float)
    for j in range(components):
        mu, s, delta_a = theta[3 * j : 3 * j + 3]
        total += logistic(x, mu, s, delta_a, 0.0)
    return total


def half_way(theta: np.ndarray, covariance: np.ndarray, components: int) -> tuple[float, float]:
    """x½ where the curve is half way down, and its error, in the fit's x space.

    x½ solves G(x, θ) = F(x; θ) − a_min − Σδa_j = 0; by the implicit-function theorem
    dx½/dθ = −(∂G/∂θ)/(∂F/∂x), and Var x½ = J Cov Jᵀ (delta method).
    """
    if components == 1:
        return float(theta[0]), math.sqrt(max(float(covariance[0, 0]), 0.0))
    mus, slopes, drops = theta[0:-1:3], theta[1:-1:3], theta[2:-1:3]
    if drops.sum() <= 0:
        raise SpecError(
            "The fitted curve has no drop (δa = 0 for both components), so it has no midpoint; "
            "use components=1 or a wider σ range."
        )
    reach = 40 * slopes.max()
    x_half = brentq(
        lambda x: stacked_logistic(np.array(x), theta, components) - theta[-1] - drops.sum(),
        mus.min() - reach,
        mus.max() + reach,
    )
    z = (x_half - mus) / slopes
    g = expit(-z)
    bell = 2 * drops * g * (1 - g) / slopes  # −∂F_j/∂x
    d_g = np.zeros_like(theta)  # ∂G/∂θ
    d_g[0:-1:3] = bell
    d_g[1:-1:3] = bell * z
    d_g[2:-1:3] = 2 * g - 1
    jacobian = d_g / bell.sum()
    return float(x_half), math.sqrt(max(float(jacobian @ covariance @ jacobian), 0.0))


@dataclass(frozen=True)
class LogisticComponent:
    """One logistic term 2·δa / (1 + exp((σ − μ)/s)) of a fit, with 1-σ errors.

    Attributes:
        mu: its midpoint, in σ units (for a log10 fit, 10 to the fitted log10 μ).
        mu_error: error of ``mu``, in σ units (propagated from log10 for a log10 fit).
        s: slope scale in the fit's x space: σ units, or decades for a log10 fit.
        s_error: error of ``s``, same unit.
        delta_a: half its drop in accuracy, as a fraction.
        delta_a_error: error of ``delta_a``.
    """

    mu: float
    mu_error: float
    s: float
    s_error: float
    delta_a: float
    delta_a_error: float


@dataclass(frozen=True)
class MidpointFit:
    """Result of :func:`fit_midpoint`. Errors are 1-σ, from the fit covariance.

    Attributes:
        mu: midpoint noise level μ in σ units: where the fitted curve is half way between
            a_max and a_min. For one component this is the fitted μ; for two, the half-way point
            of their sum, with its error from the implicit-function (delta) method.
        mu_error: error of ``mu`` (σ units; √Cov[μ, μ] for a linear one-component fit).
        s: the slope scale (σ units, or decades for a log10 fit); None for two components,
            whose slopes are in ``components``.
        s_error: error of ``s``; None for two components.
        delta_a: (a_max − a_min)/2, summed over components, as a fraction.
        delta_a_error: error of ``delta_a``.
        a_min: accuracy at large noise, as a fraction.
        a_min_error: error of ``a_min``; 0 when it was fixed.
        falls_to_chance: whether a_min is within ``chance_tolerance`` of 1/K. When False, S2
            (§5, Fig. 3) reports a_min rather than μ as the robustness of the layer.
        chance: 1/K.
        chi2: Σ ((F − y)/Δy)² at the optimum, with the floored Δy.
        dof: degrees of freedom, the number of σ points minus free parameters.
        x_space: ``"linear"`` (fit in σ) or ``"log10"`` (fit in log10 σ).
        fix_amin: whether a_min was fixed at 1/K.
        components: the logistic terms, by increasing μ.
        parameters: θ = (μ_1, s_1, δa_1, …, a_min) in the fit's x space.
        covariance: Cov(θ), zero in the a_min row and column when a_min was fixed.
    """

    mu: float
    mu_error: float
    s: float | None
    s_error: float | None
    delta_a: float
    delta_a_error: float
    a_min: float
    a_min_error: float
    falls_to_chance: bool
    chance: float
    chi2: float
    dof: int
    x_space: XSpace
    fix_amin: bool
    components: tuple[LogisticComponent, ...]
    parameters: tuple[float, ...]
    covariance: np.ndarray = field(repr=False, compare=False)

    def curve(self, sigma: np.ndarray | float) -> np.ndarray:
        """The fitted accuracy (fraction) at noise levels ``sigma`` (σ units, ≥ 0)."""
        sigma = np.asarray(sigma, dtype=float)
        if self.x_space == "log10":
            with np.errstate(divide="ignore"):  # σ = 0 maps to −∞, where F = a_max
                sigma = np.log10(sigma)
        return stacked_logistic(sigma, np.asarray(self.parameters), len(self.components))
