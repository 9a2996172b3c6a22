"""The midpoint noise level μ: a logistic fit of accuracy against noise (S2 §4.1, Eqs. 1–2).

S2 summarises how a network's accuracy falls with the noise level σ by the logistic

    F(σ; μ, s, δa, a_min) = 2·δa / (1 + exp((σ − μ)/s)) + a_min        (S2 Eq. 1)

with a_max = a_min + 2·δa well below μ, F(μ) = a_min + δa half way, and a_min ≈ 1/K for K
classes. μ — the midpoint noise level, or robustness — comes from the weighted least squares of
S2 Eq. 2, argmin Σ_σ ((F(σ) − y(σ)) / Δy(σ))², where y is the mean accuracy over training seeds
and Δy their spread; the fit's covariance gives the error of μ (METHODS.md §11).

Choices the paper leaves open, all options of :func:`fit_midpoint` [INFERRED]: a_min free or
fixed at 1/K; the fit in σ (Eq. 1 as written) or in log10 σ (the additive sweeps span twelve
decades); a floor on Δy; two stacked logistics for the plateau of multiplicative noise without
BatchNorm. When the accuracy does not fall to chance (multiplicative noise with BatchNorm) S2
reports a_min instead of μ; :attr:`MidpointFit.falls_to_chance` says which applies.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy.optimize import curve_fit

from analogsim.errors import ShapeError, SpecError
from analogsim.profiling.logistic import (
    X_SPACES,
    LogisticComponent,
    MidpointFit,
    XSpace,
    half_way,
    stacked_logistic,
)

logger = logging.getLogger(__name__)

#: Initial slope s of a fit in log10 σ, in decades [INFERRED; METHODS.md gives s = μ/4 for σ].
_LOG10_INITIAL_SLOPE = 0.25


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _finite_array(name: str, values: object) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        index = tuple(int(i) for i in bad[0])
        raise SpecError(
            f"The '{name}' of fit_midpoint must be finite; got {array[index]} at index {index}."
        )
    return array


def _mean_and_spread(
    sigma: np.ndarray, accuracy: np.ndarray, spread: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(y, Δy) per σ from accuracy[σ, seed], or from a mean and its spread."""
    if accuracy.ndim == 2:
        if spread is not None:
            raise SpecError(
                "fit_midpoint takes 'spread' only with a 1-D mean 'accuracy'; got a 2-D "
                "accuracy[σ, seed], whose spread it computes itself."
            )
        if accuracy.shape[0] != sigma.size:
            raise ShapeError(
                f"The 'accuracy' of fit_midpoint must have one row per σ ({sigma.size}); got "
                f"shape {accuracy.shape}."
            )
        if accuracy.shape[1] < 2:
            raise ShapeError(
                "A 2-D 'accuracy' of fit_midpoint needs ≥ 2 seeds per σ to give a spread; got "
                f"shape {accuracy.shape}. Pass the mean and 'spread=' instead."
            )
        return accuracy.mean(axis=1), accuracy.std(axis=1, ddof=1)
    if accuracy.ndim != 1 or accuracy.shape != sigma.shape:
        raise ShapeError(
            f"The 'accuracy' of fit_midpoint must be accuracy[σ, seed] of shape ({sigma.size}, "
            f"seeds) or a mean of shape {sigma.shape}; got shape {accuracy.shape}."
        )
    if spread is None:
        raise SpecError("fit_midpoint needs 'spread' (Δy per σ) with a 1-D mean 'accuracy'.")
    if spread.shape != sigma.shape:
        raise ShapeError(
            f"The 'spread' of fit_midpoint must have shape {sigma.shape}; got {spread.shape}."
        )
    if np.any(spread < 0):
        raise SpecError(f"The 'spread' of fit_midpoint must be ≥ 0; got {spread!r}.")
    return accuracy, spread


def _initial_guess(
    x: np.ndarray, y: np.ndarray, chance: float, fix_amin: bool, components: int, x_space: XSpace
) -> np.ndarray:
    """p0 of METHODS.md §11: a_min = 1/K, δa = (max y − 1/K)/2, μ = first x below half way.

    When the data never fall half way to chance (and a_min is free), a_min starts at min y.
    Two components start at the first x below the 3/4 and the 1/4 point of the drop.
    """
    a_min = chance
    if not fix_amin and y.min() > (y.max() + chance) / 2:
        a_min = float(y.min())
    drop = max(float(y.max()) - a_min, 0.0)
    span = float(x.max() - x.min())

    def first_below(level: float) -> int:
        below = np.flatnonzero(y < level)
        return int(below[0]) if below.size else x.size - 1

    def slope(mu: float) -> float:
        if x_space == "log10":
            return _LOG10_INITIAL_SLOPE
        return mu / 4 if mu > 0 else span / 4

    if components == 1:
        indices = [first_below(a_min + drop / 2)]
    else:
        upper = first_below(a_min + 3 * drop / 4)
        lower = max(first_below(a_min + drop / 4), min(upper + 1, x.size - 1))
        indices = [upper, lower]
    theta = []
    for index in indices:
        theta += [float(x[index]), slope(float(x[index])), drop / (2 * components)]
    return np.array([*theta, a_min])


