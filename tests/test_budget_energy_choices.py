"""Cost budgets choosing the tile size and redundancy of the whole model beside the bits."""

from __future__ import annotations

import re

import numpy as np
import pytest

import analogsim as asim
from analogsim.errors import SpecError
from analogsim.experiments.budget_energy import find_energy_budget
from analogsim.experiments.budget_energy_choices import (
    bits_knob,
    design_chips,
    model_knob,
    settings,
)
from analogsim.experiments.run import run_spec
from analogsim.experiments.spec import load_spec
from analogsim.report import write_report
from analogsim.statistics import paired_difference
from analogsim.train.reference import trained_digits_mlp

SEEDS = (0, 1)
INSTANCES = 8  # 16 chips: the paired CIs below exclude 0 by several half-widths


@pytest.fixture(scope="module")
def digits_mlp():
    model, data = trained_digits_mlp(seed=0, epochs=1)
    return model, (data.x_test, data.y_test)


def _pair(budget):
    """The card design and the other setting's start: the same bits, another setting (with
    one bits value, the budget measures these two designs only)."""
    assert [d.stage for d in budget.designs] == ["card", "setting"]
    card, other = budget.designs
    assert card.bits == other.bits and card.setting != other.setting
    return card, other


def test_larger_tiles_cost_less_and_at_few_adc_bits_lose_less(digits_mlp):
    """64-input layers on 16-row tiles are 4 row chunks, each with its own ADC conversion per
    output: 4 × the ADC and digital energy of one 64-row tile, and 4 quantised partial sums,
    whose error at 5 ADC bits costs accuracy. 64-row tiles hold each layer in one chunk."""
    model, test = digits_mlp
    chip = asim.load_chip("pcm_hermes", **{"mapping.tile_rows": 16, "adc.bits": 5})
    budget = find_energy_budget(
        model, test, chip, [bits_knob(chip, "adc.bits", [5]),  # the card's bits only
                            model_knob(chip, "mapping.tile_rows", [64])],
        tolerance_pp=1.0, instances=INSTANCES, seeds=SEEDS)
    small, large = _pair(budget)
    assert (small.setting, large.setting) == ((16,), (64,))
    assert large.energy_J < small.energy_J
    gain = paired_difference(large.accuracy, small.accuracy, ("chip",))
    assert gain.low > 0, gain.describe()
    # the search keeps the cheaper, more accurate tiles
    assert budget.designs[budget.chosen].setting == (64,)
    assert budget.model_knobs[0].name == "mapping.tile_rows"


def test_redundancy_costs_more_and_averages_the_noise_away(digits_mlp):
    """r_small = 4 cells per weight: 4 × the devices read (array energy); their reads
    averaged, the noise std falls by √4. Programming noise 8 × the card's, so that the
    device noise, which redundancy averages, dominates the ADC's (at the card's, the gain is
    about 0.5 pp, within 16 chips' noise)."""
    model, test = digits_mlp
    chip = asim.load_chip("pcm_hermes", **{"coding.scheme": "redundancy", "coding.r_small": 1,
                                           "coding.r_large": 8, "programming.scale": 8.0})
    budget = find_energy_budget(
        model, test, chip, [bits_knob(chip, "adc.bits", [8]),  # the card's bits only
                            model_knob(chip, "coding.r_small", [4])],
        tolerance_pp=1.0, instances=INSTANCES, seeds=SEEDS)
    one, four = _pair(budget)
    assert (one.setting, four.setting) == ((1,), (4,))
    assert four.energy_J > one.energy_J
    gain = paired_difference(four.accuracy, one.accuracy, ("chip",))
    assert gain.low > 0, gain.describe()


def test_settings_enumerate_the_card_first_and_skip_invalid_redundancy():
    chip = asim.load_chip("pcm_hermes", **{"coding.scheme": "redundancy", "coding.r_small": 1,
                                           "coding.r_large": 4})
    knobs = [model_knob(chip, "coding.r_small", [2, 1]), model_knob(chip, "coding.r_large",
                                                                    [1, 2])]
    assert [k.grid for k in knobs] == [(1.0, 2.0), (4.0, 1.0, 2.0)]
    assert settings(chip, knobs) == [(1, 4), (1, 1), (1, 2), (2, 4), (2, 2)]
    only_small = [model_knob(chip, "coding.r_small", [8])]  # card r_large 4 < 8: no card
    assert settings(chip, only_small) == [(1,)]
    base = {"fc": chip}
    (chosen,) = design_chips(base, [bits_knob(chip, "adc.bits")], ((5,),), knobs,
                             (2, 2)).values()
    assert (chosen.adc.bits, chosen.coding.r_small, chosen.coding.r_large) == (5, 2, 2)


SPEC = """
[experiment]
name = "digits_energy_tiles"
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
overrides = { "mapping.tile_rows" = 32 }

[budget]
objective = "energy"
choose = ["adc.bits", "mapping.tile_rows"]
bits = [4, 5, 6, 8]
values = { "mapping.tile_rows" = [64] }
instances = 4
seeds = [0]
confirm_chips = 3
"""


