"""Bit slicing ([slicing], analogsim.tiles.slicing; docs/bit_slicing.md): exact on the ideal
card, output noise against its formula, the cost multiples, the absent section untouched,
K instances, coding, and the card's errors."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import analogsim as asim
from analogsim.errors import CardError
from analogsim.tiles.slicing import Slices

DOCS = Path(__file__).resolve().parents[1] / "docs" / "bit_slicing.md"
DAC = {"dac.bits": 8, "dac.input_scaling": "abs_max"}
#: 7 magnitude bits in 4 cycles of 2 bits (the first holds 1); weights of 2 × 3 bits
SLICED = {"slicing.input_bits_per_slice": 2, "slicing.weight_slices": 2,
          "slicing.bits_per_weight_slice": 3}


def linear(chip: asim.Chip, out: int = 5, rows: int = 16, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return asim.convert(nn.Sequential(nn.Linear(rows, out, bias=False)), chip)


def programmed(chip: asim.Chip, out: int = 5, rows: int = 16, instances: int = 1,
               seed: int = 0) -> nn.Sequential:
    model = linear(chip, out, rows, seed)
    asim.program(model, seed=seed, instances=instances)
    return model.eval()


def quantised_product(weight: torch.Tensor, x: torch.Tensor, weight_bits: int) -> torch.Tensor:
    """The unsliced quantised product by hand: weights to 2^bits − 1 magnitude steps of max|W|,
    inputs to the 8-bit DAC's codes of max|x| (abs_max: step 2/254 of max|x|)."""
    m = weight.abs().max()
    levels = 2**weight_bits - 1
    w_q = torch.sign(weight) * torch.round(weight.abs() / m * levels) / levels * m
    s = x.abs().amax(dim=-1, keepdim=True)
    step = 2 / 254
    x_q = torch.round(x / s / step) * step * s
    return x_q @ w_q.T


# ------------------------------------------------------------------------ exact when ideal


def test_sliced_weight_times_bit_serial_input_is_the_quantised_product() -> None:
    x = torch.randn(6, 16)
    for s, m, p in [(1, 4, 2), (2, 2, 3), (3, 1, None), (None, 3, 1)]:
        over = {"slicing.weight_slices": m}
        if s is not None:
            over["slicing.input_bits_per_slice"] = s
        if p is not None:
            over["slicing.bits_per_weight_slice"] = p
        model = programmed(asim.load_chip("ideal", **DAC, **over))
        weight = model[0].weight.detach()
        with torch.no_grad():
            y = model(x)
        if p is None:  # weights unsliced and analog: only the DAC quantises
            s_x = x.abs().amax(dim=-1, keepdim=True)
            expected = torch.round(x / s_x * 127) / 127 * s_x @ weight.T
        else:
            expected = quantised_product(weight, x, m * p)
        torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


def test_programmed_slices_decode_to_the_quantised_weight() -> None:
    model = programmed(asim.load_chip("ideal", **SLICED, **DAC))
    tile = model[0].tile
    weight = model[0].weight.detach()
    assert tile.w_effective.shape == (1, 5 * 2, 16)  # (K, out·m, rows)
    cells = tile.w_effective[0].unflatten(0, (5, 2))  # (out, m, rows)
    torch.testing.assert_close(cells * 7, torch.round(cells * 7), rtol=0, atol=1e-5)  # 2^3
    assert cells.abs().max() <= 1
    decoded = tile.stage.slices.decoded(tile.w_effective)[0] * tile.weight_scale[0, :, None]
    m = weight.abs().max()
    expected = torch.sign(weight) * torch.round(weight.abs() / m * 63) / 63 * m
    torch.testing.assert_close(decoded, expected, rtol=0, atol=1e-6)