def _to_sigma_units(value: float, error: float, x_space: XSpace) -> tuple[float, float]:
    """(μ, Δμ) from the fit's x space to σ units: 10^u and ln(10)·10^u·Δu for log10."""
    if x_space == "linear":
        return float(value), float(error)
    mu = 10.0 ** float(value)
    return mu, math.log(10) * mu * float(error)


def fit_midpoint(
    sigma: np.ndarray,
    accuracy: np.ndarray,
    *,
    num_classes: int,
    spread: np.ndarray | None = None,
    fix_amin: bool = False,
    x_space: XSpace = "linear",
    components: int = 1,
    dy_floor: float = 1e-3,
    n_test: int | None = None,
    chance_tolerance: float = 0.05,
) -> MidpointFit:
    """Fit S2 Eq. 1 to an accuracy-versus-noise sweep by the weighted least squares of Eq. 2.

    Runs ``scipy.optimize.curve_fit(F, x, y, sigma=Δy, absolute_sigma=True, p0, bounds)`` with
    the p0 of METHODS.md §11 and bounds s > 0 (at least 10⁻⁶ of the x range, which keeps
    (x − μ)/s finite), 0 ≤ δa ≤ 1/2, 0 ≤ a_min ≤ 1, μ free.

    Args:
        sigma: noise levels σ, 1-D, ≥ 0 (> 0 for ``x_space="log10"``), in any order.
        accuracy: accuracy as fractions in [0, 1], either accuracy[σ, seed] (y is the mean over
            seeds and Δy their sample std, ddof = 1) or the mean y per σ with ``spread``.
        num_classes: K; chance accuracy is 1/K.
        spread: Δy per σ, with a 1-D mean ``accuracy`` only.
        fix_amin: fix a_min = 1/K instead of fitting it.
        x_space: ``"linear"``: fit F in σ (Eq. 1 as written); ``"log10"``: fit F in log10 σ and
            report μ in σ units, its error propagated as ln(10)·μ·Δlog10 μ.
        components: 1, or 2 for a plateau: a_min + Σ_{j=1,2} 2δa_j / (1 + e^{(σ−μ_j)/s_j}).
        dy_floor: lower bound on Δy (a fraction, > 0), so that points where every seed agrees
            (e.g. all at chance) do not get infinite weight.
        n_test: test-set size; when given, Δy is floored at the binomial standard error
            √(y(1 − y)/n_test) of each mean accuracy y instead, itself at least ``dy_floor``.
        chance_tolerance: a fitted a_min at most this far above 1/K counts as chance (fraction).

    Returns:
        The fit, with μ, s, δa, a_min, their errors, χ² and the curve.
    """
    if x_space not in X_SPACES:
        raise SpecError(
            f"The 'x_space' of fit_midpoint must be one of {X_SPACES}; got {x_space!r}."
        )
    if not _is_int(components) or components not in (1, 2):
        raise SpecError(f"The 'components' of fit_midpoint must be 1 or 2; got {components!r}.")
    if not _is_int(num_classes) or num_classes < 2:
        raise SpecError(
            f"The 'num_classes' of fit_midpoint must be an int ≥ 2; got {num_classes!r}."
        )
    if not isinstance(fix_amin, bool):
        raise SpecError(f"The 'fix_amin' of fit_midpoint must be a bool; got {fix_amin!r}.")
    if not (isinstance(dy_floor, int | float) and math.isfinite(dy_floor) and dy_floor > 0):
        raise SpecError(f"The 'dy_floor' of fit_midpoint must be a number > 0; got {dy_floor!r}.")
    if n_test is not None and (not _is_int(n_test) or n_test < 1):
        raise SpecError(f"The 'n_test' of fit_midpoint must be None or an int ≥ 1; got {n_test!r}.")
    if not (isinstance(chance_tolerance, int | float) and 0 <= chance_tolerance <= 1):
        raise SpecError(
            "The 'chance_tolerance' of fit_midpoint must be a number in [0, 1]; "
            f"got {chance_tolerance!r}."
        )

    sigma = _finite_array("sigma", sigma)
    if sigma.ndim != 1:
        raise ShapeError(f"The 'sigma' of fit_midpoint must be 1-D; got shape {sigma.shape}.")
    if np.any(sigma < 0) or (x_space == "log10" and np.any(sigma == 0)):
        raise SpecError(
            "The 'sigma' of fit_midpoint must be ≥ 0 (> 0 for x_space='log10'); got "
            f"{sigma.min()!r} with x_space={x_space!r}."
        )
    accuracy = _finite_array("accuracy", accuracy)
    if accuracy.size and (accuracy.min() < 0 or accuracy.max() > 1):
        raise SpecError(
            "The 'accuracy' of fit_midpoint must be fractions in [0, 1]; got values in "
            f"[{accuracy.min()}, {accuracy.max()}] (percentages? divide by 100)."
        )
    y, dy = _mean_and_spread(
        sigma, accuracy, None if spread is None else _finite_array("spread", spread)
    )
    free = 3 * components + (0 if fix_amin else 1)
    distinct = np.unique(sigma).size
    if distinct <= free:
        raise SpecError(
            f"fit_midpoint needs more distinct σ points than free parameters ({free} for "
            f"components={components}, fix_amin={fix_amin}); got {distinct}."
        )

    floor = np.full_like(y, dy_floor)
    if n_test is not None:
        floor = np.maximum(np.sqrt(y * (1 - y) / n_test), dy_floor)
    dy = np.maximum(dy, floor)
    order = np.argsort(sigma, kind="stable")
    x = sigma[order] if x_space == "linear" else np.log10(sigma[order])
    y, dy = y[order], dy[order]

    chance = 1.0 / num_classes
    theta0 = _initial_guess(x, y, chance, fix_amin, components, x_space)
    s_min = 1e-6 * float(x.max() - x.min())
    lower = np.array([-np.inf, s_min, 0.0] * components + [0.0])
    upper = np.array([np.inf, np.inf, 0.5] * components + [1.0])
    theta0 = np.clip(theta0, lower, upper)
    if fix_amin:
        lower, upper, theta0 = lower[:-1], upper[:-1], theta0[:-1]

    def model(x: np.ndarray, *theta: float) -> np.ndarray:
        return stacked_logistic(x, np.array([*theta, chance] if fix_amin else theta), components)

    try:
        fitted, fitted_cov = curve_fit(
            model, x, y, p0=theta0, sigma=dy, absolute_sigma=True, bounds=(lower, upper)
        )
    except RuntimeError as error:
        raise SpecError(
            f"The midpoint fit did not converge ({error}); try x_space='log10' for sweeps over "
            "many decades, fix_amin=True, or another number of components."
        ) from error

    theta = np.append(fitted, chance) if fix_amin else np.asarray(fitted)
    covariance = np.zeros((theta.size, theta.size))
    covariance[: fitted.size, : fitted.size] = fitted_cov
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    if not np.all(np.isfinite(errors)):
        logger.warning("midpoint fit: the covariance is not finite; errors are unreliable")

    parts = []
    for j in range(components):
        mu, mu_error = _to_sigma_units(theta[3 * j], errors[3 * j], x_space)
        parts.append(
            LogisticComponent(
                mu=mu,
                mu_error=mu_error,
                s=float(theta[3 * j + 1]),
                s_error=float(errors[3 * j + 1]),
                delta_a=float(theta[3 * j + 2]),
                delta_a_error=float(errors[3 * j + 2]),
            )
        )
    x_half, x_half_error = half_way(theta, covariance, components)
    mu, mu_error = _to_sigma_units(x_half, x_half_error, x_space)
    drop_index = np.arange(2, 3 * components, 3)
    delta_a_error = math.sqrt(max(float(covariance[np.ix_(drop_index, drop_index)].sum()), 0.0))
    residual = (stacked_logistic(x, theta, components) - y) / dy
    a_min = float(theta[-1])

    fit = MidpointFit(
        mu=mu,
        mu_error=mu_error,
        s=float(theta[1]) if components == 1 else None,
        s_error=float(errors[1]) if components == 1 else None,
        delta_a=float(theta[drop_index].sum()),
        delta_a_error=delta_a_error,
        a_min=a_min,
        a_min_error=float(errors[-1]),
        falls_to_chance=a_min <= chance + chance_tolerance,
        chance=chance,
        chi2=float(residual @ residual),
        dof=sigma.size - free,
        x_space=x_space,
        fix_amin=fix_amin,
        components=tuple(sorted(parts, key=lambda part: part.mu)),
        parameters=tuple(float(value) for value in theta),
        covariance=covariance,
    )
    logger.debug(
        "midpoint fit: mu=%.4g±%.2g a_min=%.3g±%.2g chi2/dof=%.3g/%d (%s, %d component(s))",
        fit.mu,
        fit.mu_error,
        fit.a_min,
        fit.a_min_error,
        fit.chi2,
        fit.dof,
        x_space,
        components,
    )
    return fit


def nearest_half_max_sigma(sigma: np.ndarray, accuracy: np.ndarray, fit: MidpointFit) -> float:
    """The σ of the data point closest to the fit's half-way accuracy a_min + δa.

    S2 §4.1 notes μ is "roughly equivalent to the data point closest to the half-max
    threshold"; comparing the two is a sanity check of a fit.

    Args:
        sigma: noise levels σ, 1-D, as passed to :func:`fit_midpoint`.
        accuracy: accuracy[σ, seed] (averaged over seeds) or the mean accuracy per σ.
        fit: the fit of these data.

    Returns:
        That σ, in σ units.
    """
    sigma = np.asarray(sigma, dtype=float)
    mean = np.asarray(accuracy, dtype=float)
    if mean.ndim == 2:
        mean = mean.mean(axis=1)
    if sigma.ndim != 1 or mean.shape != sigma.shape:
        raise ShapeError(
            f"nearest_half_max_sigma needs one accuracy (row) per σ: got sigma shape "
            f"{sigma.shape} and accuracy shape {np.shape(accuracy)}."
        )
    return float(sigma[np.argmin(np.abs(mean - (fit.a_min + fit.delta_a)))])