def test_a_spec_choosing_the_tile_size_runs_to_its_report(tmp_path):
    spec_path = tmp_path / "tiles.toml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    assert [k.name for k in spec.knobs] == ["adc.bits", "mapping.tile_rows"]
    assert spec.knobs[1].grid == (32.0, 64.0) and spec.confirm_chips == 3
    results = asim.load_results(run_spec(spec, tmp_path / "tiles.h5"))
    run = results.runs["budget_energy"]
    designs = len(run.axes["design"])
    assert list(run.axes["model_knob"]) == ["mapping.tile_rows"]
    setting = run.data["setting"][:, 0]
    assert setting.shape == (designs,) and set(setting) == {32, 64}
    assert run.data["bits"].shape == (designs, 1, 3)
    chosen = run.attrs["chosen_design"]
    labels = [str(x) for x in run.axes["design"]]
    assert re.fullmatch(r"adc\.bits \d-\d-\d; mapping\.tile_rows (32|64)", labels[chosen])
    # at equal bits, the 64-row tiles cost less than the 32-row ones
    bits = run.data["bits"][:, 0]
    for n in np.flatnonzero(setting == 64):
        same = np.flatnonzero((setting == 32) & (bits == bits[n]).all(axis=1))
        assert all(run.data["energy_J"][n] < run.data["energy_J"][m] for m in same)
    assert run.data["confirm_accuracy"].shape[1] == 3
    page = write_report(results.path, tmp_path / "report").read_text()
    assert "model-wide mapping.tile_rows" in page and "Re-measured on 3 fresh chips" in page
    assert (tmp_path / "report" / "budget_energy.png").stat().st_size > 1000


@pytest.mark.parametrize(("old", "new", "message"), [
    ('values = { "mapping.tile_rows" = [64] }', "",
     r"choose names the model-wide knob 'mapping.tile_rows'; give the values to try in "
     r"values, e.g. values = \{ \"mapping.tile_rows\" = \[32, \.\.\.\] \}"),
    ('values = { "mapping.tile_rows" = [64] }', 'values = { "mapping.tile_rows" = [0, 64] }',
     r"values.mapping.tile_rows: the values must be a non-empty list of integers from 1 to "
     r"1048576 \(rows\); got \[0, 64\]"),
    ('values = { "mapping.tile_rows" = [64] }', 'values = { "mapping.tile_rows" = 64 }',
     r"values.mapping.tile_rows: the values must be a non-empty list .*; got 64"),
    ('values = { "mapping.tile_rows" = [64] }', 'values = [64]',
     r"values must be a table model-wide knob → list of integers .*got \[64\]"),
    ('values = { "mapping.tile_rows" = [64] }',
     'values = { "mapping.tile_rows" = [64], "mapping.tile_cols" = [64] }',
     r"values names 'mapping.tile_cols', which is not among the model-wide knobs of choose "
     r"\['mapping.tile_rows'\]"),
    ('values = { "mapping.tile_rows" = [64] }',
     'values = { "mapping.tile_rows" = [64], "adc.bits" = [4] }',
     r"values names 'adc.bits', .* \(give a per-layer knob's values in bits\)"),
    ('bits = [4, 5, 6, 8]', 'bits = { "mapping.tile_rows" = [64] }',
     r"bits names 'mapping.tile_rows', .* \(give a model-wide knob's values in values\)"),
    ('choose = ["adc.bits", "mapping.tile_rows"]', 'choose = ["mapping.tile_rows"]',
     r"choose \['mapping.tile_rows'\] names no per-layer knob; a cost budget chooses at "
     r"least one of \['adc.bits', 'dac.bits'\] per layer"),
    ('choose = ["adc.bits", "mapping.tile_rows"]', 'choose = ["adc.bits", "coding.r_large"]',
     r"values.coding.r_large: card 'pcm_hermes' has coding.scheme = 'none', without the "
     r"redundancy part"),
    ("confirm_chips = 3", "confirm_chips = 1",
     r"confirm_chips must be 0 \(no confirmation on fresh chips\) or an integer ≥ 2 \(a CI "
     r"over chips needs two\), got 1"),
    ("confirm_chips = 3", "confirm_chips = -2", r"confirm_chips must be 0 .*got -2"),
    ("confirm_chips = 3", "confirm_chips = 2.5", r"confirm_chips must be 0 .*got 2.5"),
], ids=["values-missing", "values-zero", "values-not-list", "values-not-table",
        "values-not-chosen", "values-per-layer", "bits-model-wide", "model-wide-only",
        "redundancy-without-coding", "confirm-one", "confirm-negative", "confirm-float"])
def test_bad_choices_are_refused_at_load(tmp_path, old, new, message):
    spec_path = tmp_path / "bad.toml"
    bad = SPEC.replace(old, new)
    if "coding.r_large" in new:
        bad = bad.replace('values = { "mapping.tile_rows" = [64] }',
                          'values = { "coding.r_large" = [4] }')
    spec_path.write_text(bad)
    with pytest.raises(SpecError, match=message):
        load_spec(spec_path)
