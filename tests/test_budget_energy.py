"""Cost budgets: per-layer bits of least energy within a tolerance, their spec, results,
report and docs."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

import analogsim as asim
from analogsim.errors import CardError, SpecError
from analogsim.experiments.budget_energy import EnergyBudget, find_energy_budget, pareto_front
from analogsim.experiments.budget_energy_choices import bits_knob
from analogsim.experiments.run import run_spec
from analogsim.experiments.spec import load_spec
from analogsim.report import write_report
from analogsim.train.reference import trained_digits_mlp

ROOT = Path(__file__).resolve().parents[1]
CARD = "pcm_hermes"
SEEDS = (0, 1)
INSTANCES = 4


@pytest.fixture(scope="module")
def digits_mlp():
    model, data = trained_digits_mlp(seed=0, epochs=1)
    return model, (data.x_test, data.y_test)


@pytest.fixture(scope="module")
def budget(digits_mlp) -> EnergyBudget:
    model, test = digits_mlp
    chip = asim.load_chip(CARD)
    return find_energy_budget(model, test, chip, [bits_knob(chip, "adc.bits", [3, 4, 5, 6, 8])],
                              tolerance_pp=1.0, instances=INSTANCES, seeds=SEEDS)


def test_the_chosen_design_holds_at_no_more_energy_than_the_uniform_baseline(budget):
    designs = budget.designs
    chosen, uniform, card = designs[budget.chosen], designs[budget.uniform], designs[0]
    assert card.stage == "card" and card.bits == ((8, 8, 8),)
    assert chosen.energy_J <= uniform.energy_J < card.energy_J
    assert budget.saving == pytest.approx(1 - chosen.energy_J / uniform.energy_J)
    # within the tolerance on the chips it was measured on (the mean over seeds × instances)
    assert chosen.accuracy.shape == (len(SEEDS) * INSTANCES,)
    assert chosen.holds and chosen.mean >= budget.baseline - budget.tolerance
    assert budget.baseline == card.mean
    holding = [d.energy_J for d in designs if d.holds]
    assert chosen.energy_J == min(holding)
    # the uniform baseline is the fewest common bits that hold: one grid step fewer fails
    common = uniform.bits[0][0]
    assert set(uniform.bits[0]) == {common} and uniform.holds
    fewer = [g for g in budget.knobs[0].grid if g < common]
    if fewer:
        step = next(d for d in designs if d.bits[0] == (max(fewer),) * len(budget.layers))
        assert step.stage == "uniform" and not step.holds
    assert len({d.bits for d in designs}) == len(designs)  # each design measured once
    assert budget.path[0] == 0 and all(designs[i].holds for i in budget.path)


def test_each_layer_alone_is_lowered_to_its_minimum(budget):
    floor = budget.baseline - budget.tolerance
    for j, layer in enumerate(budget.layers):
        alone = {d.bits[0][j]: d for d in budget.designs
                 if d.stage == "alone" and sum(b != 8 for b in d.bits[0]) == 1
                 and d.bits[0][j] != 8}
        minimum = int(budget.minimum[0, j])
        assert all(alone[b].mean >= floor for b in alone if b >= minimum), layer
        below = [b for b in alone if b < minimum]
        assert len(below) <= 1 and all(alone[b].mean < floor for b in below), layer


def test_design_energies_and_accuracies_are_those_of_the_converted_model(budget, digits_mlp):
    model, (x, y) = digits_mlp
    for index in {budget.chosen, budget.uniform, 1}:
        design = budget.designs[index]
        per_layer = {name: {"adc.bits": bits} for name, bits in zip(budget.layers,
                                                                    design.bits[0],
                                                                    strict=True)}
        analog = asim.convert(model, CARD, per_layer=per_layer)
        report = asim.cost(analog, x[:1])
        assert design.energy_J == pytest.approx(report.energy_J, rel=1e-12)
        assert design.layer_energy_J == pytest.approx([r.energy_J for r in report.layers],
                                                      rel=1e-12)
        accuracy = []
        for seed in SEEDS:
            asim.drift(asim.program(analog, seed=seed, instances=INSTANCES), 86400.0)
            accuracy.append(asim.evaluate(analog, (x, y), batch_size=1024, seed=seed).accuracy)
        np.testing.assert_allclose(design.accuracy, np.concatenate(accuracy))


def test_the_api_refuses_a_card_without_cost(digits_mlp):
    model, test = digits_mlp
    pcm = asim.load_chip("pcm")
    with pytest.raises(CardError, match=r"card 'pcm' has no \[cost\] section"):
        find_energy_budget(model, test, pcm, [bits_knob(pcm, "adc.bits")])


@pytest.mark.parametrize(("energy", "accuracy", "front"), [
    ([1, 2, 2, 3, 0.5, 1], [0.9, 0.95, 0.93, 0.95, 0.5, 0.9],
     [True, True, False, False, True, True]),  # equal points both stay; ties dominate
    ([1, 2, 3], [0.7, 0.8, 0.9], [True, True, True]),  # a trade-off: all on the front
    ([1, 2, 3], [0.9, 0.8, 0.7], [True, False, False]),  # one design dominates the rest
], ids=["ties", "trade-off", "one-dominates"])
def test_the_pareto_front_keeps_exactly_the_undominated_designs(energy, accuracy, front):
    assert pareto_front(energy, accuracy).tolist() == front


SPEC = """
[experiment]
name = "digits_energy"
kind = "budget"

[data]
dataset = "digits"

[model]
name = "mlp"
options = { in_features = 64, hidden = [64, 64], num_classes = 10 }

