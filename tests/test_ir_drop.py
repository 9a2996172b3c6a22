"""IR drop: the exact nodal solve, the first-order model against it, and the tile's hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import analogsim as asim
from analogsim.errors import CardError, UsageError
from analogsim.physics import ir_drop
from analogsim.tiles import wires

G_MAX = 25e-6  # S, the pcm card's g_max
#: The bounds docs/ir_drop.md states the tests hold the model to (its measured maxima are
#: 0.054·δ_max² and 5.1 % of the drop): the error, in units of the largest ideal column
#: current at full-scale input, stays below ERROR_PER_DROP_SQUARED · δ_max² for δ_max ≤ 1
#: and below ERROR_PER_DROP of the drop above.
ERROR_PER_DROP_SQUARED = 0.1
ERROR_PER_DROP = 0.1


def random_conductances(rows: int, cols: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(0, G_MAX, (rows, cols)))


# ------------------------------------------------------------------------ the exact solve


def test_one_row_matches_its_closed_form() -> None:
    # driver —r— u0 —r— u1; cell k: G_k then one column segment r to its ADC, a series
    # conductance h_k = G_k / (1 + r G_k); u1 = u0 / (1 + r h1); (V − u0)/r = h0 u0 + h1 u1
    g0, g1, r, v = 20e-6, 7e-6, 300.0, 0.4
    h0, h1 = g0 / (1 + r * g0), g1 / (1 + r * g1)
    u0 = v / (1 + r * (h0 + h1 / (1 + r * h1)))
    u1 = u0 / (1 + r * h1)
    currents = ir_drop.solve_crossbar(np.array([[g0, g1]]), np.array([[v]]), r)
    np.testing.assert_allclose(currents[0].numpy(), [h0 * u0, h1 * u1], rtol=1e-12)


def test_one_column_matches_its_closed_form() -> None:
    # row k: V_k —r— G_k into column node w_k, a series conductance h_k; the column
    # w0 —r— w1 —r— ADC. KCL: h0 (V0 − w0) = (w0 − w1)/r; h1 (V1 − w1) + (w0 − w1)/r = w1/r
    g0, g1, r, v0, v1 = 15e-6, 25e-6, 500.0, 0.3, -0.2
    h0, h1 = g0 / (1 + r * g0), g1 / (1 + r * g1)
    system = np.array([[h0 + 1 / r, -1 / r], [-1 / r, h1 + 2 / r]])
    _, w1 = np.linalg.solve(system, [h0 * v0, h1 * v1])
    current = ir_drop.solve_crossbar(np.array([[g0], [g1]]), np.array([[v0, v1]]), r)
    np.testing.assert_allclose(float(current[0, 0]), w1 / r, rtol=1e-12)


@pytest.mark.parametrize(("i", "j"), [(0, 0), (0, 1), (1, 0), (1, 1)],
                         ids=["top-left", "top-right", "bottom-left", "bottom-right"])
def test_one_cell_of_a_two_by_two_crossbar_sees_its_own_segments(i: int, j: int) -> None:
    # a single conducting cell: driver, j + 1 row segments, G, rows − i column segments, ADC
    g = torch.zeros(2, 2, dtype=torch.float64)
    g[i, j] = 10e-6
    r, v = 1000.0, torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    segments = (j + 1) + (2 - i)
    expected = torch.zeros(2, dtype=torch.float64)
    expected[j] = 0.5 * 10e-6 / (1 + segments * r * 10e-6)
    torch.testing.assert_close(ir_drop.solve_crossbar(g, v, r)[0], expected, rtol=1e-12,
                               atol=0.0)


def test_a_two_by_two_crossbar_obeys_kirchhoff() -> None:
    g = np.array([[20e-6, 5e-6], [12e-6, 25e-6]])
    v = np.array([[0.3, -0.1], [1.0, 1.0]])
    r = 2000.0
    u, w = ir_drop.crossbar_node_voltages(g, v, r)
    for b in range(2):
        cell = g * (u[b] - w[b])  # current from row line into column line
        # row nodes: in from the left segment = out through the right segment + the cell
        assert (v[b, 0] - u[b, 0, 0]) / r == pytest.approx((u[b, 0, 0] - u[b, 0, 1]) / r
                                                            + cell[0, 0], rel=1e-9)
        assert (u[b, 0, 0] - u[b, 0, 1]) / r == pytest.approx(cell[0, 1], rel=1e-9)
        assert (v[b, 1] - u[b, 1, 0]) / r == pytest.approx((u[b, 1, 0] - u[b, 1, 1]) / r
                                                            + cell[1, 0], rel=1e-9)
        assert (u[b, 1, 0] - u[b, 1, 1]) / r == pytest.approx(cell[1, 1], rel=1e-9)
        for j in range(2):  # column nodes: the top one passes its cell down, the bottom
            assert cell[0, j] == pytest.approx((w[b, 0, j] - w[b, 1, j]) / r, rel=1e-9)
            assert cell[1, j] + (w[b, 0, j] - w[b, 1, j]) / r == pytest.approx(w[b, 1, j] / r,
                                                                              rel=1e-9)
        currents = ir_drop.solve_crossbar(g, v[b:b + 1], r)[0].numpy()
        np.testing.assert_allclose(currents, cell.sum(axis=0), rtol=1e-9)


def test_vanishing_wire_resistance_gives_the_ideal_products() -> None:
    g = random_conductances(6, 5, seed=0)
    v = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (3, 6)))
    torch.testing.assert_close(ir_drop.solve_crossbar(g, v, 1e-9), v @ g, rtol=1e-7, atol=0.0)
    torch.testing.assert_close(ir_drop.solve_crossbar(g, v, 0.0), v @ g, rtol=1e-12, atol=0.0)
    assert ir_drop.effective_conductances(g, 0.0) is g


# ------------------------------------------------------------------------ the first-order model


def test_the_model_is_the_exact_solve_to_first_order() -> None:
    g = random_conductances(8, 8, seed=2)
    r = 1e-2  # δ_max ≈ 1e-4: second-order terms are ~1e-4 of the first-order ones
    exact_drop = g - ir_drop.exact_conductances(g, r)
    model_drop = g - ir_drop.effective_conductances(g, r)
    torch.testing.assert_close(model_drop, exact_drop, rtol=1e-3, atol=0.0)


@pytest.mark.parametrize("size", [8, 16, 32])
@pytest.mark.parametrize("r", [0.1, 1.0, 3.0, 30.0, 100.0])
def test_the_model_error_stays_within_the_stated_bound(size: int, r: float) -> None:
    g = random_conductances(size, size, seed=100 + size)  # not the crossbars of the page
    inputs = torch.cat([torch.ones(1, size, dtype=torch.float64),  # full scale, then random
                        torch.from_numpy(np.random.default_rng(size).uniform(-1, 1, (4, size)))])
    exact = ir_drop.solve_crossbar(g, inputs, r)
    model = inputs @ ir_drop.effective_conductances(g, r)
    ideal = inputs @ g
    scale = ideal[0].max()
    delta_max = float(ir_drop.relative_drops(g, r).max())
    error = float((model - exact).abs().max() / scale)
    drop = float((ideal[0] - exact[0]).max() / scale)
    assert drop > 0
    if delta_max <= 1:
        assert error <= ERROR_PER_DROP_SQUARED * delta_max**2, (delta_max, error)
    else:
        assert error <= ERROR_PER_DROP * drop, (delta_max, error, drop)


def test_the_model_keeps_leading_dimensions_and_gradients() -> None:
    g = random_conductances(4, 3, seed=3).expand(2, 2, 4, 3).clone().requires_grad_(True)
    seen = ir_drop.effective_conductances(g, 50.0)
    assert seen.shape == g.shape
    seen.sum().backward()
    assert torch.isfinite(g.grad).all() and bool((g.grad > 0).all())


def test_a_negative_resistance_is_refused() -> None:
    with pytest.raises(UsageError, match="≥ 0 Ω, got -1"):
        ir_drop.relative_drops(random_conductances(2, 2, seed=0), -1.0)


# ------------------------------------------------------------------------ the card


@pytest.mark.parametrize(("value", "message"), [
    (-0.5, r"wires.segment_resistance_ohm must be ≥ 0.0 Ω, got -0.5"),
    ("1 ohm", r"wires.segment_resistance_ohm must be a number, got '1 ohm'"),
    (float("nan"), r"wires.segment_resistance_ohm must be a finite number"),
    (True, r"wires.segment_resistance_ohm must be a number, got True"),
    (5e3, r"wires.segment_resistance_ohm must be ≤ 1000 Ω"),
], ids=["negative", "string", "nan", "bool", "too-large"])
def test_a_malformed_wire_resistance_is_refused(value: object, message: str) -> None:
    with pytest.raises(CardError, match=message):
        asim.load_chip("pcm", **{"wires.segment_resistance_ohm": value})


def test_an_unknown_wires_key_is_refused_and_coding_with_wires_loads() -> None:
    with pytest.raises(CardError, match=r"unknown key wires.resistance; \[wires\] accepts"):
        asim.load_chip("pcm", **{"wires.resistance": 1.0})
    chip = asim.load_chip("pcm", wires_segment_resistance_ohm=1.0, coding_scheme="sign")
    assert wires.has_wires(chip)  # tests/test_coding_composition.py models it


def test_a_card_without_wires_has_ideal_wires_and_its_toml_is_unchanged() -> None:
    chip = asim.load_chip("pcm")
    assert chip.wires is None and not wires.has_wires(chip)
    assert "[wires]" not in chip.to_toml()  # results files record the card as before
    zero = asim.load_chip("pcm", wires_segment_resistance_ohm=0.0)
    assert zero.wires == asim.cards.Wires(0.0) and not wires.has_wires(zero)
    assert asim.cards.chip_from_toml(zero.to_toml()) == zero


# ------------------------------------------------------------------------ the tiles


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(48, 40), nn.ReLU(), nn.Linear(40, 10))


def programmed_outputs(chip: asim.Chip, instances: int = 1) -> torch.Tensor:
    amodel = asim.convert(mlp(), chip)
    asim.program(amodel, seed=0, instances=instances)
    asim.drift(amodel, 3600.0)
    x = torch.rand(16, 48, generator=torch.Generator().manual_seed(5))
    amodel.eval()
    with torch.no_grad(), asim.instances_folded(amodel):
        return amodel(x.repeat(instances, 1))


def test_zero_wire_resistance_is_bit_identical_and_takes_the_untouched_path() -> None:
    card = asim.load_chip("pcm", mapping_tile_rows=32, mapping_tile_cols=32)
    zero = card.replace(wires_segment_resistance_ohm=0.0)
    assert torch.equal(programmed_outputs(card), programmed_outputs(zero))
    g = torch.rand(2, 2, 40, 48)
    layout = asim.convert(nn.Linear(48, 40), zero).tile.layout
    assert wires.conductances_seen(zero, layout, g) is g
    w = g[:, 0]
    assert wires.weights_seen(zero, layout, w) is w
    live = asim.convert(mlp(), zero)  # training mode: the live tile
    x = torch.rand(8, 48, generator=torch.Generator().manual_seed(6))
    assert torch.equal(live(x), asim.convert(mlp(), card)(x))


def ideal_output_ratio(tile: int, g_max_us: float, r: float = 5.0) -> float:
    """Mean output with wire resistance r over the mean output without, on the ideal card,
    for a positive 128 × 128 layer on tiles of ``tile`` × ``tile``."""
    layer = nn.Linear(128, 128, bias=False)
    with torch.no_grad():
        layer.weight.uniform_(0.0, 1.0, generator=torch.Generator().manual_seed(0))
    x = torch.rand(32, 128, generator=torch.Generator().manual_seed(1))
    outputs = []
    for resistance in (0.0, r):
        chip = asim.load_chip("ideal", mapping_tile_rows=tile, mapping_tile_cols=tile,
                              conductance_g_max_uS=g_max_us,
                              wires_segment_resistance_ohm=resistance)
        analog = asim.convert(layer, chip)
        asim.program(analog, seed=0)
        analog.eval()
        with torch.no_grad():
            outputs.append(float(analog(x).mean()))
    return outputs[1] / outputs[0]


def test_ir_drop_lowers_outputs_more_on_larger_tiles_and_conductances() -> None:
    by_tile = [ideal_output_ratio(tile, 25.0) for tile in (16, 32, 64, 128)]
    assert 1.0 > by_tile[0] > by_tile[1] > by_tile[2] > by_tile[3] > 0.0, by_tile
    by_g_max = [ideal_output_ratio(64, g) for g in (5.0, 10.0, 25.0)]
    assert 1.0 > by_g_max[0] > by_g_max[1] > by_g_max[2] > 0.0, by_g_max


def test_each_device_of_each_tile_of_each_instance_has_its_own_drop() -> None:
    chip = asim.load_chip("pcm", mapping_tile_rows=32, mapping_tile_cols=24,
                          wires_segment_resistance_ohm=20.0)
    amodel = asim.convert(nn.Linear(48, 40), chip)  # 2 row chunks × 2 column groups
    asim.program(amodel, seed=0, instances=3)
    tile = amodel.tile
    g = tile.g_programmed  # (K, D, out, rows) µS
    expected = torch.empty_like(tile.w_effective)
    span = chip.conductance.g_max_uS - chip.conductance.g_min_uS
    for k in range(3):
        for a, b in tile.layout.row_chunks:
            for c, d in tile.layout.column_groups:
                pair = [ir_drop.effective_conductances(g[k, device, c:d, a:b].T.double(),
                                                       20.0 * 1e-6).T for device in (0, 1)]
                expected[k, c:d, a:b] = ((pair[0] - pair[1]) / span).float()
    torch.testing.assert_close(tile.w_effective, expected, rtol=1e-5, atol=1e-6)
    assert not torch.equal(tile.w_effective[0], tile.w_effective[1])  # programming noise


def test_ir_drop_works_with_several_instances() -> None:
    chip = asim.load_chip("pcm", wires_segment_resistance_ohm=30.0)
    with_wires = programmed_outputs(chip, instances=3).reshape(3, 16, 10)
    without = programmed_outputs(chip.replace(wires_segment_resistance_ohm=0.0),
                                 instances=3).reshape(3, 16, 10)
    alone = programmed_outputs(chip, instances=1)  # instance 0 of three is instance 0 alone
    torch.testing.assert_close(with_wires[0], alone, rtol=0, atol=1e-5)
    for k in range(3):
        assert with_wires[k].abs().mean() < without[k].abs().mean()


def test_a_convolution_on_several_tiles_sees_the_drop() -> None:
    conv = nn.Conv2d(8, 12, 3, padding=1)
    with torch.no_grad():
        conv.weight.uniform_(0.0, 1.0, generator=torch.Generator().manual_seed(0))
    x = torch.rand(2, 8, 6, 6, generator=torch.Generator().manual_seed(1))
    outputs = []
    for r in (0.0, 50.0):  # 36 rows (4 channels × 3 × 3) × 8 outputs per tile: 2 × 2 tiles
        chip = asim.load_chip("ideal", mapping_tile_rows=36, mapping_tile_cols=8,
                              mapping_weight_scaling="column", wires_segment_resistance_ohm=r)
        analog = asim.convert(conv, chip)
        assert analog.tile.layout.tile_count == 4
        asim.program(analog, seed=0)
        analog.eval()
        with torch.no_grad():
            outputs.append(analog(x))
    assert outputs[1].shape == outputs[0].shape
    assert 0.5 < float(outputs[1].sum() / outputs[0].sum()) < 1.0


def test_a_live_tile_with_wires_trains() -> None:
    chip = asim.load_chip("pcm", wires_segment_resistance_ohm=30.0)
    amodel = asim.convert(mlp(), chip)
    x = torch.rand(8, 48, generator=torch.Generator().manual_seed(7))
    amodel(x).square().sum().backward()
    grads = [p.grad for p in amodel.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(grad).all() for grad in grads)
    assert any(bool(grad.abs().sum() > 0) for grad in grads)


def test_the_aihwkit_backend_refuses_wire_resistance() -> None:
    pytest.importorskip("aihwkit")
    from analogsim.backends.aihwkit_backend import AihwkitMappingError, rpu_config

    with pytest.raises(AihwkitMappingError, match=r"wires\.segment_resistance_ohm = 1\.0"):
        rpu_config(asim.load_chip("pcm", wires_segment_resistance_ohm=1.0))


# ------------------------------------------------------------------------ the page
