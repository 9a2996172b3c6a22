"""Weight coding ([coding], analogsim.tiles.coding) with IR drop ([wires]; docs/ir_drop.md)
and with bit slicing ([slicing]; docs/bit_slicing.md): placement of coded cells on the
crossbars, bit identity without wire resistance, exact decoding of coded slices on the ideal
card, and the output noise of coded slices against a formula and a Monte Carlo reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import analogsim as asim
from analogsim.tiles import wires
from analogsim.tiles.slicing import Slices

DAC = {"dac.bits": 8, "dac.input_scaling": "abs_max"}
#: 7 magnitude bits in 4 cycles of 2 bits; weights of 2 × 3 bits
SLICED = {"slicing.input_bits_per_slice": 2, "slicing.weight_slices": 2,
          "slicing.bits_per_weight_slice": 3}
#: 2 row chunks of 8 × 2 column groups of 3 for a 5 × 16 layer
SMALL_TILES = {"mapping.tile_rows": 8, "mapping.tile_cols": 3}


def linear(chip: asim.Chip, out: int = 5, rows: int = 16, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return asim.convert(nn.Sequential(nn.Linear(rows, out, bias=False)), chip)


def programmed(chip: asim.Chip, out: int = 5, rows: int = 16, instances: int = 1,
               seed: int = 0) -> nn.Sequential:
    model = linear(chip, out, rows, seed)
    asim.program(model, seed=seed, instances=instances)
    return model.eval()


# ------------------------------------------------------------------------ wires × coding


@pytest.mark.parametrize("scheme", ["sign", "sign+adaptive_mapping+redundancy"])
def test_zero_wire_resistance_leaves_a_coded_tile_bit_identical(scheme: str) -> None:
    coded = {"coding.scheme": scheme, "coding.threshold": 0.5, "coding.r_large": 3,
             **SMALL_TILES}
    x = torch.randn(6, 16)
    outputs = []
    for extra in ({}, {"wires.segment_resistance_ohm": 0.0}):
        model = programmed(asim.load_chip("pcm", **coded, **extra), instances=2)
        asim.drift(model, 3600.0)
        with torch.no_grad(), asim.instances_folded(model):
            outputs.append(model(x.repeat(2, 1)))
    assert torch.equal(*outputs)
    tile = model[0].tile
    g = tile.g_programmed
    assert wires.conductances_seen(tile.chip, tile.layout, g, tile.stored_coding()) is g


def test_one_cell_per_weight_sits_where_the_uncoded_weight_does() -> None:
    chip = asim.load_chip("pcm", **SMALL_TILES, **{"coding.scheme": "sign",
                                                  "wires.segment_resistance_ohm": 50.0})
    tile = programmed(chip, instances=2)[0].tile
    coded = tile.stored_coding()
    placement = wires.coded_placement(tile.layout, coded.large, 1, 1)
    assert len(placement) == 4  # 2 row chunks × 2 column groups
    for bar, ((a, b), (c, d)) in zip(placement, [(r, c) for r in tile.layout.row_chunks
                                                 for c in tile.layout.column_groups],
                                     strict=True):
        assert (bar.rows, bar.cols) == (b - a, d - c)
        o, i = bar.cells // 16, bar.cells % 16  # cell o·rows + i holds weight (o, i)
        assert torch.equal(bar.positions, (i - a) * (d - c) + (o - c))
    g = tile.g_programmed.float()  # (K, D, 1, N), N = out · rows
    seen = wires.conductances_seen(chip, tile.layout, g, coded)
    uncoded = wires.conductances_seen(chip, tile.layout, g.view(2, 2, 5, 16))  # same cells
    torch.testing.assert_close(seen.view(2, 2, 5, 16), uncoded, rtol=0, atol=0)
    assert (seen <= g).all() and (seen < g)[g > 1.0].all()  # conducting cells lose current


def test_redundant_copies_fill_their_inputs_rows_by_hand() -> None:
    # one output, two inputs: w = (0.2, −1); r_small = 2, r_large = 3, T = 0.5·m, so input 0
    # drives 2 rows and input 1 (its weight large) 3 rows of one 5 × 1 crossbar
    chip = asim.load_chip("ideal", **{"coding.scheme": "sign+redundancy",
                                      "coding.threshold": 0.5, "coding.r_small": 2,
                                      "coding.r_large": 3, "wires.segment_resistance_ohm": 1e3})
    model = asim.convert(nn.Linear(2, 1, bias=False), chip)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.2, -1.0]]))
    asim.program(model, seed=0)
    tile = model.tile
    coded = tile.stored_coding()
    # cells: copy 0 of (w0, w1), copy 1 of (w0, w1), the extra copy of w1
    (bar,) = wires.coded_placement(tile.layout, coded.large, 2, 3)
    assert (bar.rows, bar.cols) == (5, 1)
    assert bar.cells.tolist() == [0, 1, 2, 3, 4]
    assert bar.positions.tolist() == [0, 2, 1, 3, 4]  # rows 0–1 input 0, rows 2–4 input 1
    g = tile.g_programmed.double()  # ideal card: the targets, µS
    # x = 2|w|/m − 1: −0.6 for w0 (on g⁻), +1 for w1 (on g⁺); g_min = 0 on the ideal card
    g_max = chip.conductance.g_max_uS
    column = torch.tensor([[0.0, 0.0, g_max, g_max, g_max],  # g⁺ by crossbar row
                           [0.6 * g_max, 0.6 * g_max, 0.0, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(g[0, :, 0, [0, 2, 1, 3, 4]], column)
    r = 1e3 * 1e-6  # MΩ, with µS
    expected = torch.empty_like(column)
    for device in range(2):
        for k in range(5):  # δ_k = r (G_k · 1 + Σ_n G_n (rows − max(k, n))), one column
            delta = r * (column[device, k] + sum(column[device, n] * (5 - max(k, n))
                                                 for n in range(5)))
            expected[device, k] = column[device, k] / (1 + delta)
    seen = wires.conductances_seen(chip, tile.layout, g, coded)
    torch.testing.assert_close(seen[0, :, 0, [0, 2, 1, 3, 4]], expected)


def coded_weight_error(tile_size: int, g_max_us: float, scheme: str, r: float = 5.0) -> float:
    """Mean |ŵ(r) − ŵ(0)| / max|W| of a 128 × 128 layer of Gaussian weights on the ideal card
    with ``tile_size`` × ``tile_size`` tiles, coded with ``scheme`` (``"none"``: uncoded)."""
    layer = nn.Linear(128, 128, bias=False)
    with torch.no_grad():
        layer.weight.normal_(generator=torch.Generator().manual_seed(0))
    effective = []
    for resistance in (0.0, r):
        chip = asim.load_chip("ideal", mapping_tile_rows=tile_size, mapping_tile_cols=tile_size,
                              conductance_g_max_uS=g_max_us, coding_scheme=scheme,
                              wires_segment_resistance_ohm=resistance)
        analog = asim.convert(layer, chip)
        asim.program(analog, seed=0)
        effective.append(analog.tile.w_effective * analog.tile.layout.expand_rows(
            analog.tile.weight_scale))
    return float((effective[1] - effective[0]).abs().mean() / layer.weight.detach().abs().max())


def test_coded_weight_error_grows_with_tile_size_and_conductance_like_the_uncoded() -> None:
    for scheme in ("none", "sign"):
        by_tile = [coded_weight_error(tile, 25.0, scheme) for tile in (16, 32, 64, 128)]
        assert 0 < by_tile[0] < by_tile[1] < by_tile[2] < by_tile[3], (scheme, by_tile)
        by_g_max = [coded_weight_error(64, g, scheme) for g in (5.0, 10.0, 25.0)]
        assert 0 < by_g_max[0] < by_g_max[1] < by_g_max[2], (scheme, by_g_max)
    # sign coding maps |w| = 0 to x = −1, a device at g_max: the many small weights of a
    # Gaussian layer conduct fully, the crossbars carry more current and see a larger drop
    # (docs/ir_drop.md, "With weight coding")
    ratio = coded_weight_error(64, 25.0, "sign") / coded_weight_error(64, 25.0, "none")
    assert ratio > 2.0, ratio


def test_wires_slices_and_coding_compose() -> None:
    card = {**DAC, **SLICED, **SMALL_TILES, "coding.scheme": "sign+redundancy",
            "coding.threshold": 0.5, "coding.r_large": 2}
    wired = programmed(asim.load_chip("ideal", **card, **{"wires.segment_resistance_ohm": 1e3}))
    ideal = programmed(asim.load_chip("ideal", **card))
    tile = wired[0].tile
    coded = tile.stored_coding()
    placement = wires.coded_placement(tile.layout, coded.large, 1, 2)
    assert len(placement) == 2 * 2 * 2  # weight slices × row chunks × column groups
    cells = torch.cat([bar.cells for bar in placement])
    assert torch.equal(cells.sort().values, torch.arange(tile.g_programmed.shape[-1]))
    x = torch.rand(3, 16)
    with torch.no_grad():
        y, y0 = wired(x), ideal(x)
    assert not torch.equal(y, y0) and (y - y0).abs().max() < 0.5 * y0.abs().max()


def test_coded_tiles_with_wires_drift_and_keep_their_instances() -> None:
    card = {"coding.scheme": "sign+redundancy", "coding.threshold": 0.5, "coding.r_large": 3,
            "wires.segment_resistance_ohm": 20.0, **SMALL_TILES}
    x = torch.randn(4, 16)
    outputs = []
    for instances in ([0, 1], [1]):
        model = linear(asim.load_chip("pcm", **card))  # programming noise, drift, 1/f noise
        asim.program(model, seed=2, instances=instances)
        asim.drift(model, 3600.0)
        model.eval()
        with torch.no_grad(), asim.instances_folded(model):
            outputs.append(model(x.repeat(len(instances), 1)).chunk(len(instances))[-1])
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)
    shared = programmed(asim.load_chip("ideal", **card), instances=2)[0].tile  # exact: a view
    assert torch.equal(shared.w_effective[0], shared.w_effective[1])
    alone = programmed(asim.load_chip("ideal", **card))[0].tile
    assert torch.equal(shared.w_effective[:1], alone.w_effective)


# ------------------------------------------------------------------------ slicing × coding


def quantised_product(weight: torch.Tensor, x: torch.Tensor, weight_bits: int) -> torch.Tensor:
    """The unsliced quantised product by hand: weights to 2^bits − 1 magnitude steps of max|W|,
    inputs to the 8-bit DAC's codes of max|x| (abs_max: step 2/254 of max|x|)."""
    m = weight.abs().max()
    levels = 2**weight_bits - 1
    w_q = torch.sign(weight) * torch.round(weight.abs() / m * levels) / levels * m
    s = x.abs().amax(dim=-1, keepdim=True)
    step = 2 / 254
    return torch.round(x / s / step) * step * s @ w_q.T


