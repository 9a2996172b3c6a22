"""asim.cost and the card's [cost] section: each formula against a hand calculation, the
accounting (MVM counts, coding, digital layers), the errors, and the HERMES-like card."""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import analogsim as asim
from analogsim.cards import chip_from_toml
from analogsim.errors import CardError, DigitalRemainderWarning
from analogsim.physics import energy

# A card of round numbers: tiles of 4 rows × 3 columns, 4-bit converters, g_max = 10 µS.
COST = {"source": "round numbers for hand calculations", "read_voltage_V": 0.5,
        "read_time_s": 1e-6, "dac_energy_J": 1e-12, "adc_fom_J": 1e-14,
        "adc_conversion_time_s": 1e-8, "columns_per_adc": 2, "cell_area_um2": 2.0,
        "adc_area_um2": 50.0, "digital_energy_per_output_J": 3e-12,
        "digital_mac_energy_J": 5e-13}
G_MAX_US = 10.0
V, T_READ, T_CONV = 0.5, 1e-6, 1e-8


def hand_card(**changes):
    settings = {"g_max_uS": G_MAX_US, "mapping.tile_rows": 4, "mapping.tile_cols": 3,
                "adc.bits": 4, **{f"cost.{k}": v for k, v in COST.items()}, **changes}
    return asim.load_chip("ideal", **settings)


def hand_weight() -> torch.Tensor:
    """(5, 6) weights of magnitude 1 or 0.5, every tile (rows 0–3 | 4–5, outputs 0–2 | 3–4)
    holding a magnitude 1, so each tile's max|W| = 1 maps to g_max."""
    i, j = torch.meshgrid(torch.arange(5), torch.arange(6), indexing="ij")
    w = torch.where((i + j) % 3 == 0, 1.0, 0.5) * (-1.0) ** (i + j)
    for rows in (slice(0, 4), slice(4, 6)):
        for outs in (slice(0, 3), slice(3, 5)):
            assert w[outs, rows].abs().max() == 1.0
    return w


def linear(card, weight: torch.Tensor | None = None) -> nn.Module:
    weight = hand_weight() if weight is None else weight
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(weight)
    return asim.convert(nn.Sequential(layer), card)


# ------------------------------------------------------------------------ the formulas


def test_each_formula_against_a_hand_calculation():
    assert energy.cell_read_energy(10.0, 0.2, 100e-9) == pytest.approx(10e-6 * 0.04 * 100e-9)
    assert energy.adc_conversion_energy(1e-15, 8) == pytest.approx(256e-15)
    assert energy.adcs_per_tile(256, 3) == 86 and energy.adcs_per_tile(256, 1) == 256
    assert energy.conversion_rounds(100, 86) == 2 and energy.conversion_rounds(86, 86) == 1
    assert energy.tile_mvm_time(1e-7, 2, 5e-9) == pytest.approx(1.1e-7)
    assert energy.tile_area(4, 3, 2, 1.5, 2, 10.0) == pytest.approx(4 * 3 * 2 * 1.5 + 2 * 10)


def test_one_input_vector_of_a_layer_against_a_hand_calculation():
    w = hand_weight()
    layer = asim.cost(linear(hand_card()), torch.randn(1, 6)).layers[0]
    tile = layer.tile
    conductance_uS = G_MAX_US * float(w.abs().sum())  # one device of a pair at |w|·g_max
    assert (tile.tiles, tile.devices, tile.extra_devices, tile.adcs) == (4, 60, 0, 8)
    assert tile.conductance_uS == pytest.approx(conductance_uS)
    assert tile.array_J == pytest.approx(conductance_uS * 1e-6 * V**2 * T_READ)
    assert tile.dac_J == pytest.approx(6 * 2 * 1e-12)  # 6 rows into 2 column groups
    assert tile.adc_J == pytest.approx(5 * 2 * 1e-14 * 2**4)  # 5 outputs of 2 row chunks
    assert tile.digital_J == pytest.approx(5 * 2 * 3e-12)
    # ⌈3/2⌉ = 2 ADCs a tile; the 3-column group converts in 2 rounds, the 2-column one in 1
    assert tile.mvm_time_s == pytest.approx(T_READ + 2 * T_CONV)
    assert tile.area_um2 == pytest.approx(4 * (4 * 3 * 2 * 2.0 + 2 * 50.0))


# ------------------------------------------------------------------------ the accounting


