"""Weight coding (S3, METHODS.md §13): exact round trips, decoded noise σ/(α√r), protected
signs, the r_avg formula, and coded tiles on real device cards."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import analogsim as asim
from analogsim.cards import Coding
from analogsim.conversion import analog_layers
from analogsim.errors import CardError, ConversionError
from analogsim.programming import coding_cost as model_coding_cost
from analogsim.tiles.coding import (
    PAPER_LARGE_FRACTION,
    CodingReference,
    average_reads,
    coding_cost,
    coding_reference,
    decode,
    encode,
)

SCHEMES = ["none", "sign", "adaptive_mapping", "sign+adaptive_mapping",
           "sign+adaptive_mapping+redundancy", "redundancy"]


def _weights(rows: int = 64, cols: int = 128, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=generator) * 0.1
    w[0, :8] = torch.tensor([1.5, -1.2, 0.9, -0.8, 0.0, 0.0, 1e-6, -1e-6])  # a few large ones
    return w


@pytest.mark.parametrize(("scheme", "large_range"), [
    *((scheme, "full") for scheme in SCHEMES),
    ("sign+adaptive_mapping", "above_threshold"),
    ("sign+adaptive_mapping+redundancy", "above_threshold")])
def test_encode_then_decode_without_noise_is_exact(scheme, large_range):
    coding = Coding(scheme=scheme, large_fraction=0.01, large_range=large_range, r_large=4)
    w = _weights()
    coded = encode(w, coding, coding_reference([w], coding))
    assert coded.cells.abs().max() <= 1.0
    decoded = decode(coded, average_reads(coded, coded.cells))
    torch.testing.assert_close(decoded, w, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("scheme", ["none", "sign", "sign+adaptive_mapping",
                                    "sign+adaptive_mapping+redundancy"])
def test_decoded_noise_std_is_sigma_over_alpha_root_r(scheme):
    """x̂ = x + N(0, σ²) per cell ⇒ ŵ − w has std σ/(α√r) per weight (unclamped)."""
    coding = Coding(scheme=scheme, large_fraction=0.02, r_small=2, r_large=8,
                    clamp_magnitude=False)
    w = _weights(32, 64)
    coded = encode(w, coding, coding_reference([w], coding))
    sigma, draws = 0.05, 4000
    generator = torch.Generator().manual_seed(1)
    noisy = coded.cells + sigma * torch.randn(draws, coded.cells.numel(), generator=generator)
    error = decode(coded, average_reads(coded, noisy), clamp_magnitude=False) - w
    expected = sigma / (coded.alpha * coded.copies.sqrt())
    ratio = error.std(dim=0) / expected
    assert ratio.mean() == pytest.approx(1.0, abs=0.01)  # 2048 weights × 4000 draws
    assert (ratio - 1).abs().max() < 0.1  # each weight: std of a 4000-draw std is 1.1 %
    if "adaptive_mapping" in scheme:  # small weights get the larger α
        assert coded.alpha[~coded.large].min() > coded.alpha[coded.large].max()


def test_sign_protection_never_flips_a_sign():
    coding = Coding(scheme="sign+adaptive_mapping", large_fraction=0.01)
    w = _weights()
    coded = encode(w, coding, coding_reference([w], coding))
    generator = torch.Generator().manual_seed(2)
    noisy = coded.cells + torch.randn(200, coded.cells.numel(), generator=generator)  # σ = 1
    decoded = decode(coded, average_reads(coded, noisy))
    assert (decoded * w >= 0).all()
    unprotected = encode(w, Coding(), coding_reference([w], Coding()))
    flipped = decode(unprotected, average_reads(unprotected, unprotected.cells + torch.randn(
        200, unprotected.cells.numel(), generator=generator))) * w < 0
    assert flipped.float().mean() > 0.2  # without protection σ = 1 flips many


def test_r_avg_of_the_paper():
    """r_small = 1, r_large = 10 and S3's 6,998 large of 11,164,352 weights: r_avg 1.00564."""
    w = torch.randn(11164352, generator=torch.Generator().manual_seed(3)).reshape(1, -1)
    coding = Coding(scheme="sign+adaptive_mapping+redundancy")
    assert coding.large_fraction == PAPER_LARGE_FRACTION
    coded = encode(w, coding, coding_reference([w], coding))
    assert int(coded.large.sum()) == 6998
    cost = coding_cost(coded, coding, devices=coded.cells.numel())
    assert cost.r_avg == pytest.approx((11157354 + 10 * 6998) / 11164352)
    assert round(cost.r_avg, 5) == 1.00564
    assert cost.side_bits_per_weight == 2 and coded.cells.numel() == cost.cells


