"""Runs on a card with [cost] record asim.cost's numbers beside their accuracy, and the report
shows them; runs on a card without [cost] write and show nothing new."""

from __future__ import annotations

import html

import numpy as np
import pytest
import torch
from torch import nn

import analogsim as asim
from analogsim.cost import PARTS, si
from analogsim.experiments.cost_record import unpriceable
from analogsim.experiments.run import run_spec
from analogsim.experiments.spec import load_spec
from analogsim.experiments.trained_models import load_data
from analogsim.report import write_report
from analogsim.train.reference import trained_digits_mlp

SWEEP = """
[experiment]
name = "digits_cost_sweep"
kind = "sweep"

[data]
dataset = "digits"

[model]
name = "mlp"
options = {{ in_features = 64, hidden = [64, 64], num_classes = 10 }}
checkpoint = "{checkpoint}"

[chip]
card = "{card}"

[sweep]
instances = 2
times_s = [1]

[[sweep.axes]]
field = "adc.bits"
values = [6, 8, "none"]
"""

METHODS = """
[experiment]
name = "digits_cost_methods"
kind = "methods"
[data]
dataset = "digits"
[model]
name = "mlp"
[training]
epochs = 1
seeds = [0, 1]
[[methods]]
kind = "standard"
[evaluation]
attack_sigmas = [0.0]
attack_draws = 1
chip = "{card}"
chip_times_s = [1.0]
chip_instances = 2
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model, _ = trained_digits_mlp(seed=0, epochs=2)
    path = tmp_path_factory.mktemp("weights") / "digits_mlp.pt"
    torch.save(model.state_dict(), path)
    return model, path


def run_and_report(text: str, tmp_path) -> tuple[asim.Results, str, object]:
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(text)
    spec = load_spec(spec_path)
    results_path = run_spec(spec, tmp_path / "run.h5")
    page = write_report(results_path, tmp_path / "report").read_text(encoding="utf-8")
    return asim.load_results(results_path), page, spec


def test_a_sweep_on_a_card_with_cost_records_and_reports_what_asim_cost_gives(trained, tmp_path):
    model, checkpoint = trained
    results, page, spec = run_and_report(SWEEP.format(checkpoint=checkpoint, card="pcm_hermes"),
                                         tmp_path)
    run = results.runs["sweep_cost"]
    example = load_data(spec.setup).x_test[:1]
    expected = asim.cost(asim.convert(model, "pcm_hermes"), example)
    assert run.attrs["kind"] == "cost" and run.attrs["source_run"] == "sweep"
    assert list(run.axes["model"]) == ["seed 0"] and run.done.all()
    assert list(run.axes["layer"]) == [x.name for x in expected.layers] == ["1", "3", "5"]
    assert list(run.axes["part"]) == list(PARTS[:4])
    assert run.dims["energy_J"] == ("model", "layer", "part")
    for i, layer in enumerate(expected.layers):
        np.testing.assert_allclose(run.data["energy_J"][0, i],
                                   [layer.energy_parts[p] for p in PARTS[:4]], rtol=1e-12)
        assert run.data["mvms"][0, i] == layer.mvms and run.data["tiles"][0, i] == 1
        assert run.data["latency_s"][0, i] == pytest.approx(layer.latency_s, rel=1e-12)
        assert run.data["area_um2"][0, i] == pytest.approx(layer.tile.area_um2, rel=1e-12)
    totals = {"energy_total_J": expected.energy_J, "latency_total_s": expected.latency_s,
              "area_total_um2": expected.area_um2, "tops_per_watt": expected.tops_per_watt,
              "tops": expected.tops, "digital_macs_J": 0.0}
    for key, value in totals.items():
        assert run.data[key][0] == pytest.approx(value, rel=1e-12), key
    assert list(run.attrs["layer_card"]) == ["pcm_hermes"] * 3
    # every grid point on its cards; the ideal ADC ("none") cannot be priced
    assert run.dims["grid_energy_J"] == ("model", "adc.bits")
    six = asim.cost(asim.convert(model, asim.load_chip("pcm_hermes", adc_bits=6)), example)
    np.testing.assert_allclose(run.data["grid_energy_J"][0, :2],
                               [six.energy_J, expected.energy_J], rtol=1e-12)
    assert run.data["grid_tops_per_watt"][0, 0] == pytest.approx(six.tops_per_watt, rel=1e-12)
    assert np.isnan(run.data["grid_energy_J"][0, 2])
    # the page: the sweep's section holds the table, with asim.cost's numbers
    section = page.split('<h2 id="sweep"')[1].split("<h2")[0]
    assert "Cost per inference" in section and "<h2 id=\"sweep_cost\"" not in page
    text = html.unescape(section)
    assert (f"Per inference (one trained model): {si(expected.energy_J, 'J')}, latency "
            f"{si(expected.latency_s, 's')}, area {expected.area_um2 / 1e6:.3g} mm²; "
            f"{expected.tops_per_watt:.3g} TOPS/W, {expected.tops:.3g} TOPS.") in text
    for layer in expected.layers:
        share = 100 * layer.energy_parts["adc"] / layer.energy_J
        row = (f"<td>{layer.name}</td><td>AnalogLinear</td><td>pcm_hermes</td>"
               f"<td>{layer.mvms:,}</td><td>1</td><td>{layer.tile.devices:,}</td>"
               f"<td>{si(layer.energy_J, 'J')}</td>")
        assert row in text and f"{share:.1f} %" in text
    assert "pcm_hermes as the spec gives it, before the grid changes it" in text
    assert (f"<tr><td>6</td><td>{si(six.energy_J, 'J')}</td>"
            f"<td>{si(six.latency_s, 's')}</td><td>{six.tops_per_watt:.3g}</td></tr>") in text
    assert "<tr><td>none</td><td>—</td><td>—</td><td>—</td></tr>" in text


def test_a_sweep_on_a_card_without_cost_writes_and_shows_nothing_new(trained, tmp_path):
    _, checkpoint = trained
    results, page, _ = run_and_report(SWEEP.format(checkpoint=checkpoint, card="pcm"), tmp_path)
    assert set(results.runs) == {"sweep"}
    assert "cost" not in results.runs["sweep"].attrs
    assert "Cost per inference" not in page and "asim.cost" not in page


def test_a_methods_run_prices_each_method_and_seed(tmp_path):
    results, page, _ = run_and_report(METHODS.format(card="pcm_hermes"), tmp_path)
    run = results.runs["chip_cost"]
    assert list(run.axes["model"]) == ["standard seed 0", "standard seed 1"] and run.done.all()
    assert run.attrs["source_run"] == "chip"
    energies = run.data["energy_total_J"]
    assert np.isfinite(energies).all() and energies[0] != energies[1]  # their own weights
    # everything but the array reads is the same for both models
    np.testing.assert_array_equal(run.data["energy_J"][0, :, 1:], run.data["energy_J"][1, :, 1:])
    section = html.unescape(page.split('<h2 id="chip"')[1].split("<h2")[0])
    assert "Per inference (mean over 2 trained models)" in section
    assert f"<td>standard seed 1</td><td>{si(energies[1], 'J')}</td>" in section
    assert si(float(energies.mean()), "J") in section
    assert "Cost per inference" not in page.split('<h2 id="attack"')[1].split("<h2")[0]


def test_a_model_the_card_cannot_price_is_named() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert unpriceable(asim.convert(model, "pcm_hermes")) is None
    mixed = asim.convert(model, "pcm_hermes", per_layer={"2": "pcm"})
    assert unpriceable(mixed) == "layer '2' is on card 'pcm', which has no [cost] section"
    ideal = asim.convert(model, asim.load_chip("pcm_hermes", **{"adc.bits": None}))
    assert "layer '0' is on card 'pcm_hermes' with an ideal ADC" in unpriceable(ideal)


BUDGET = """
[experiment]
name = "digits_cost_budget"
kind = "budget"
[data]
dataset = "digits"
[model]
name = "mlp"
options = {{ in_features = 64, hidden = [64, 64], num_classes = 10 }}
checkpoint = "{checkpoint}"
[chip]
card = "pcm_hermes"
[budget]
instances = 2
seeds = [0]
knobs = ["programming.scale"]
grids = {{ "programming.scale" = [1, 4] }}
"""


def test_a_noise_budget_on_a_card_with_cost_shows_its_models_cost(trained, tmp_path):
    model, checkpoint = trained
    results, page, spec = run_and_report(BUDGET.format(checkpoint=checkpoint), tmp_path)
    run = results.runs["budget_cost"]
    expected = asim.cost(asim.convert(model, "pcm_hermes"), load_data(spec.setup).x_test[:1])
    assert run.attrs["source_run"] == "budget" and "grid_energy_J" not in run.data
    assert run.data["energy_total_J"][0] == pytest.approx(expected.energy_J, rel=1e-12)
    section = html.unescape(page.split('<h2 id="budget"')[1].split("<h2")[0])
    assert f"Per inference (one trained model): {si(expected.energy_J, 'J')}" in section


def test_a_card_that_cannot_price_leaves_the_cost_out_and_says_why(trained, tmp_path):
    _, checkpoint = trained
    card = tmp_path / "hermes_ideal_adc.toml"  # [cost], but an ideal ADC: no FOM · 2^bits
    card.write_text(asim.load_chip("pcm_hermes", adc_bits=None).to_toml())
    results, page, _ = run_and_report(SWEEP.format(checkpoint=checkpoint, card=card), tmp_path)
    assert set(results.runs) == {"sweep"}
    reason = ("not priced: layer '1' is on card 'pcm_hermes' with an ideal ADC (adc.bits "
              "absent), which cost.adc_fom_J · 2^adc.bits cannot price")
    assert results.runs["sweep"].attrs["cost"] == reason
    assert f"Cost: {reason}." in html.unescape(page)