def test_mvm_counts_of_a_linear_on_sequences_and_of_a_conv2d():
    sequence = asim.cost(linear(hand_card()), torch.randn(2, 3, 6)).layers[0]
    assert (sequence.mvms, sequence.macs) == (2 * 3, 2 * 3 * 30)  # (B, T, in): B·T vectors
    card = hand_card(**{"mapping.tile_rows": 32})
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 4, 3, groups=2))
    conv, grouped = asim.cost(asim.convert(model, card), torch.randn(2, 2, 5, 4)).layers
    assert (conv.mvms, conv.macs) == (2 * 5 * 4, 2 * 5 * 4 * 4 * 18)  # batch × positions
    # one MVM per group per position (an upper bound); MACs: 4 outputs × 2·9 rows each
    assert (grouped.mvms, grouped.macs) == (2 * 2 * 3 * 2, 2 * 3 * 2 * 4 * 18)


def test_a_layer_costs_its_mvms_times_one_vector_and_the_totals_add_up():
    report = asim.cost(linear(hand_card()), torch.randn(2, 3, 6))
    layer = report.layers[0]
    per_vector = layer.tile
    assert report.energy_J == pytest.approx(6 * per_vector.energy_J)
    assert report.latency_s == pytest.approx(6 * per_vector.mvm_time_s)
    assert report.area_um2 == pytest.approx(per_vector.area_um2)
    assert sum(report.shares.values()) == pytest.approx(1.0)
    assert report.shares["array"] == pytest.approx(per_vector.array_J / per_vector.energy_J)
    assert report.tops_per_watt == pytest.approx(2 * 180 / report.energy_J / 1e12)
    assert report.tops == pytest.approx(2 * 180 / report.latency_s / 1e12)
    text = str(report)
    assert "TOPS/W" in text and "MVMs/tile" in text


@pytest.mark.parametrize("copies", [1, 3], ids=["r=1", "r=3"])
def test_redundancy_multiplies_devices_and_reads(copies):
    base = asim.cost(linear(hand_card()), torch.randn(1, 6)).layers[0].tile
    coded = hand_card(**{"coding.scheme": "redundancy", "coding.r_small": copies,
                         "coding.r_large": copies, "coding.large_fraction": 0.0})
    tile = asim.cost(linear(coded), torch.randn(1, 6)).layers[0].tile
    side_bits = 30  # the small/large bit of every weight, all 0 (no large weight): at g_min
    assert tile.devices == copies * base.devices + side_bits
    assert tile.extra_devices == tile.devices - base.devices
    assert tile.array_J == pytest.approx(copies * base.array_J)
    assert tile.area_um2 == pytest.approx(base.area_um2 + tile.extra_devices * 2.0)
    assert (tile.adc_J, tile.dac_J) == (base.adc_J, base.dac_J)  # copies share the columns


def test_large_weights_take_their_extra_copies_and_side_bits_read_at_g_max():
    w = hand_weight()
    large = int((w.abs() == 1).sum())
    coded = hand_card(**{"coding.scheme": "sign+redundancy", "coding.r_small": 1,
                         "coding.r_large": 4, "coding.threshold": 0.75})
    tile = asim.cost(linear(coded), torch.randn(1, 6)).layers[0].tile
    cells = 30 + 3 * large
    negative = int((w < 0).sum())
    assert tile.devices == 2 * cells + 2 * 30  # a pair per cell; sign and small/large bits
    # sign coding stores x = 2|w|/m − 1: |x| = 1 for |w| = 1 and 0 for |w| = 0.5
    cells_uS = G_MAX_US * (4 * large)
    assert tile.conductance_uS == pytest.approx(cells_uS + G_MAX_US * (negative + large))


def test_programmed_targets_cost_the_same_as_the_weights_targets():
    model = linear(hand_card())
    before = asim.cost(model, torch.randn(1, 6)).layers[0].tile
    asim.program(model, seed=0, instances=2)
    after = asim.cost(model, torch.randn(1, 6)).layers[0].tile
    assert after == before


def test_excluded_layers_cost_digital_macs_at_the_stated_energy():
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DigitalRemainderWarning)
        analog = asim.convert(model, hand_card(), exclude=["2"])
    report = asim.cost(analog, torch.randn(2, 3, 6))
    (digital,) = report.digital
    assert (digital.name, digital.kind, digital.macs) == ("2", "Linear", 2 * 3 * 15)
    assert digital.energy_J == pytest.approx(90 * 5e-13)
    assert report.energy_parts["digital_macs"] == pytest.approx(90 * 5e-13)
    assert report.macs == 180 + 90
    assert report.tops_per_watt == pytest.approx(2 * 270 / report.energy_J / 1e12)


# ------------------------------------------------------------------------ errors, and no cost


def test_a_card_without_cost_is_refused_by_cost_and_unchanged_elsewhere():
    chip = asim.load_chip("pcm")
    assert chip.cost is None and "[cost]" not in chip.to_toml()
    assert chip_from_toml(chip.to_toml()) == chip
    model = linear("pcm")
    with pytest.raises(CardError, match=r"card 'pcm' has no \[cost\] section, so layer '0' "
                                        r"cannot be priced"):
        asim.cost(model, torch.randn(1, 6))
    summary = asim.summary(model)
    assert summary.rows[0].cost is None and "energy/vector" not in str(summary)