def test_threshold_option_replaces_the_large_fraction():
    w = _weights()
    coding = Coding(scheme="sign+adaptive_mapping", threshold=0.5)
    reference = coding_reference([w], coding)
    assert reference == CodingReference(1.5, 0.75)
    assert int(encode(w, coding, reference).large.sum()) == int((w.abs() > 0.75).sum())


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("scope", ["tile", "layer", "global"])
def test_a_coded_model_on_the_ideal_card_reproduces_the_digital_model(mlp, scheme, scope):
    chip = asim.load_chip("ideal", **{"coding.scheme": scheme, "coding.scope": scope,
                                      "coding.large_fraction": 0.05})
    analog = asim.program(asim.convert(mlp, chip), seed=0, instances=2).eval()
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(4))
    expected = mlp(x).repeat(2, 1)
    with asim.instances_folded(analog):
        torch.testing.assert_close(analog(x.repeat(2, 1)), expected, rtol=1e-5, atol=1e-5)


def test_redundancy_on_pcm_costs_real_devices_and_averages_their_noise(mlp):
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(5))
    errors = {}
    for scheme in ("sign", "sign+redundancy"):
        chip = asim.load_chip("pcm", **{"coding.scheme": scheme, "coding.r_small": 4,
                                        "coding.r_large": 4, "output_noise.std": 0.0,
                                        "dac.bits": None, "adc.bits": None})
        analog = asim.program(asim.convert(mlp, chip), seed=0, instances=8).eval()
        cost = model_coding_cost(analog)
        assert cost.cells == sum(layer.tile.g_programmed.shape[-1]
                                 for _, layer in analog_layers(analog))  # one device row
        with asim.instances_folded(analog):
            errors[scheme] = (analog(x.repeat(8, 1)) - mlp(x).repeat(8, 1)).std()
        assert cost.devices == 2 * cost.cells  # differential pairs
    assert model_coding_cost(analog).r_avg == 4
    assert errors["sign+redundancy"] < 0.7 * errors["sign"]  # ≈ 1/√4 of the programming noise


def test_coded_tiles_round_trip_through_a_state_dict(mlp):
    chip = asim.load_chip("pcm", **{"coding.scheme": "sign+adaptive_mapping+redundancy",
                                    "coding.large_fraction": 0.05})
    analog = asim.drift(asim.program(asim.convert(mlp, chip), seed=3, instances=2), 3600.0)
    restored = asim.convert(mlp, chip)
    restored.load_state_dict(analog.state_dict())
    x = torch.randn(8, 64).repeat(2, 1)
    with asim.instances_folded(restored), asim.instances_folded(analog):
        torch.testing.assert_close(restored.eval()(x), analog.eval()(x))


def test_bad_coding_is_refused_with_the_field_named(mlp):
    with pytest.raises(CardError, match=r"coding.scheme must be 'none' or \+ joined parts"):
        asim.load_chip("pcm", **{"coding.scheme": "sign+magic"})
    with pytest.raises(CardError, match=r"coding.r_large \(2\) must be at least coding.r_small"):
        asim.load_chip("pcm", **{"coding.r_small": 3, "coding.r_large": 2})
    with pytest.raises(ConversionError, match=r"weight coding .* with per-read noise"):
        asim.convert(mlp, asim.load_chip("generic", **{"coding.scheme": "sign"}))
    two = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    global_scope = asim.load_chip("ideal", **{"coding.scope": "global"})
    mixed = asim.convert(two, global_scope, per_layer={"1": {"coding.scheme": "sign"}})
    with pytest.raises(ConversionError, match="must share one"):
        asim.program(mixed)


def test_each_cumulative_scheme_tolerates_more_channel_noise_on_digits():
    """S3 Table 1, qualitatively, on the digits MLP: at σ = 0.3 in channel units every
    cumulative step keeps more accuracy, at a cost of r_avg ≤ 1.1 for full protection."""
    from analogsim.train.reference import trained_digits_mlp

    model, data = trained_digits_mlp(seed=0, epochs=15)
    accuracy, r_avg = {}, {}
    for scheme in ("none", "sign", "sign+adaptive_mapping", "sign+adaptive_mapping+redundancy"):
        chip = asim.load_chip("channel", **{"coding.scheme": scheme, "coding.scope": "global",
                                            "coding.large_fraction": 0.01,
                                            "programming.additive_std": 0.3 / 2})
        analog = asim.program(asim.convert(model, chip), seed=0, instances=8)
        accuracy[scheme] = asim.evaluate(analog, (data.x_test, data.y_test)).accuracy
        r_avg[scheme] = model_coding_cost(analog).r_avg
    means = [a.mean() for a in accuracy.values()]
    assert means[0] + 0.2 < means[1] < means[2] - 0.03  # none ≪ sign < + adaptive mapping
    assert means[3] >= means[2] - 0.005
    assert r_avg["sign+adaptive_mapping"] == 1 and r_avg["sign+adaptive_mapping+redundancy"] < 1.1
