"""Exact integer products of DAC codes (analogsim.integer_mvm) against float64 and float32.

The bounds come from the module's construction: three digit planes hold W_ij to within half a
unit of the last plane, s_i / (2·128²) with s_i = max_j |W_ij| / 127; the products of the
planes are exact; the float32 combination adds a few roundings of the result.
"""

import pytest
import torch
from torch import nn

import analogsim as asim
from analogsim.seeding import make_generator
from analogsim.tiles import integer_mvm


def weights(out: int, rows: int, seed: int) -> torch.Tensor:
    """Weights over several decades, with an all-zero row and exact ties of the first plane."""
    generator = make_generator(400, seed)
    w = torch.randn(out, rows, generator=generator) * torch.logspace(-3, 0, out).unsqueeze(1)
    w[1] = 0.0
    w[2, :8] = torch.tensor([0.5, -0.5, 1.5, 126.5, -126.5, 127.0, 63.5, 0.25]) / 127
    return w


def codes(batch: int, rows: int, seed: int) -> torch.Tensor:
    return torch.randint(-127, 128, (batch, rows), generator=make_generator(401, seed)).float()


def test_digit_planes_hold_the_matrix_to_half_a_unit_of_the_last_plane() -> None:
    w = weights(64, 300, 0)
    planes = integer_mvm.digit_planes(w)
    p0, p1, p2 = (plane.t().to(torch.float64) for plane in planes.planes)
    assert p0.abs().max() <= 127 and p1.abs().max() <= 64 and p2.abs().max() <= 64
    s = (w.abs().amax(dim=1) / 127).to(torch.float64).unsqueeze(1)
    held = s * (p0 + p1 / 128 + p2 / 128**2)
    error = (held - w.to(torch.float64)).abs()
    # half a unit of the last plane, plus float32's rounding of w / s (one ulp of |u| ≤ 127)
    assert (error <= s / (2 * 128**2) + 2**-23 * w.abs().to(torch.float64)).all()
    assert torch.equal(held[1], torch.zeros(300, dtype=torch.float64))  # zero row stays zero


@pytest.mark.parametrize(("k_count", "batch", "rows", "out"), [(1, 37, 96, 20), (3, 8, 513, 7)])
def test_matmul_is_within_the_representation_bound_of_the_exact_product(
    k_count: int, batch: int, rows: int, out: int
) -> None:
    w = torch.stack([weights(out, rows, k) for k in range(k_count)])
    x = codes(k_count * batch, rows, 1)
    y = integer_mvm.matmul(x, [integer_mvm.digit_planes(matrix) for matrix in w])
    assert y.shape == (k_count * batch, out) and y.dtype == torch.float32
    x64 = x.to(torch.float64).reshape(k_count, batch, rows)
    w64 = w.to(torch.float64)
    exact = torch.bmm(x64, w64.transpose(1, 2)).reshape(k_count * batch, out)
    s = w64.abs().amax(dim=2) / 127  # (K, out)
    abs_sum = torch.bmm(x64.abs(), w64.abs().transpose(1, 2)).reshape(k_count * batch, out)
    x_sum = x64.abs().sum(dim=2).reshape(k_count, batch, 1)
    representation = (x_sum * s.unsqueeze(1) / (2 * 128**2)).reshape(k_count * batch, out)
    bound = representation + 2**-21 * abs_sum  # float32 conversions and the combination
    assert ((y.to(torch.float64) - exact).abs() <= bound).all()


def test_a_large_analog_linear_takes_integer_products_and_agrees_with_float32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 512 rows and 128 × 512 outputs per instance: where integer products pay. ADC codes of
    # the two paths may differ at a rounding edge only: the products agree to ~1e-6.
    calls = []
    matmul = integer_mvm.matmul
    monkeypatch.setattr(integer_mvm, "matmul", lambda x, p: calls.append(len(p)) or matmul(x, p))
    torch.manual_seed(0)
    digital = nn.Linear(512, 512)
    x = torch.randn(2 * 128, 512, generator=make_generator(402))
    outputs = []
    for integer_products in (True, False):  # the card's switch, with everything else equal
        chip = asim.load_chip("pcm", output_noise_std=0.0,
                              **{"mapping.integer_products": integer_products})
        analog = asim.convert(digital, chip)
        asim.program(analog.eval(), seed=0, instances=2)
        with torch.no_grad(), asim.instances_folded(analog):
            outputs.append(analog(x))
        assert calls == [2]  # one product of two instances' planes, with integer products only
    y_integer, y_float = outputs
    differ = y_integer != y_float
    assert differ.float().mean() < 1e-3
    chip = analog.tile.chip
    adc_step = 2 * chip.adc.bound / (2**chip.adc.bits - 2)
    one_code = adc_step * analog.tile.weight_scale.amax() * x.abs().amax(dim=1, keepdim=True)
    assert ((y_integer - y_float).abs() <= one_code * 1.001).all()


def test_small_layers_and_training_keep_float32_products(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(integer_mvm, "matmul", lambda x, p: calls.append(len(p)))
    chip = asim.load_chip("pcm", **{"mapping.integer_products": True})
    big = asim.convert(nn.Linear(512, 512), chip)
    asim.program(big.eval(), seed=0)
    small = asim.convert(nn.Linear(64, 64), chip)
    asim.program(small.eval(), seed=0)
    with torch.no_grad():
        small(torch.randn(4096, 64))  # 64 rows: too few
        big(torch.randn(8, 512))  # 8 × 512 outputs: too few
    big(torch.randn(256, 512, requires_grad=True))  # autograd: float32
    big.train()(torch.randn(256, 512))  # live weights: float32
    assert calls == []
    assert integer_mvm.worth_it(128, 512, 512) and not integer_mvm.worth_it(127, 512, 512)
    w = torch.zeros(2, 512, 512)
    assert integer_mvm.applies(torch.zeros(2 * 128, 512), w)
    assert not integer_mvm.applies(torch.zeros(2 * 128, 512, dtype=torch.float64), w)


def test_the_card_decides_whether_tiles_use_integer_products() -> None:
    def stage(**overrides: object) -> bool:
        layer = asim.convert(nn.Linear(8, 8), asim.load_chip("pcm", **overrides))
        return layer.tile.stage.integer_products

    assert stage() == integer_mvm.amx_available()  # absent: where the CPU has AMX
    assert stage(**{"mapping.integer_products": True})
    assert not stage(**{"mapping.integer_products": False})