def test_summary_shows_the_cost_columns_of_a_card_with_cost():
    summary = asim.summary(linear(hand_card()))
    assert "energy/vector" in str(summary) and "mm²" in str(summary)
    assert summary.rows[0].cost.energy_J == pytest.approx(
        asim.cost(linear(hand_card()), torch.randn(1, 6)).layers[0].tile.energy_J)


def test_an_ideal_adc_cannot_be_priced():
    with pytest.raises(CardError, match=r"adc\.bits is absent \(an ideal ADC\)"):
        asim.cost(linear(hand_card(**{"adc.bits": None})), torch.randn(1, 6))


@pytest.mark.parametrize(("changes", "message"), [
    ({"cost.adc_fom_J": -1e-15}, r"cost\.adc_fom_J must be ≥ 0\.0 J, got -1e-15"),
    ({"cost.adc_fom_J": 38.0}, r"cost\.adc_fom_J must be ≤ 1e-06 J, got 38\.0"),
    ({"cost.read_voltage_V": "0.2"}, r"cost\.read_voltage_V must be a number, got '0\.2'"),
    ({"cost.columns_per_adc": 1.5}, r"cost\.columns_per_adc must be an integer, got 1\.5"),
    ({"cost.source": None}, r"\[cost\] is missing the key 'source'"),
], ids=["negative", "wrong-unit", "wrong-type", "not-integer", "missing"])
def test_a_malformed_cost_section_is_a_clear_error(changes, message):
    with pytest.raises(CardError, match=message):
        asim.load_chip("pcm_hermes", **changes)


def test_an_unknown_cost_key_is_a_clear_error():
    text = asim.load_chip("pcm_hermes").to_toml() + "\n"
    text = text.replace("[cost]\n", "[cost]\nadc_energy_J = 1e-12\n")
    with pytest.raises(CardError, match=r"unknown key cost\.adc_energy_J; \[cost\] accepts"):
        chip_from_toml(text, "my card")


# ------------------------------------------------------------------------ the HERMES-like card


def test_hermes_like_card_prices_a_256_by_256_mvm_near_the_papers_figures():
    """Le Gallo et al. 2023: 2.48–9.76 TOPS/W (four- and one-phase read) for 8-bit MVMs on
    256×256 cores, 63.1 TOPS over 64 cores. Weights uniform in [−1, 1]; one full-scale
    input vector (docs/cost.md)."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.rand(256, 256, generator=generator) * 2 - 1
    report = asim.cost(linear("pcm_hermes", weight), torch.ones(1, 256))
    assert report.layers[0].tile.tiles == 1 and report.layers[0].mvms == 1
    assert 2.48 / 2 <= report.tops_per_watt <= 9.76 * 2
    assert 64 * report.tops == pytest.approx(63.1, rel=0.01)  # by construction: see the card
    assert math.isclose(report.area_um2 / 1e6, 0.62, rel_tol=0.01)


def assert_close(committed, fresh, message: str, where: str = "") -> None:
    """Equal structure and strings, numbers to 1e-9 relative (sums may round differently on
    other CPUs)."""
    if isinstance(committed, dict):
        assert committed.keys() == fresh.keys(), f"{message} ({where})"
        for key in committed:
            assert_close(committed[key], fresh[key], message, f"{where}.{key}")
    elif isinstance(committed, list):
        assert len(committed) == len(fresh), f"{message} ({where})"
        for i, (a, b) in enumerate(zip(committed, fresh, strict=True)):
            assert_close(a, b, message, f"{where}[{i}]")
    elif isinstance(committed, float):
        assert committed == pytest.approx(fresh, rel=1e-9), f"{message} ({where})"
    else:
        assert committed == fresh, f"{message} ({where})"


def load_example_script():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "cost_example.py"
    spec = importlib.util.spec_from_file_location("cost_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_cost_page_is_what_the_example_gives():
    script = load_example_script()
    committed = json.loads(script.RESULTS.read_text(encoding="utf-8"))
    assert_close(committed, json.loads(json.dumps(script.run())),
                 "benchmarks/results/cost_example.json is stale: run python "
                 "benchmarks/cost_example.py")
    assert script.PAGE.read_text(encoding="utf-8") == script.render_page(committed), (
        "docs/cost.md is stale: run python benchmarks/cost_example.py --docs-only")
    for mode in committed["modes"].values():  # the page's comparison: within a factor of 2
        assert 0.5 <= mode["model_tops_per_watt"] / mode["paper_tops_per_watt"] <= 2