CODINGS = [
    {"coding.scheme": "sign"},
    {"coding.scheme": "sign+adaptive_mapping+redundancy", "coding.threshold": 0.5,
     "coding.r_large": 3},
    {"coding.scheme": "sign+adaptive_mapping", "coding.threshold": 0.4,
     "coding.large_range": "above_threshold", "coding.scope": "layer"},
    {"coding.scheme": "redundancy", "coding.r_small": 2, "coding.large_fraction": 0.05},
    {"coding.scheme": "none", "coding.scope": "layer"},
]


@pytest.mark.parametrize("coding", CODINGS, ids=["sign", "all three", "above threshold, layer",
                                                 "redundancy", "none, layer"])
def test_sliced_coded_weights_times_bit_serial_inputs_are_the_quantised_product(
        coding: dict) -> None:
    x = torch.randn(6, 16)
    model = programmed(asim.load_chip("ideal", **DAC, **SLICED, **coding))
    tile = model[0].tile
    assert tile.coded and tile.w_effective.shape == (1, 10, 16)  # (K, out·m, rows)
    with torch.no_grad():
        y = model(x)
    torch.testing.assert_close(y, quantised_product(model[0].weight.detach(), x, 6),
                               rtol=1e-5, atol=1e-5)


def test_coded_slices_keep_their_weights_sign_and_decode_one_by_one() -> None:
    chip = asim.load_chip("ideal", **DAC, **SLICED, **{"coding.scheme": "sign"})
    model = linear(chip)
    with torch.no_grad():
        model[0].weight[0, 0] = -0.01  # |w|·63/max|W| < 8: its high digit is 0
    asim.program(model, seed=0)
    tile, weight = model[0].tile, model[0].weight.detach()
    sign = torch.where(weight < 0, -1.0, 1.0).repeat_interleave(2, dim=0)
    assert torch.equal(tile.coding_sign, sign)  # the weight's sign on each of its slices
    assert tile.coding_sign[1, 0] == -1  # (row o·m + j: output 0, slice 1), a digit 0
    scale = tile.layout.expand_rows(tile.weight_scale)
    expected = tile.stage.slices.weight_cells(weight / scale)
    torch.testing.assert_close(tile.w_effective[0], expected, rtol=0, atol=1e-6)


