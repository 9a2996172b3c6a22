"""The midpoint fit of S2 Eqs. 1–2 on synthetic sweeps with known parameters (METHODS.md §11)."""

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize import brentq

from analogsim.errors import ShapeError, SpecError
from analogsim.profiling.logistic import logistic
from analogsim.profiling.midpoint import fit_midpoint, nearest_half_max_sigma

# The global additive sweep of S2: σ ∈ logspace(1e−2, 1e2, 17) (METHODS.md §10).
SIGMA = np.logspace(-2, 2, 17)
SEEDS = 10
ACCURACY_NOISE = 0.01  # 1 % accuracy noise per seed


def sweep(sigma: np.ndarray, truth: np.ndarray, seeds: int = SEEDS, seed: int = 0) -> np.ndarray:
    """accuracy[σ, seed]: the true curve plus N(0, 1 %) per seed, from a seeded Generator."""
    rng = np.random.default_rng(seed)
    noisy = truth[:, None] + ACCURACY_NOISE * rng.standard_normal((sigma.size, seeds))
    return np.clip(noisy, 0.0, 1.0)


def test_acceptance_mu_within_005() -> None:
    # METHODS.md §11 acceptance check: true μ = 1.6 → fitted μ within 0.05.
    truth = logistic(SIGMA, mu=1.6, s=0.4, delta_a=0.25, a_min=0.1)
    fit = fit_midpoint(SIGMA, sweep(SIGMA, truth), num_classes=10)
    assert abs(fit.mu - 1.6) < 0.05
    assert 0 < fit.mu_error < 0.1
    assert fit.mu_error == pytest.approx(math.sqrt(fit.covariance[0, 0]))
    assert fit.s == pytest.approx(0.4, abs=0.1)
    assert fit.delta_a == pytest.approx(0.25, abs=0.01)
    assert fit.a_min == pytest.approx(0.1, abs=0.01)
    assert fit.falls_to_chance
    assert fit.dof == SIGMA.size - 4
    assert fit.x_space == "linear"
    assert fit.curve(SIGMA) == pytest.approx(truth, abs=0.01)


@pytest.mark.parametrize("seed", range(5), ids=lambda seed: f"seed{seed}")
def test_acceptance_holds_over_noise_draws(seed: int) -> None:
    truth = logistic(SIGMA, mu=1.6, s=0.4, delta_a=0.25, a_min=0.1)
    fit = fit_midpoint(SIGMA, sweep(SIGMA, truth, seed=seed), num_classes=10)
    assert abs(fit.mu - 1.6) < 0.05


def test_nearest_data_point_agrees_with_mu() -> None:
    # S2 §4.1: μ is "roughly equivalent to the data point closest to the half-max threshold".
    truth = logistic(SIGMA, mu=1.6, s=0.4, delta_a=0.25, a_min=0.1)
    accuracy = sweep(SIGMA, truth)
    fit = fit_midpoint(SIGMA, accuracy, num_classes=10)
    nearest = nearest_half_max_sigma(SIGMA, accuracy, fit)
    assert nearest in SIGMA
    step = SIGMA[1] / SIGMA[0]  # one grid step, a factor 10^0.25
    assert 1 / step <= nearest / fit.mu <= step


def test_log10_space_recovers_mu_and_propagates_error() -> None:
    # Twelve decades, as in the layer-wise additive sweeps: a logistic in log10 σ.
    sigma = np.logspace(-2, 10, 49)
    truth = logistic(np.log10(sigma), mu=math.log10(1.6), s=0.3, delta_a=0.25, a_min=0.1)
    fit = fit_midpoint(sigma, sweep(sigma, truth, seeds=5), num_classes=10, x_space="log10")
    assert fit.x_space == "log10"
    assert abs(fit.mu - 1.6) < 0.05
    log_mu_error = math.sqrt(fit.covariance[0, 0])
    assert fit.mu_error == pytest.approx(math.log(10) * fit.mu * log_mu_error)
    assert fit.s == pytest.approx(0.3, abs=0.05)  # in decades
    assert fit.curve(sigma) == pytest.approx(truth, abs=0.01)
    assert fit.curve(0.0) == pytest.approx(fit.a_min + 2 * fit.delta_a)


