"""Guided multi-execution: repetition allocation and its rounding (METHODS.md §12)."""

import numpy as np
import pytest

from analogsim.errors import SpecError
from analogsim.profiling.guided import allocate_repetitions, uniform_repetitions

# `layer_repetition_*_inverse_lin_scaling` lists of UniHD-CEG/walking-noise (commit ec1a086),
# experiment_configs/multi_run_layers/LeNet5_CIFAR10_multi_run_inf.yaml, by budget n_t / L.
# The 2L lists are the guided lists of S2 Table 3. S2 does not publish the midpoints μ_i behind
# them; 1/μ_i ∝ n_i(20L) serves as the proxy weight (METHODS.md §12).
LENET5_BN_CIFAR10 = {
    2: [3, 2, 3, 3, 3, 1, 3, 4, 2, 1, 1, 2, 1, 1, 1, 1],
    5: [9, 5, 7, 8, 8, 3, 7, 11, 4, 1, 4, 5, 2, 2, 3, 1],
    20: [35, 21, 29, 32, 30, 12, 29, 45, 16, 4, 15, 21, 8, 8, 11, 4],
}
LENET5_CIFAR10 = {
    2: [4, 3, 4, 3, 1, 3, 1, 1, 1, 1, 1, 1],
    3: [6, 5, 7, 5, 2, 4, 2, 1, 1, 1, 1, 1],
    5: [11, 9, 12, 8, 4, 8, 3, 1, 1, 1, 1, 1],
    20: [45, 36, 46, 33, 15, 32, 13, 3, 5, 3, 4, 5],
}
PUBLISHED = [
    (name, lists, factor)
    for name, lists in [("LeNet5-BN", LENET5_BN_CIFAR10), ("LeNet5", LENET5_CIFAR10)]
    for factor in lists
]


@pytest.mark.parametrize(
    ("lists", "factor"),
    [(lists, factor) for _, lists, factor in PUBLISHED],
    ids=[f"{name}-{factor}L" for name, _, factor in PUBLISHED],
)
def test_reproduces_published_lists(lists: dict[int, list[int]], factor: int) -> None:
    proxy_midpoints = 1.0 / np.array(lists[20], dtype=float)
    num_ops = len(proxy_midpoints)
    assert allocate_repetitions(proxy_midpoints, factor * num_ops) == lists[factor]


def test_table3_guided_lists_use_the_uniform_budget() -> None:
    # S2 Table 3 compares each guided list with {2, 2, 2, …}: the same total n_t = 2L.
    for lists in (LENET5_BN_CIFAR10, LENET5_CIFAR10):
        assert sum(lists[2]) == sum(uniform_repetitions(len(lists[2])))


def test_uniform_repetitions() -> None:
    assert uniform_repetitions(3) == [2, 2, 2]
    assert uniform_repetitions(2, per_op=5) == [5, 5]


def test_smaller_midpoint_gets_more_repetitions() -> None:
    assert allocate_repetitions([1.0, 2.0, 4.0], 7) == [4, 2, 1]


def test_random_inputs_conserve_sum_and_floor() -> None:
    rng = np.random.default_rng(20240611)
    for _ in range(500):
        num_ops = int(rng.integers(1, 20))
        # Midpoints over twelve decades, as walking noise finds them; budgets from L to 20L.
        midpoints = 10.0 ** rng.uniform(-2, 10, num_ops)
        total = int(rng.integers(num_ops, 20 * num_ops + 1))
        counts = allocate_repetitions(midpoints, total)
        shares = total * (1 / midpoints) / np.sum(1 / midpoints)
        assert sum(counts) == total
        assert min(counts) >= 1
        assert all(isinstance(count, int) for count in counts)
        # No entry gets more than its exact share rounded up, unless the floor lifts it ...
        assert np.all((np.array(counts) <= np.ceil(shares)) | (np.array(counts) == 1))
        # ... and a more sensitive operator (smaller μ) never gets fewer repetitions.
        by_share = np.argsort(shares, kind="stable")
        assert np.all(np.diff(np.array(counts)[by_share]) >= 0)


def test_floor_overshoot_is_taken_back_over_several_passes() -> None:
    # Shares (3.7, 0.1, 0.1, 0.1): step 1 gives (3, 1, 1, 1), two over budget, and only the
    # first entry is above the floor, so it gives up both units.
    assert allocate_repetitions([1.0, 37.0, 37.0, 37.0], 4) == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("midpoints", "total", "match"),
    [
        ([1.0, 2.0, 3.0], 2, r"'total'.*≥ the number of operators \(3\).*got 2"),
        ([1.0, -2.0], 4, r"'midpoints'.*> 0; got -2.0 at index 1"),
        ([1.0, float("nan")], 4, r"'midpoints'.*finite"),
        ([], 4, r"'midpoints'.*non-empty"),
        ([1.0, 2.0], 4.0, r"'total'.*int"),
    ],
    ids=["total-below-ops", "negative-midpoint", "nan-midpoint", "empty", "float-total"],
)
def test_invalid_arguments(midpoints: list[float], total: int, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        allocate_repetitions(midpoints, total)


def test_uniform_invalid_arguments() -> None:
    with pytest.raises(SpecError, match=r"'num_ops'.*got 0"):
        uniform_repetitions(0)
    with pytest.raises(SpecError, match=r"'per_op'.*got 0"):
        uniform_repetitions(3, per_op=0)