[training]
epochs = 1
batch_size = 64
optimizer = "adam"
learning_rate = 0.01
weight_decay = 0.0

[chip]
card = "pcm_hermes"

[budget]
objective = "energy"
choose = ["adc.bits", "dac.bits"]
bits = { "adc.bits" = [4, 5, 6, 8], "dac.bits" = [6, 8] }
instances = 4
seeds = [0]
"""


def test_the_spec_runs_and_its_report_draws_the_pareto_plot(tmp_path):
    spec_path = tmp_path / "energy.toml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    assert spec.objective == "energy" and [k.grid for k in spec.knobs] == [(8, 6, 5, 4), (8, 6)]
    results = asim.load_results(run_spec(spec, tmp_path / "energy.h5"))
    run = results.runs["budget_energy"]
    designs = len(run.axes["design"])
    assert run.data["bits"].shape == (designs, 2, 3) and run.data["accuracy"].shape == (
        designs, 4)
    chosen, uniform = run.attrs["chosen_design"], run.attrs["uniform_design"]
    assert run.data["energy_J"][chosen] <= run.data["energy_J"][uniform]
    # pulse-width inputs: fewer DAC bits shorten the read, so their steps are tried
    assert (run.data["bits"][:, 1] < 8).any()
    assert "dac.bits: no step of it saves energy" not in str(run.attrs["notes"])
    # re-measured on fresh chips: by default as many as the search's (1 seed × 4), seed 1
    assert run.data["confirm_accuracy"].shape == (len(run.axes["confirmed"]), 4)
    assert list(run.attrs["confirm_seeds"]) == [1] and run.attrs["confirm_chips"] == 4
    assert run.attrs["confirm_designs"][0] == 0
    assert run.attrs["confirm_designs"][-1] == chosen
    page = write_report(results.path, tmp_path / "report").read_text()
    assert "Chosen design adc.bits" in page and "below the uniform baseline" in page
    assert "Re-measured on 4 fresh chips (program seed 1" in page
    assert "accuracy, fresh chips [95 % CI]" in page
    figure = tmp_path / "report" / "budget_energy.png"
    assert figure.name in re.findall(r'<img src="([^"]+)"', page)
    assert figure.stat().st_size > 1000


@pytest.mark.parametrize(("old", "new", "message"), [
    ('card = "pcm_hermes"', 'card = "pcm"',
     r"prices every design from the card's \[cost\] section, and card 'pcm' has none"),
    ('objective = "energy"', 'objective = "power"',
     r"objective must be one of \['energy'\].*got 'power'"),
    ('choose = ["adc.bits", "dac.bits"]', 'choose = ["read_noise.scale"]',
     r"choose must be a non-empty list of distinct knobs among \['adc.bits', 'dac.bits', "
     r"'mapping.tile_rows', 'mapping.tile_cols', 'coding.r_small', 'coding.r_large'\], got "
     r"\['read_noise.scale'\]"),
    ('choose = ["adc.bits", "dac.bits"]', "choose = []", r"choose must be a non-empty list"),
    ('"adc.bits" = [4, 5, 6, 8]', '"adc.bits" = [4, 9]',
     r"adc.bits: the values must be integers from 1 to card 'pcm_hermes''s adc.bits = 8"),
    ('"adc.bits" = [4, 5, 6, 8]', '"adc.bits" = [4.5]', r"bits of adc.bits must be a list of "
     "integers, got \\[4.5\\]"),
    ('bits = { "adc.bits" = [4, 5, 6, 8], "dac.bits" = [6, 8] }', 'bits = "six"',
     r"bits must be a list of integers or a table knob → list, got 'six'"),
    ('choose = ["adc.bits", "dac.bits"]', 'choose = ["adc.bits"]',
     r"bits names 'dac.bits', which is not among the per-layer knobs of choose "
     r"\['adc.bits'\]"),
    ("seeds = [0]", 'seeds = [0]\nknobs = ["adc.bits"]', r"knobs belongs to a noise budget"),
], ids=["no-cost", "objective", "choice", "no-choice", "bits-above-card", "float-bits",
        "bits-type", "bits-not-chosen", "noise-keys"])
def test_bad_cost_budget_specs_are_refused_at_load(tmp_path, old, new, message):
    spec_path = tmp_path / "bad.toml"
    spec_path.write_text(SPEC.replace(old, new))
    with pytest.raises(SpecError, match=message):
        load_spec(spec_path)


def load_example_script():
    path = ROOT / "benchmarks" / "budget_energy_example.py"
    spec = importlib.util.spec_from_file_location("budget_energy_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_section_is_the_render_of_its_committed_json():
    script = load_example_script()
    data = json.loads(script.RESULTS.read_text(encoding="utf-8"))
    assert script.SECTION.read_text(encoding="utf-8") == script.render_section(data), (
        "benchmarks/results/budget_energy_digits.section.md is stale: run python "
        "benchmarks/budget_energy_example.py --docs-only, then benchmarks/cost_example.py "
        "--docs-only")
    assert script.render_section(data) in (ROOT / "docs" / "cost.md").read_text("utf-8")
    assert script.FIGURE.stat().st_size > 1000
    # the claim: per-layer bits within 1 pp at less energy than uniform bits
    designs = data["designs"]
    chosen, uniform = designs[data["chosen_design"]], designs[data["uniform_design"]]
    assert chosen["holds"] and chosen["drop_pp"]["mean"] <= data["tolerance_pp"]
    assert chosen["energy_J"] < uniform["energy_J"] and data["saving"] > 0
    assert data["spec"] == "benchmarks/reproduce/budget_energy_digits.toml"
    assert (ROOT / data["spec"]).is_file()