def test_fix_amin_pins_chance() -> None:
    truth = logistic(SIGMA, mu=1.6, s=0.4, delta_a=0.4, a_min=1 / 12)  # GSC, 12 classes
    fit = fit_midpoint(SIGMA, sweep(SIGMA, truth), num_classes=12, fix_amin=True)
    assert fit.fix_amin
    assert fit.a_min == 1 / 12
    assert fit.a_min_error == 0
    assert fit.dof == SIGMA.size - 3
    assert abs(fit.mu - 1.6) < 0.05
    assert fit.falls_to_chance


def test_two_components_recover_a_plateau() -> None:
    # Multiplicative noise without BN: a drop to a plateau, then to chance (σ ∈ linspace(0, 3, 31)).
    sigma = np.linspace(0, 3, 31)
    truth = logistic(sigma, 0.5, 0.08, 0.15, 0.0) + logistic(sigma, 1.8, 0.12, 0.10, 0.1)
    fit = fit_midpoint(sigma, sweep(sigma, truth, seeds=5), num_classes=10, components=2)
    first, second = fit.components
    assert first.mu == pytest.approx(0.5, abs=0.05)
    assert second.mu == pytest.approx(1.8, abs=0.05)
    assert first.delta_a == pytest.approx(0.15, abs=0.02)
    assert second.delta_a == pytest.approx(0.10, abs=0.02)
    assert fit.s is None and fit.s_error is None
    assert fit.delta_a == pytest.approx(first.delta_a + second.delta_a)
    # The overall μ is where the summed curve is half way down.
    assert fit.curve(fit.mu) == pytest.approx(fit.a_min + fit.delta_a)


def test_two_component_mu_error_matches_numerical_delta_method() -> None:
    sigma = np.linspace(0, 3, 31)
    truth = logistic(sigma, 0.5, 0.08, 0.15, 0.0) + logistic(sigma, 1.8, 0.12, 0.10, 0.1)
    fit = fit_midpoint(sigma, sweep(sigma, truth, seeds=5), num_classes=10, components=2)
    theta = np.array(fit.parameters)

    def half_way(params: np.ndarray) -> float:
        drop = params[2] + params[5]
        half = params[-1] + drop

        def shifted(x: float) -> float:
            return float(replace(fit, parameters=tuple(params)).curve(x)) - half

        return brentq(shifted, -5, 10, xtol=1e-14)

    step = 1e-6
    jacobian = np.array(
        [
            (half_way(theta + step * unit) - half_way(theta - step * unit)) / (2 * step)
            for unit in np.eye(theta.size)
        ]
    )
    assert fit.mu_error == pytest.approx(math.sqrt(jacobian @ fit.covariance @ jacobian), rel=1e-4)


def test_amin_is_the_quantity_when_accuracy_does_not_fall_to_chance() -> None:
    # Multiplicative noise with BN (S2 Fig. 3): accuracy levels off far above 1/K.
    sigma = np.linspace(0, 2, 21)
    truth = logistic(sigma, mu=0.7, s=0.15, delta_a=0.06, a_min=0.5)
    fit = fit_midpoint(sigma, sweep(sigma, truth, seeds=5), num_classes=10)
    assert not fit.falls_to_chance
    assert fit.a_min == pytest.approx(0.5, abs=0.02)
    assert fit.a_min_error < 0.02


def test_zero_spread_is_floored() -> None:
    # Every seed identical (e.g. all at chance): Δy = 0 must not give infinite weights.
    truth = logistic(SIGMA, mu=1.6, s=0.4, delta_a=0.25, a_min=0.1)
    identical = np.repeat(truth[:, None], 3, axis=1)
    fit = fit_midpoint(SIGMA, identical, num_classes=10)
    assert fit.mu == pytest.approx(1.6, abs=1e-6)
    assert math.isfinite(fit.mu_error) and fit.mu_error > 0
    # The binomial floor √(p(1−p)/N) at N = 10,000 is ≥ 3e-3 here, above the 1e-3 default.
    binomial = fit_midpoint(SIGMA, identical, num_classes=10, n_test=10_000)
    assert binomial.mu == pytest.approx(1.6, abs=1e-6)
    assert binomial.mu_error > 2 * fit.mu_error