def test_the_coding_cost_of_sliced_weights_counts_every_slice_cell_and_one_sign() -> None:
    chip = asim.load_chip("ideal", **DAC, **SLICED, **{"coding.scheme": "sign+redundancy",
                                                "coding.threshold": 0.5, "coding.r_large": 3})
    tile = programmed(chip)[0].tile
    coded = tile.stored_coding()
    cost = tile.coding_cost()
    large = int(coded.large.sum())
    assert cost.weights == 80 and coded.weights == 160  # 5 × 16 weights, 2 slices each
    assert cost.cells == 160 + 2 * large == tile.g_target_packed.shape[-1]
    assert cost.devices == 2 * cost.cells  # a differential pair per cell
    assert cost.side_bits == 80 + 160  # one sign per weight, one small/large per slice
    assert cost.r_avg == pytest.approx(2 * (1 + 2 * large / 160))


def test_sliced_coded_output_noise_matches_the_sliced_formula() -> None:
    # output noise does not see the coding: var y = (max|W| max|x|)² σ_o² Σ_i a_i² Σ_j v_j²
    # (docs/bit_slicing.md); 2000 draws of 8 outputs, bound 5 standard errors of a variance
    sigma, samples = 0.05, 2000
    chip = asim.load_chip("ideal", **DAC, **SLICED, **{"output_noise.std": sigma,
                                                      "coding.scheme": "sign+redundancy",
                                                      "coding.threshold": 0.5})
    model = programmed(chip, out=8)
    x = torch.randn(16)
    with torch.no_grad():
        y = model(x.expand(samples, -1).contiguous())
    slices = model[0].tile.stage.slices
    a2 = sum(a * a for a in slices.input_weights)
    v2 = sum(v * v for v in slices.weight_weights)
    expected = (model[0].weight.abs().max() * x.abs().max()) ** 2 * sigma**2 * a2 * v2
    measured = y.var(dim=0).mean()
    assert abs(measured / expected - 1) < 5 * math.sqrt(2 / (8 * samples - 1))