def test_sliced_equals_unsliced_card_of_as_many_levels_when_ideal() -> None:
    x = torch.randn(4, 3, 16)  # (N, T, in): the cycles ride in the batch
    sliced = programmed(asim.load_chip("ideal", **SLICED, **DAC))
    levels = programmed(asim.load_chip("ideal", **DAC, **{"conductance.levels": 64}))
    live = linear(asim.load_chip("ideal", **SLICED, **DAC)).eval()
    with torch.no_grad():
        torch.testing.assert_close(sliced(x), levels(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(live(x), sliced(x), rtol=1e-5, atol=1e-6)


def test_training_through_the_slices_reaches_the_weights() -> None:
    model = linear(asim.load_chip("ideal", **SLICED, **DAC, **{"adc.bits": 8})).train()
    model(torch.randn(4, 16)).square().sum().backward()
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0


# ------------------------------------------------------------------------ output noise


def shift_sums(s: int, m: int, p: int) -> tuple[float, float]:
    """(Σ_i a_i², Σ_j v_j²) of an 8-bit DAC in cycles of s bits and m weight slices of p bits."""
    n, limit = math.ceil(7 / s), 127
    places = [max(0, 7 - s * (n - i)) for i in range(n)]  # the leftover bits lowest
    a = [2**e * (2**s - 1) / limit for e in places]
    v = [2 ** (p * j) * (2**p - 1) / (2 ** (p * m) - 1) for j in range(m)]
    return sum(t * t for t in a), sum(t * t for t in v)


def draws(chip: asim.Chip, x: torch.Tensor, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs (samples, out) of one input vector x through a programmed noiseless-device
    layer, one noise draw per row; max|W| of its tile)."""
    model = programmed(chip, out=8)
    with torch.no_grad():
        y = model(x.expand(samples, -1).contiguous())
    return y, model[0].weight.detach().abs().max()


#: 2000 draws of each of 8 outputs pooled: a variance estimate's relative standard error is
#: √(2/(N − 1)) ≈ 1.1 % at N = 16,000; the bound is 5 of them.
SAMPLES = 2000
TOLERANCE = 5 * math.sqrt(2 / (8 * SAMPLES - 1))


def test_output_noise_variance_matches_its_formula() -> None:
    # var y = (max|W| · max|x|)² · σ_o² · Σ_i a_i² · Σ_j v_j² (ideal ADC)
    x = torch.randn(16)
    sigma = 0.05
    noisy = {**DAC, "output_noise.std": sigma}
    for s, m, p in [(1, 1, None), (2, 2, 3), (1, 4, 2)]:
        over = {"slicing.input_bits_per_slice": s, "slicing.weight_slices": m}
        if p is not None:
            over["slicing.bits_per_weight_slice"] = p
        y, w_max = draws(asim.load_chip("ideal", **noisy, **over), x, SAMPLES)
        a2, v2 = shift_sums(s, m, p or 1) if p else (shift_sums(s, 1, 1)[0], 1.0)
        expected = (w_max * x.abs().max()) ** 2 * sigma**2 * a2 * v2
        measured = y.var(dim=0).mean()
        assert abs(measured / expected - 1) < TOLERANCE, (s, m, p, measured, expected)
    y, w_max = draws(asim.load_chip("ideal", **noisy), x, SAMPLES)  # unsliced: σ_o² alone
    measured = y.var(dim=0).mean()
    assert abs(measured / ((w_max * x.abs().max()) ** 2 * sigma**2) - 1) < TOLERANCE


def test_per_read_noise_variance_matches_its_formula() -> None:
    # var y = (max|W| max|x|)² σ_A² Δ² Σ_j v_j² Σ_i 4^(e_i) Σ_r d_ir², σ_A² = 2σ_a² (a pair)
    x = torch.randn(16)
    sigma_a = 0.02
    chip = asim.load_chip("ideal", **DAC, **SLICED, **{"per_read_noise.additive_std": sigma_a})
    y, w_max = draws(chip, x, SAMPLES)
    step = 2 / 254
    codes = torch.round(x / x.abs().max() / step).abs()
    # 7 bits in cycles of 2: places 0, 1, 3, 5 (1 bit left over, least significant)
    digits = [codes % 2, torch.floor(codes / 2) % 4, torch.floor(codes / 8) % 4,
              torch.floor(codes / 32)]
    assert torch.equal(digits[0] + 2 * digits[1] + 8 * digits[2] + 32 * digits[3], codes)
    places = (0, 1, 3, 5)
    per_read = sum(4**e * float(d.square().sum()) for e, d in zip(places, digits, strict=True))
    _, v2 = shift_sums(2, 2, 3)
    expected = (w_max * x.abs().max()) ** 2 * 2 * sigma_a**2 * step**2 * v2 * per_read
    measured = y.var(dim=0).mean()
    assert abs(measured / expected - 1) < TOLERANCE, (measured, expected)
    unsliced = float(codes.square().sum())  # ‖c‖² has the cross terms slicing drops
    assert per_read < unsliced


def test_the_noise_factor_tables_in_the_docs_are_the_codes() -> None:
    text = DOCS.read_text(encoding="utf-8")
    inputs = re.findall(r"^\| (\d) \| (\d) \| ([\d, ]+) \| ([\d.]+)", text, re.M)
    weights = re.findall(r"^\| (\d+) × (\d+) \| ([\d.]+)", text, re.M)
    assert (len(inputs), len(weights)) == (7, 5)
    for s, n, places, a2 in inputs:
        chip = asim.load_chip("ideal", **DAC, **{"slicing.input_bits_per_slice": int(s)})
        slices = Slices.from_chip(chip) or Slices(None, 1, None, None, 1)  # s = 7: one cycle
        assert slices.input_slices == int(n)
        assert slices.input_exponents == tuple(int(e) for e in places.split(","))
        assert sum(a * a for a in slices.input_weights) == pytest.approx(float(a2), abs=5e-4)
    for m, p, v2 in weights:
        slices = Slices.from_chip(asim.load_chip("ideal", **{
            "slicing.weight_slices": int(m), "slicing.bits_per_weight_slice": int(p)}))
        assert sum(v * v for v in slices.weight_weights) == pytest.approx(float(v2), abs=5e-4)


# ------------------------------------------------------------------------ cost

COST = {"source": "round numbers for hand calculations", "read_voltage_V": 0.5,
        "read_time_s": 1e-6, "dac_energy_J": 1e-12, "adc_fom_J": 1e-14,
        "adc_conversion_time_s": 1e-8, "columns_per_adc": 2, "cell_area_um2": 2.0,
        "adc_area_um2": 50.0, "digital_energy_per_output_J": 3e-12,
        "digital_mac_energy_J": 5e-13}


def cost_card(**changes: object) -> asim.Chip:
    settings = {"g_max_uS": 10.0, "mapping.tile_rows": 4, "mapping.tile_cols": 3,
                "adc.bits": 4, "dac.bits": 5, "dac.input_scaling": "abs_max",
                **{f"cost.{k}": v for k, v in COST.items()}, **changes}
    return asim.load_chip("ideal", **settings)


def test_cost_multiples_against_a_hand_calculation() -> None:
    # weights of magnitude 1 and 0.5 (every tile's max|W| = 1), 5 outputs × 6 rows: 2 row
    # chunks × 2 column groups. 5-bit DAC: 4 magnitude bits in n = 2 cycles of 2 bits;
    # weights in m = 2 slices of 2 bits: |w| = 1 → Q = 15 → digits (3, 3), pairs at 1, 1;
    # |w| = 0.5 → Q = round(7.5) = 8 → digits (0, 2), pairs at 0, 2/3.
    i, j = torch.meshgrid(torch.arange(5), torch.arange(6), indexing="ij")
    w = torch.where((i + j) % 3 == 0, 1.0, 0.5) * (-1.0) ** (i + j)
    plain, sliced = [], []
    for over, into in [({}, plain), ({"slicing.input_bits_per_slice": 2,
                                      "slicing.weight_slices": 2,
                                      "slicing.bits_per_weight_slice": 2}, sliced)]:
        layer = nn.Linear(6, 5, bias=False)
        with torch.no_grad():
            layer.weight.copy_(w)
        model = asim.convert(nn.Sequential(layer), cost_card(**over))
        into.append(asim.cost(model, torch.randn(1, 6)).layers[0])
    a, b = plain[0].tile, sliced[0].tile
    n, m = 2, 2
    big = int((w.abs() == 1).sum())
    g_sliced = 10.0 * (2 * big + (2 / 3) * (30 - big))  # µS: one device of each slice pair
    assert (b.tiles, b.devices, b.adcs) == (m * a.tiles, m * a.devices, m * a.adcs) == (8, 120, 16)
    assert b.extra_devices == 60
    assert b.conductance_uS == pytest.approx(g_sliced)
    assert b.array_J == pytest.approx(n * g_sliced * 1e-6 * 0.5**2 * 1e-6)
    assert (a.conversions, b.conversions) == (5 * 2, 5 * 2 * n * m)
    assert (a.device_reads, b.device_reads) == (60, 120 * n)
    assert b.adc_J == pytest.approx(n * m * a.adc_J)
    assert b.dac_J == pytest.approx(n * m * a.dac_J) and a.dac_J == pytest.approx(6 * 2 * 1e-12)
    assert b.digital_J == pytest.approx(n * m * a.digital_J)
    assert b.mvm_time_s == pytest.approx(n * a.mvm_time_s)  # cycles in turn, slices parallel
    assert b.area_um2 == pytest.approx(m * a.area_um2)
    assert sliced[0].conversions == sliced[0].mvms * b.conversions
    assert sliced[0].device_reads == sliced[0].mvms * b.device_reads


def test_programmed_and_unprogrammed_cost_agree() -> None:
    chip = cost_card(**SLICED, **{"dac.bits": 8})
    model = linear(chip, out=5, rows=6)
    before = asim.cost(model, torch.randn(1, 6)).layers[0].tile
    asim.program(model, seed=0)
    after = asim.cost(model, torch.randn(1, 6)).layers[0].tile
    assert before == after


# ------------------------------------------------------------------------ absent, K, coding


def test_absent_or_empty_section_takes_the_untouched_path() -> None:
    x = torch.randn(7, 16)
    noisy = asim.load_chip("generic")
    empty = asim.load_chip("generic", **{"slicing.weight_slices": 1})
    assert noisy.slicing is None and empty.slicing is not None
    outputs = []
    for chip in (noisy, empty):
        model = programmed(chip, instances=2, seed=3)
        assert model[0].tile.stage.slices is None
        with torch.no_grad(), asim.instances_folded(model):
            outputs.append(model(x.repeat(2, 1)))
    assert torch.equal(*outputs)


@pytest.mark.parametrize("kind", ["linear", "conv"], ids=["linear", "grouped conv"])
def test_instances_of_a_sliced_card_match_each_alone(kind: str) -> None:
    chip = asim.load_chip("pcm", **SLICED, **{"dac.bits": 8})  # drift compensation on
    torch.manual_seed(0)
    if kind == "linear":
        digital, x = nn.Sequential(nn.Linear(12, 4)), torch.randn(5, 12)
    else:
        digital, x = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, groups=2)), torch.randn(2, 4,
                                                                                         5, 5)
    together = asim.convert(digital, chip)
    asim.program(together, seed=1, instances=3)
    asim.drift(together, 3600.0)
    alone = asim.convert(digital, chip)
    asim.program(alone, seed=1, instances=[2])
    asim.drift(alone, 3600.0)
    together.eval(), alone.eval()
    with torch.no_grad(), asim.instances_folded(together):
        y = together(x.repeat(3, *[1] * (x.dim() - 1)))
    with torch.no_grad():
        y_alone = alone(x)
    torch.testing.assert_close(y.chunk(3)[2], y_alone, rtol=1e-4, atol=1e-4)
    assert not torch.equal(y.chunk(3)[0], y.chunk(3)[2])  # instances differ
    assert (y.chunk(3)[0] - digital(x)).abs().mean() < 0.3 * digital(x).abs().mean()


def test_input_slicing_composes_with_coding() -> None:
    coded = {**DAC, "coding.scheme": "sign+adaptive_mapping+redundancy",
             "coding.large_fraction": 0.1}
    x = torch.randn(4, 16)
    sliced = programmed(asim.load_chip("ideal", **coded, **{"slicing.input_bits_per_slice": 1}))
    plain = programmed(asim.load_chip("ideal", **coded))
    with torch.no_grad():
        torch.testing.assert_close(sliced(x), plain(x), rtol=1e-5, atol=1e-5)
    noisy = programmed(asim.load_chip("pcm", **{"coding.scheme": "sign",
                                                "slicing.input_bits_per_slice": 2}))
    with torch.no_grad():
        assert torch.isfinite(noisy(x)).all()


def test_weight_slicing_with_wires_slices_each_crossbar() -> None:
    wired = {**DAC, **SLICED, "wires.segment_resistance_ohm": 100.0, "mapping.tile_rows": 8,
             "mapping.tile_cols": 3}
    model = programmed(asim.load_chip("ideal", **wired))
    ideal = programmed(asim.load_chip("ideal", **{**wired, "wires.segment_resistance_ohm": 0.0}))
    live = linear(asim.load_chip("ideal", **wired)).eval()
    x = torch.rand(3, 16)
    with torch.no_grad():
        torch.testing.assert_close(live(x), model(x), rtol=1e-5, atol=1e-6)
        assert (model(x).abs() < ideal(x).abs() + 1e-6).float().mean() > 0.8  # drop lowers


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"slicing.input_bits_per_slice": 2}, "ideal DAC: give dac.bits"),
        ({"dac.bits": 6, "slicing.input_bits_per_slice": 6}, "give at most 5"),
        ({"slicing.bits_per_weight_slice": 2}, "needs slicing.weight_slices > 1"),
        ({"slicing.weight_slices": 3}, "bits_per_weight_slice is missing"),
        ({"slicing.weight_slices": 4, "slicing.bits_per_weight_slice": 7}, "more than 24"),
        ({"slicing.weight_slices": 2, "slicing.bits_per_weight_slice": 2,
          "conductance.levels": 9}, r"levels − 1 a multiple of 3"),
        ({"slicing.weight_slices": 2, "slicing.bits_per_weight_slice": 2,
          "conductance.pair": "single"}, "differential"),
        ({"slicing.weight_slices": 0}, "slicing.weight_slices must be ≥ 1"),
        ({"slicing.input_bits_per_slice": 1.5, "dac.bits": 8}, "must be an integer"),
        ({"slicing.cycles": 2}, "unknown key slicing.cycles"),
    ],
    ids=["no DAC bits", "more than the code", "bits without slices", "slices without bits",
         "too many bits", "levels off the grid", "single device", "zero slices",
         "not an integer", "unknown key"],
)
def test_malformed_section_is_refused_naming_the_key(overrides: dict, message: str) -> None:
    with pytest.raises(CardError, match=message):
        asim.load_chip("ideal", **overrides)


def test_levels_on_the_slice_grid_are_accepted() -> None:
    chip = asim.load_chip("generic", **{"slicing.weight_slices": 2,
                                        "slicing.bits_per_weight_slice": 3})  # 63 = 9 · 7
    assert Slices.from_chip(chip).weight_weights == (7 / 63, 56 / 63)
    assert chip.replace(**{"slicing.weight_slices": 1, "slicing.bits_per_weight_slice": None}
                        ).slicing is not None


def test_summary_counts_the_slices_and_export_refuses_them(tmp_path: Path) -> None:
    from analogsim.hardware.chip_exchange import export_targets

    chip = asim.load_chip("ideal", **SLICED, **DAC)
    summary = asim.summary(linear(chip))
    assert summary.rows[0].devices_per_weight == 4.0
    assert "2 differential pairs of 3 bits" in str(summary)
    digital = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(asim.errors.ConversionError, match="slices weights"):
        export_targets(digital, chip, tmp_path / "targets.h5")