def test_mean_and_spread_input_matches_seed_array() -> None:
    truth = logistic(SIGMA, mu=1.6, s=0.4, delta_a=0.25, a_min=0.1)
    accuracy = sweep(SIGMA, truth)
    from_seeds = fit_midpoint(SIGMA, accuracy, num_classes=10)
    from_mean = fit_midpoint(
        SIGMA, accuracy.mean(axis=1), spread=accuracy.std(axis=1, ddof=1), num_classes=10
    )
    assert from_mean.mu == pytest.approx(from_seeds.mu)
    assert from_mean.mu_error == pytest.approx(from_seeds.mu_error)


def test_unsorted_sigma_gives_the_same_fit() -> None:
    truth = logistic(SIGMA, mu=1.6, s=0.4, delta_a=0.25, a_min=0.1)
    accuracy = sweep(SIGMA, truth)
    order = np.random.default_rng(1).permutation(SIGMA.size)
    shuffled = fit_midpoint(SIGMA[order], accuracy[order], num_classes=10)
    assert shuffled.mu == pytest.approx(fit_midpoint(SIGMA, accuracy, num_classes=10).mu)


GOOD = logistic(SIGMA, mu=1.6, s=0.4, delta_a=0.25, a_min=0.1)


@pytest.mark.parametrize(
    ("sigma", "accuracy", "options", "error", "match"),
    [
        (SIGMA, np.ones((16, 3)) / 2, {}, ShapeError, r"one row per σ \(17\); got shape \(16, 3\)"),
        (SIGMA, GOOD[:, None], {}, ShapeError, r"≥ 2 seeds"),
        (SIGMA, GOOD, {}, SpecError, r"needs 'spread'"),
        (SIGMA, GOOD, {"spread": np.ones(5)}, ShapeError, r"'spread'.*shape \(17,\)"),
        (SIGMA[:4], np.ones((4, 3)) / 2, {}, SpecError, r"more distinct σ points.*\(4 .*got 4"),
        (SIGMA[:6], np.ones((6, 3)) / 2, {"components": 2}, SpecError, r"\(7 for components=2"),
        (SIGMA, 100 * np.ones((17, 3)), {}, SpecError, r"fractions in \[0, 1\].*percentages"),
        (SIGMA, np.ones((17, 3)) / 2, {"x_space": "log"}, SpecError, r"'x_space'.*got 'log'"),
        (np.linspace(0, 2, 17), np.ones((17, 3)) / 2, {"x_space": "log10"}, SpecError, r"> 0"),
        (SIGMA, np.ones((17, 3)) / 2, {"components": 3}, SpecError, r"'components'.*got 3"),
        (SIGMA, np.ones((17, 3)) / 2, {"num_classes": 1}, SpecError, r"'num_classes'.*got 1"),
        (SIGMA, np.ones((17, 3)) / 2, {"dy_floor": 0.0}, SpecError, r"'dy_floor'.*> 0"),
        (SIGMA, np.full((17, 3), np.nan), {}, SpecError, r"'accuracy'.*finite"),
    ],
    ids=[
        "rows-mismatch",
        "one-seed",
        "mean-without-spread",
        "spread-shape",
        "too-few-points",
        "too-few-points-two-components",
        "percent",
        "bad-x-space",
        "log10-zero-sigma",
        "bad-components",
        "one-class",
        "zero-floor",
        "nan",
    ],
)
def test_invalid_inputs(
    sigma: np.ndarray, accuracy: np.ndarray, options: dict, error: type, match: str
) -> None:
    options = {"num_classes": 10, **options}
    with pytest.raises(error, match=match):
        fit_midpoint(sigma, accuracy, **options)