#: Gaussian programming error without clamping: each device of a pair gets σ·(g_max − g_min),
#: so a cell's normalised read carries N(0, 2σ²)
PROGRAMMING = {"programming.law": "gaussian", "programming.additive_std": 0.05}
INSTANCES = 3000


def programming_draws(coding: dict) -> tuple[torch.Tensor, nn.Sequential, torch.Tensor]:
    """(outputs (INSTANCES, 4) of one input through a 4 × 8 weight-sliced coded layer, one
    chip instance per row; the layer; the input)."""
    chip = asim.load_chip("ideal", **PROGRAMMING, **{"slicing.weight_slices": 2,
                                                     "slicing.bits_per_weight_slice": 3},
                          **coding)
    model = programmed(chip, out=4, rows=8, instances=INSTANCES, seed=1)
    x = torch.randn(8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad(), asim.instances_folded(model):
        y = model(x.expand(INSTANCES, -1).contiguous())
    return y, model, x


def test_sliced_redundant_weights_output_variance_matches_its_formula() -> None:
    # no sign protection, no clamp: slice j of weight (k, i) decodes to its value plus the
    # mean of r_kij cells' N(0, 2σ²), times max|W|, so
    # var y_k = max|W|² · 2σ² · Σ_i x_i² Σ_j v_j² / r_kij
    y, model, x = programming_draws({"coding.scheme": "redundancy", "coding.threshold": 0.5,
                                     "coding.r_small": 2, "coding.r_large": 5})
    tile = model[0].tile
    copies = tile.stored_coding().copies.float().unflatten(0, (4, 2))  # (out, m, rows)
    v = torch.tensor(tile.stage.slices.weight_weights).view(1, 2, 1)
    scale = model[0].weight.detach().abs().max()
    expected = scale**2 * 2 * 0.05**2 * ((v**2 / copies).sum(dim=1) * x.square()).sum(dim=1)
    ratio = y.var(dim=0) / expected
    # 4 outputs of 3000 instances: the mean ratio's standard error is √(2/(N − 1))/2
    assert abs(float(ratio.mean()) - 1) < 5 * math.sqrt(2 / (INSTANCES - 1)) / 2, ratio


def monte_carlo_sign_coded(weight: np.ndarray, x: np.ndarray, sigma: float, draws: int,
                           seed: int) -> np.ndarray:
    """The reference for sign coding of 2 × 3-bit slices (scope tile), by hand: draws of the
    layer's output (draws, out). Slice j of w/max|W| holds the digit q_j of
    round(|w|/max|W|·63); its cell holds x = 2·q_j/7 − 1 and reads x + N(0, 2σ²); the decoded
    magnitude is max(0, (x̂ + 1)/2), signed with w; the weight is Σ_j v_j·slice_j·max|W|."""
    rng = np.random.default_rng(seed)
    m = np.abs(weight).max()
    level = np.round(np.abs(weight) / m * 63)
    digits = np.stack([level % 8, level // 8], axis=1)  # (out, m, rows)
    cells = 2 * digits / 7 - 1
    reads = cells + rng.normal(0, math.sqrt(2) * sigma, (draws, *cells.shape))
    slices = np.sign(weight)[:, None] * np.maximum(0, (reads + 1) / 2)
    decoded = (slices * np.array([7 / 63, 56 / 63]).reshape(1, 2, 1)).sum(axis=-2) * m
    return decoded @ x


def test_sign_coded_slices_output_matches_a_monte_carlo_reference() -> None:
    # the clamp at magnitude 0 (digits 0 sit at x = −1) has no simple closed form; the
    # reference is 20,000 draws of monte_carlo_sign_coded. Bounds: 5 standard errors of the
    # difference of two means, and of a variance (both sample sizes), per output
    y, model, x = programming_draws({"coding.scheme": "sign"})
    weight = model[0].weight.detach().double().numpy()
    reference = monte_carlo_sign_coded(weight, x.double().numpy(), 0.05, 20000, seed=3)
    ref_mean, ref_var = reference.mean(axis=0), reference.var(axis=0, ddof=1)
    mean, var = y.double().mean(dim=0).numpy(), y.double().var(dim=0).numpy()
    mean_error = 5 * np.sqrt(ref_var / INSTANCES + ref_var / 20000)
    assert (np.abs(mean - ref_mean) < mean_error).all(), (mean, ref_mean)
    var_error = 5 * np.sqrt(2 / (INSTANCES - 1) + 2 / 19999)
    assert (np.abs(var / ref_var - 1) < var_error).all(), (var, ref_var)
    clean = x.double().numpy() @ weight.T
    assert (np.abs(ref_mean - clean) > 3 * np.sqrt(ref_var / 20000)).any()  # the clamp's bias


def test_input_slicing_alone_codes_the_weights_themselves() -> None:
    chip = asim.load_chip("ideal", **DAC, **{"slicing.input_bits_per_slice": 1,
                                             "coding.scheme": "sign", "coding.scope": "global"})
    assert Slices.from_chip(chip).weight_bits is None  # input slicing alone: any scope


def test_the_summary_counts_every_slice_cell_of_a_coded_sliced_layer() -> None:
    chip = asim.load_chip("ideal", **DAC, **SLICED, **{"coding.scheme": "sign+redundancy",
                                                      "coding.threshold": 0.5,
                                                      "coding.r_large": 3})
    model = linear(chip)
    row = asim.summary(model).rows[0]
    assert row.devices_per_weight is None and "1–3 cells per slice" in row.mapping
    asim.program(model, seed=0)
    row = asim.summary(model).rows[0]
    tile = model[0].tile
    assert row.devices_per_weight == pytest.approx(2 * tile.g_target_packed.shape[-1] / 80)
    assert row.mapping.startswith("2 differential pairs of 3 bits, coding sign+redundancy")


def test_a_sliced_coded_layer_costs_the_same_programmed_or_not() -> None:
    # Unprogrammed, asim.cost codes the weights as program does, slices included; one sign
    # bit per weight (shared by its slices), one small/large bit per coded slice.
    chip = asim.load_chip("pcm_hermes", **SLICED, **{"coding.scheme": "sign+redundancy",
                                                     "coding.threshold": 0.5,
                                                     "coding.r_large": 3})
    model = linear(chip, out=5, rows=6)
    before = asim.cost(model, torch.randn(1, 6)).layers[0].tile
    asim.program(model, seed=0)
    after = asim.cost(model, torch.randn(1, 6)).layers[0].tile
    coded = model[0].tile.stored_coding()
    cells = model[0].tile.g_target_packed.shape[-1]
    assert after.devices == 2 * cells + 5 * 6 + 2 * 5 * 6  # pairs; sign bits; large bits
    assert before.devices == after.devices
    assert before.conductance_uS == pytest.approx(after.conductance_uS, rel=1e-6)
    assert coded.weights == 2 * 5 * 6


def test_global_coding_of_sliced_weights_takes_m_over_every_layers_slices() -> None:
    # scope "global": m = the largest slice value of the model (its largest |w|, every digit
    # full), so the second layer, ten times smaller, is coded on the first one's range; the
    # ideal card still decodes every slice exactly.
    chip = asim.load_chip("ideal", **DAC, **SLICED, **{"coding.scheme": "sign",
                                                      "coding.scope": "global"})
    torch.manual_seed(0)
    model = asim.convert(nn.Sequential(nn.Linear(16, 5, bias=False),
                                       nn.Linear(5, 4, bias=False)), chip)
    with torch.no_grad():
        model[1].weight.mul_(0.1)
    asim.program(model, seed=0)
    model.eval()
    largest = float(model[0].weight.detach().abs().max())
    for layer in model:
        assert torch.equal(layer.tile.coding_upper,
                           torch.full_like(layer.tile.coding_upper, largest))
    x = torch.randn(6, 16)
    with torch.no_grad():
        hidden = model[0](x)
        torch.testing.assert_close(hidden, quantised_product(model[0].weight, x, 6),
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model[1](hidden), quantised_product(model[1].weight,
                                                                       hidden, 6),
                                   rtol=1e-5, atol=1e-5)
