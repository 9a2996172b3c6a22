"""A cost budget's card, uniform and chosen designs re-measured on fresh chips."""

from __future__ import annotations

import numpy as np
import pytest
from test_budget_energy import SPEC

import analogsim as asim
from analogsim.errors import SpecError
from analogsim.experiments.budget_energy import find_energy_budget
from analogsim.experiments.budget_energy_choices import bits_knob
from analogsim.experiments.budget_energy_confirm import confirm_designs, fresh_seeds
from analogsim.experiments.run import run_spec
from analogsim.experiments.spec import load_spec
from analogsim.report import write_report
from analogsim.report.plots_pareto import plot_pareto
from analogsim.report.sections_budget_energy import pareto_points
from analogsim.statistics import t_interval
from analogsim.train.reference import trained_digits_mlp

CARD = "pcm_hermes"
SEEDS = (0, 1)
INSTANCES = 3
FRESH = 7  # seeds 2, 3 with 3 chips each and seed 4 with 1


@pytest.fixture(scope="module")
def searched():
    model, data = trained_digits_mlp(seed=0, epochs=1)
    test = (data.x_test, data.y_test)
    chip = asim.load_chip(CARD)
    budget = find_energy_budget(model, test, chip, [bits_knob(chip, "adc.bits", [4, 5, 6, 8])],
                                instances=INSTANCES, seeds=SEEDS)
    confirmation = confirm_designs(model, test, chip, budget, chips=FRESH, search_seeds=SEEDS,
                                   instances=INSTANCES)
    return model, test, budget, confirmation


@pytest.mark.parametrize(("seeds", "chips", "instances", "expected"), [
    ((0,), 4, 4, [(1, 4)]),
    ((0, 1), 7, 3, [(2, 3), (3, 3), (4, 1)]),
    ((5, 2), 2, 8, [(6, 2)]),
], ids=["one-seed", "remainder", "unordered-search-seeds"])
def test_fresh_chips_come_from_seeds_after_the_search(seeds, chips, instances, expected):
    assert fresh_seeds(seeds, chips, instances) == expected
    assert not {s for s, _ in expected} & set(seeds)


def test_the_designs_are_measured_on_the_same_fresh_chips(searched):
    model, (x, y), budget, confirmation = searched
    order = list(dict.fromkeys((0, budget.uniform, budget.chosen)))
    assert confirmation.designs == tuple(order)
    assert confirmation.seeds == ((2, 3), (3, 3), (4, 1))
    assert confirmation.accuracy.shape == (len(order), FRESH)
    assert confirmation.designs[confirmation.chosen] == budget.chosen
    # the chosen design's row is exactly its accuracy on those chips, chip by chip
    per_layer = {name: {"adc.bits": bits} for name, bits in
                 zip(budget.layers, budget.designs[budget.chosen].bits[0], strict=True)}
    analog = asim.convert(model, CARD, per_layer=per_layer)
    expected = []
    for seed, count in confirmation.seeds:
        asim.drift(asim.program(analog, seed=seed, instances=count), 86400.0)
        expected.append(asim.evaluate(analog, (x, y), batch_size=1024, seed=seed).accuracy)
    np.testing.assert_allclose(confirmation.accuracy[confirmation.chosen],
                               np.concatenate(expected))
    # and it is not the search's: other chips give other accuracies
    assert not np.array_equal(confirmation.accuracy[0],
                              budget.designs[0].accuracy[:FRESH])


def test_the_verdict_is_the_search_criterion_on_fresh_chips(searched):
    *_, budget, confirmation = searched
    card, chosen = confirmation.accuracy[confirmation.card], confirmation.accuracy[
        confirmation.chosen]
    assert confirmation.floor == pytest.approx(card.mean() - budget.tolerance)
    assert confirmation.holds == (chosen.mean() >= card.mean() - budget.tolerance)
    # the drop's CI is Student's t over the per-chip differences (paired by chip)
    mean, low, high, n = t_interval(card - chosen)
    drop = confirmation.drop(confirmation.chosen)
    assert (drop.mean, drop.low, drop.high, drop.n) == pytest.approx((mean, low, high, n))
    assert confirmation.holds_confidently == (high <= budget.tolerance)
    interval = confirmation.interval(confirmation.chosen)
    assert interval.n == FRESH and interval.unit == "chips"
    assert interval.low < chosen.mean() < interval.high


def test_a_confirmation_needs_two_chips(searched):
    model, test, budget, _ = searched
    with pytest.raises(SpecError, match=r"needs chips ≥ 2 \(a CI over chips\), got 1"):
        confirm_designs(model, test, CARD, budget, chips=1, search_seeds=SEEDS,
                        instances=INSTANCES)


def test_the_plot_draws_the_fresh_chips(searched, tmp_path):
    *_, budget, confirmation = searched
    designs = budget.designs
    summary_designs = [{"label": str(d.bits), "stage": d.stage, "energy_J": d.energy_J,
                        "accuracy": {"mean": d.mean, "low": d.mean - 0.01,
                                     "high": d.mean + 0.01},
                        "pareto": bool(p)} for d, p in zip(designs, budget.pareto, strict=True)]
    fresh = [{"index": i, "accuracy": {"mean": confirmation.interval(row).mean,
                                       "low": confirmation.interval(row).low,
                                       "high": confirmation.interval(row).high}}
             for row, i in enumerate(confirmation.designs)]
    points = pareto_points({
        "designs": summary_designs, "card_design": 0, "uniform_design": budget.uniform,
        "chosen_design": budget.chosen, "greedy_path": list(budget.path),
        "baseline_accuracy": budget.baseline, "floor": budget.floor, "ci": "test",
        "confirmation": {"designs": fresh, "ci": "fresh"}})
    assert list(points.fresh) == list(confirmation.designs)
    assert plot_pareto(points, tmp_path / "p.png", "t").stat().st_size > 1000


def test_a_spec_without_confirmation_says_so(tmp_path):
    spec_path = tmp_path / "none.toml"
    spec_path.write_text(SPEC.replace('choose = ["adc.bits", "dac.bits"]', 'choose = ["adc.bits"]')
                         .replace('bits = { "adc.bits" = [4, 5, 6, 8], "dac.bits" = [6, 8] }',
                                  "bits = [6, 8]")
                         .replace("seeds = [0]", "seeds = [0]\nconfirm_chips = 0"))
    spec = load_spec(spec_path)
    assert spec.confirm_chips == 0
    results = asim.load_results(run_spec(spec, tmp_path / "none.h5"))
    run = results.runs["budget_energy"]
    assert "confirm_accuracy" not in run.data and "confirm_seeds" not in run.attrs
    page = write_report(results.path, tmp_path / "report").read_text()
    assert "Not re-measured on fresh chips (confirm_chips = 0)" in page
