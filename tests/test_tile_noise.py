"""Tile-level noise through convert / program / drift, against independent weight-space models.

Every expected value here is computed from the digital weights with code that does not use
analogsim's tile (explicit per-device weight noise, F.linear / F.conv2d), so the output-space
sampler of the tile is checked against its weight-space definition (METHODS.md §14, DESIGN).

Standard errors (SE) used for the bounds:

- SE of a sample mean: σ/√n.
- SE of a sample variance of a normal sample: σ²·√(2/(n−1)); of a difference of two
  independent sample variances: σ²·√(4/(n−1)).
- SE of a sample std of a normal sample: σ/√(2(n−1)).
"""

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from quiet_card import quiet_chip
from scipy import stats
from torch import nn

import analogsim as asim
from analogsim.conversion import analog_layers
from analogsim.seeding import make_generator
from analogsim.tiles.programmed import drift_exponents_of

SE_BOUND = 5.0
G_MAX = 25.0  # µS, the pcm card


def seeded(module: nn.Module, seed: int) -> nn.Module:
    """``module`` with weights and bias redrawn from an explicit generator."""
    generator = make_generator(100, seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    return module


def bias_of(layer: nn.Module) -> torch.Tensor:
    """The bias shaped to broadcast over one output sample."""
    spatial = 2 if isinstance(layer, nn.Conv2d) else 0
    return layer.bias.detach().reshape(-1, *[1] * spatial)


def the_layer(model: nn.Module):
    (_, layer), *rest = analog_layers(model)
    assert not rest
    return layer


# ------------------------------------------------ one-shot device state through the tile

LEVELS = (0.2, 0.6, 1.0)  # |W|/max|W| of the weights below: g_T = 5, 15, 25 µS


def level_weights(out: int, rows: int, seed: int) -> torch.Tensor:
    """(out, rows) weights ±level, max|W| = 1 exactly, each level on about a third."""
    generator = make_generator(101, seed)
    index = torch.randint(0, len(LEVELS), (out, rows), generator=generator)
    sign = torch.randint(0, 2, (out, rows), generator=generator) * 2 - 1
    weight = torch.tensor(LEVELS)[index] * sign
    weight[0, 0] = 1.0
    return weight


def pcm_sigma(g_target: float) -> float:
    """σ_prog = c0 + c1 (g_T/g_max) + c2 (g_T/g_max)², c = [0.26348, 1.9650, −1.1731] µS."""
    x = g_target / G_MAX
    return 0.26348 + 1.9650 * x - 1.1731 * x * x


def test_programmed_pcm_tile_statistics() -> None:
    # Programming error and drift exponents of the pcm card, drawn through program().
    digital = nn.Linear(400, 500, bias=False)
    with torch.no_grad():
        digital.weight.copy_(level_weights(500, 400, 0))
    analog = asim.program(asim.convert(digital, "pcm").eval(), seed=9)
    tile = the_layer(analog).tile
    weight = digital.weight.detach()
    active = torch.where(weight > 0, tile.g_programmed[0, 0], tile.g_programmed[0, 1])
    idle = torch.where(weight > 0, tile.g_programmed[0, 1], tile.g_programmed[0, 0])
    exponents = drift_exponents_of(tile)
    nu = torch.where(weight > 0, exponents[0, 0], exponents[0, 1])
    for level in LEVELS:
        g_target = level * G_MAX
        chosen = weight.abs() == level
        n = int(chosen.sum())
        g, sigma = active[chosen].double(), pcm_sigma(g_target)
        assert abs(g.std().item() - sigma) < SE_BOUND * sigma / math.sqrt(2 * (n - 1))
        assert abs(g.mean().item() - g_target) < SE_BOUND * sigma / math.sqrt(n)
        # ν = |μ_ν + σ_ν N| (folded normal) with the moments of METHODS.md §14 at g_T.
        log_g = math.log(level)
        mu = min(max(-0.0155 * log_g + 0.0244, 0.049), 0.1)
        sd = min(max(-0.0125 * log_g - 0.0059, 0.008), 0.045)
        f_mean, f_var = (float(v) for v in stats.foldnorm(mu / sd, scale=sd).stats("mv"))
        assert abs(nu[chosen].double().mean().item() - f_mean) < SE_BOUND * math.sqrt(f_var / n)
    # The idle device of each pair targets 0 µS: σ_prog(0) = c0, clamped at 0 (half are 0).
    assert (idle >= 0).all()
    zero_fraction = (idle == 0).double().mean().item()
    assert abs(zero_fraction - 0.5) < SE_BOUND * math.sqrt(0.25 / idle.numel())


def test_drift_and_read_noise_through_the_tile() -> None:
    # No programming error; drift exactly g_prog (t/t0)^(−ν); then 1/f read noise at 1 h.
    digital = nn.Linear(400, 500, bias=False)
    with torch.no_grad():
        digital.weight.copy_(level_weights(500, 400, 1))
    no_read = asim.load_chip("pcm", programming_law="none", read_noise_law="none")
    analog = asim.program(asim.convert(digital, no_read).eval(), seed=10)
    asim.drift(analog, 3600.0)
    tile = the_layer(analog).tile
    g, nu = tile.g_programmed[0], drift_exponents_of(tile)[0]
    want = (g[0] * (3620.0 / 20.0) ** -nu[0] - g[1] * (3620.0 / 20.0) ** -nu[1]) / G_MAX
    torch.testing.assert_close(tile.w_effective[0], want, rtol=1e-6, atol=1e-7)

    # ν = 0 (drift_scale 0) isolates the read noise: σ = g Q_s(g) · √ln((t + t_read)/(2 t_read)).
    read_only = asim.load_chip("pcm", programming_law="none", drift_scale=0.0)
    analog = asim.program(asim.convert(digital, read_only).eval(), seed=11)
    asim.drift(analog, 3600.0)
    weight = digital.weight.detach()
    error = (the_layer(analog).tile.w_effective[0] - weight).double()  # max|W| = 1
    factor = math.sqrt(math.log((3600.0 + 20.0 + 250e-9) / (2 * 250e-9)))
    for level in LEVELS:
        chosen = weight.abs() == level
        n = int(chosen.sum())
        sigma = level * min(0.0088 / level**0.65, 0.2) * factor  # in units of g_max
        assert abs(error[chosen].std().item() - sigma) < SE_BOUND * sigma / math.sqrt(2 * (n - 1))
        assert abs(error[chosen].mean().item()) < SE_BOUND * sigma / math.sqrt(n)


def test_read_noise_without_power_law_drift_at_time_zero() -> None:
    chip = asim.load_chip("pcm", drift_law="none")
    analog = asim.program(asim.convert(nn.Linear(4, 3), chip).eval(), seed=0)
    asim.drift(analog, 0.0)
    assert torch.isfinite(the_layer(analog).tile.w_effective).all()


# ------------------------------------------------------------ per-read noise: weight space


def tile_scales(weight: torch.Tensor, kernel: int, tile_rows: int, tile_cols: int) -> torch.Tensor:
    """max|W| of the tile each weight sits on, shape (out, rows); whole channels per tile."""
    out, rows = weight.shape
    rows_per_chunk = (tile_rows // kernel) * kernel
    scales = torch.empty_like(weight)
    for a in range(0, rows, rows_per_chunk):
        for c in range(0, out, tile_cols):
            block = weight[c : c + tile_cols, a : a + rows_per_chunk]
            scales[c : c + tile_cols, a : a + rows_per_chunk] = block.abs().max()
    return scales


def device_conductances(w_normalised: torch.Tensor, pair: str) -> torch.Tensor:
    """(D, out, rows) µS for g_min = 0: g⁺ = w⁺ g_max, g⁻ = w⁻ g_max, or (w + 1)/2 g_max."""
    if pair == "differential":
        return torch.stack([w_normalised.clamp(min=0), (-w_normalised).clamp(min=0)]) * G_MAX
    return ((w_normalised + 1) / 2 * G_MAX).unsqueeze(0)


def device_noise_std(g: torch.Tensor, kind: str, sigma: float) -> torch.Tensor:
    """Per-read std of each device, µS: σ_a (g_max − g_min) additive, σ_m g multiplicative."""
    return torch.full_like(g, sigma * G_MAX) if kind == "additive" else sigma * g


def weight_from_devices(g: torch.Tensor, scales: torch.Tensor, pair: str) -> torch.Tensor:
    """W = S (g⁺ − g⁻)/g_range, or S (2 g/g_range − 1); g (..., D, out, rows)."""
    if pair == "differential":
        return scales * (g[..., 0, :, :] - g[..., 1, :, :]) / G_MAX
    return scales * (2 * g[..., 0, :, :] / G_MAX - 1)


def weight_variance(layer: nn.Module, chip: asim.Chip, kind: str, sigma: float) -> torch.Tensor:
    """Var(ΔW) per weight in output units, shape of ``layer.weight``.

    Differential pair: ΔW = S (Δg⁺ − Δg⁻)/g_range, so Var = 2 σ_a² S² (additive) and
    σ_m² (g⁺² + g⁻²) S²/g_range² (multiplicative); single device: ΔW = 2 S Δg/g_range.
    """
    weight = layer.weight.detach().reshape(layer.weight.shape[0], -1)
    kernel = math.prod(layer.kernel_size) if isinstance(layer, nn.Conv2d) else 1
    mapping, pair = chip.mapping, chip.conductance.pair
    scales = tile_scales(weight, kernel, mapping.tile_rows, mapping.tile_cols)
    g = device_conductances(weight / scales, pair)
    std = device_noise_std(g, kind, sigma)
    gain = 1.0 if pair == "differential" else 2.0
    variance = (scales * gain / G_MAX) ** 2 * (std**2).sum(dim=0)
    return variance.reshape(layer.weight.shape)


def apply_weight(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The digital layer's map x → W x (no bias) with another weight of the same shape."""
    if isinstance(layer, nn.Linear):
        return F.linear(x, weight)
    return F.conv2d(x, weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)


def monte_carlo_outputs(
    layer: nn.Module, chip: asim.Chip, x: torch.Tensor, kind: str, sigma: float, draws: int
) -> torch.Tensor:
    """(draws, *output) for one input x (1, ...): explicit per-device noise on every weight."""
    weight = layer.weight.detach()
    matrix = weight.reshape(weight.shape[0], -1)
    kernel = math.prod(layer.kernel_size) if isinstance(layer, nn.Conv2d) else 1
    pair = chip.conductance.pair
    scales = tile_scales(matrix, kernel, chip.mapping.tile_rows, chip.mapping.tile_cols)
    g = device_conductances(matrix / scales, pair)
    noise = torch.randn((draws, *g.shape), generator=make_generator(200, draws))
    noisy = weight_from_devices(g + device_noise_std(g, kind, sigma) * noise, scales, pair)
    weights = noisy.reshape(draws, *weight.shape)  # (M, out, ...)
    if isinstance(layer, nn.Linear):
        return torch.einsum("moi,i->mo", weights, x[0])
    # One grouped convolution for all M draws: M·groups groups over x repeated M times.
    folded = F.conv2d(
        x.repeat(1, draws, 1, 1),
        weights.reshape(draws * weight.shape[0], *weight.shape[1:]),
        None,
        layer.stride,
        layer.padding,
        layer.dilation,
        draws * layer.groups,
    )
    return folded.reshape(draws, weight.shape[0], *folded.shape[2:])


LAYERS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], dict]] = {
    "linear": (lambda: nn.Linear(16, 4), (16,), {}),
    "linear-tiled": (
        lambda: nn.Linear(20, 6),
        (20,),
        {"mapping_tile_rows": 8, "mapping_tile_cols": 4},
    ),
    "conv": (lambda: nn.Conv2d(3, 4, 3, padding=1), (3, 5, 5), {}),
    "conv-grouped": (
        lambda: nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2),
        (4, 6, 6),
        {},
    ),
    "conv-tiled": (lambda: nn.Conv2d(3, 4, 3, padding=1), (3, 5, 5), {"mapping_tile_rows": 18}),
}

PER_READ_CASES = [
    # (layer, kind, pair, mode)
    ("linear", "additive", "differential", "programmed"),
    ("linear", "multiplicative", "differential", "programmed"),
    ("linear", "additive", "single", "programmed"),
    ("linear", "multiplicative", "single", "programmed"),
    ("linear", "multiplicative", "differential", "live"),
    ("linear-tiled", "additive", "differential", "programmed"),
    ("linear-tiled", "multiplicative", "differential", "programmed"),
    ("conv", "additive", "differential", "programmed"),
    ("conv", "multiplicative", "differential", "programmed"),
    ("conv", "multiplicative", "single", "programmed"),
    ("conv-grouped", "additive", "differential", "programmed"),
    ("conv-grouped", "multiplicative", "differential", "programmed"),
    ("conv-grouped", "additive", "differential", "live"),
    ("conv-tiled", "multiplicative", "differential", "programmed"),
]
SIGMA = {"additive": 0.02, "multiplicative": 0.05}
FORWARDS = 20_000


@pytest.mark.parametrize(
    ("layer_name", "kind", "pair", "mode"),
    PER_READ_CASES,
    ids=["-".join(c) for c in PER_READ_CASES],
)
def test_per_read_noise_equals_weight_space_noise(
    layer_name: str, kind: str, pair: str, mode: str
) -> None:
    factory, input_shape, mapping = LAYERS[layer_name]
    sigma = SIGMA[kind]
    digital = seeded(factory(), 1)
    chip = quiet_chip(conductance_pair=pair, **{f"per_read_noise_{kind}_std": sigma}, **mapping)
    analog = asim.convert(digital, chip)
    assert (the_layer(analog).tile.layout.tile_count > 1) == bool(mapping)  # tiled cases tile
    if mode == "programmed":
        analog.eval()
        asim.program(analog, seed=3)
    else:
        analog.train()
    x = torch.randn((1, *input_shape), generator=make_generator(300))
    with torch.no_grad():
        outputs = analog(x.expand(FORWARDS, *input_shape)) - bias_of(digital)
        ideal = apply_weight(digital, x, digital.weight.detach())[0]
    n = outputs.shape[0]

    # Analytic weight-space variance Σ_j Var(ΔW_ij) x_j², computed with the layer's own op.
    variance = apply_weight(digital, x**2, weight_variance(digital, chip, kind, sigma))[0]
    assert (variance > 0).all()
    std = variance.sqrt()
    assert ((outputs.mean(0) - ideal).abs() < SE_BOUND * std / math.sqrt(n)).all()
    sample_var = outputs.var(0)
    assert ((sample_var - variance).abs() < SE_BOUND * variance * math.sqrt(2 / (n - 1))).all()

    # Monte Carlo of explicit per-device weight noise: same law (two-sample test).
    reference = monte_carlo_outputs(digital, chip, x, kind, sigma, FORWARDS)
    assert reference.shape == outputs.shape
    assert ((reference.mean(0) - outputs.mean(0)).abs() < SE_BOUND * std * math.sqrt(2 / n)).all()
    difference = (sample_var - reference.var(0)).abs()
    assert (difference < SE_BOUND * variance * math.sqrt(4 / (n - 1))).all()


# ------------------------------------------------------------------- output noise and ADC


@pytest.mark.parametrize(
    ("layer_name", "input_scaling"),
    [("linear", "abs_max"), ("linear", "none"), ("conv-grouped", "none")],
    ids=["linear-absmax", "linear-none", "conv-grouped-none"],
)
def test_output_noise_std_in_output_units(layer_name: str, input_scaling: str) -> None:
    card_std = 0.1
    factory, input_shape, _ = LAYERS[layer_name]
    digital = seeded(factory(), 2)
    chip = quiet_chip(output_noise_std=card_std, dac_input_scaling=input_scaling)
    analog = asim.program(asim.convert(digital, chip).eval(), seed=4)
    x = 3 * torch.randn((1, *input_shape), generator=make_generator(301))
    with torch.no_grad():
        outputs = analog(x.expand(FORWARDS, *input_shape)) - bias_of(digital)
        ideal = apply_weight(digital, x, digital.weight.detach())[0]
    # Output noise is std · max|W| (· max|x| with abs-max input scaling) in output units.
    scale = digital.weight.abs().max().item()
    if input_scaling == "abs_max":
        scale *= x.abs().max().item()
    sigma = card_std * scale
    n = outputs.shape[0]
    assert ((outputs.std(0) - sigma).abs() < SE_BOUND * sigma / math.sqrt(2 * (n - 1))).all()
    assert ((outputs.std(0) - sigma).abs() < 0.03 * sigma).all()
    assert ((outputs.mean(0) - ideal).abs() < SE_BOUND * sigma / math.sqrt(n)).all()


@pytest.mark.parametrize("mode", ["programmed", "live"], ids=["programmed", "live"])
def test_adc_clips_to_bound_times_scale(mode: str) -> None:
    chip = quiet_chip(adc_bits=9, dac_input_scaling="abs_max")
    bound, step = chip.adc.bound, 2 * chip.adc.bound / (2**9 - 2)
    digital = nn.Linear(32, 3)
    with torch.no_grad():
        digital.weight[0] = 0.5  # normalised output 32 > bound 12: clipped high
        digital.weight[1] = -0.5  # clipped low
        digital.weight[2] = 0.05 * torch.tensor([1.0, -1.0]).repeat(16)  # ≈ 0: not clipped
        digital.weight[2, 0] = 0.35
        digital.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    analog = asim.convert(digital, chip)
    if mode == "programmed":
        asim.program(analog.eval(), seed=0)
    x = torch.full((2, 32), 2.0)
    x[1, 0] = 4.0  # max|x| = 4 for the second vector
    with torch.no_grad():
        y = analog(x)
    max_w, max_x = 0.5, x.abs().amax(dim=1)
    torch.testing.assert_close(y[:, 0], bound * max_w * max_x + 0.1)
    torch.testing.assert_close(y[:, 1], -bound * max_w * max_x - 0.2)
    # The unclipped output is the ideal one up to half an ADC step (in output units).
    ideal = digital(x)[:, 2].detach()
    assert ((y[:, 2] - ideal).abs() <= step / 2 * max_w * max_x + 1e-6).all()
    assert (digital(x)[:, :2].detach().abs() > y[:, :2].abs()).all()


# ------------------------------------------------------------------------------ ideal card


class Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16, bias=False), nn.Tanh(), nn.Linear(16, 5)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Cnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8, bias=False),  # depthwise
            nn.ReLU(),
            nn.Conv2d(8, 12, (3, 1), stride=(1, 2), padding=(1, 0), groups=4),  # grouped
            nn.ReLU(),
            nn.Conv2d(12, 6, 1, bias=False),
        )
        self.head = nn.Linear(6 * 6 * 3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


@pytest.mark.parametrize(
    ("factory", "input_shape"),
    [(Mlp, (20,)), (Cnn, (3, 12, 12))],
    ids=["mlp", "cnn"],
)
def test_ideal_card_reproduces_digital_model(
    factory: Callable[[], nn.Module], input_shape: tuple[int, ...]
) -> None:
    digital = seeded(factory(), 3).eval()
    x = torch.randn((8, *input_shape), generator=make_generator(302))
    with torch.no_grad():
        want = digital(x)
        analog = asim.convert(digital, "ideal").eval()
        assert len(list(analog_layers(analog))) == len(
            [m for m in digital.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
        )
        before = analog(x)
        asim.program(analog, seed=0, instances=3)
        with asim.instances_folded(analog):
            after = analog(x.repeat(3, *[1] * len(input_shape)))
    assert (before - want).abs().max() <= 1e-5
    assert (after - want.repeat(3, 1)).abs().max() <= 1e-5


# ------------------------------------------------------------------- drift compensation


def drift_model(method: str) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    digital = seeded(nn.Linear(64, 48), 4)
    x = torch.randn(256, 64, generator=make_generator(303))
    analog = asim.convert(digital, asim.load_chip("pcm", drift_compensation_method=method))
    asim.program(analog.eval(), seed=5)
    return digital, analog, x


def mean_abs_output(analog: nn.Module, digital: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return (analog(x) - digital.bias).abs().mean().item()


def test_global_drift_compensation_restores_output_magnitude() -> None:
    t_day = 86400.0
    digital, compensated, x = drift_model("global")
    _, uncompensated, _ = drift_model("none")
    start = mean_abs_output(compensated, digital, x)
    assert mean_abs_output(uncompensated, digital, x) == pytest.approx(start, rel=1e-6)
    asim.drift(compensated, t_day)
    asim.drift(uncompensated, t_day)
    # Same seed, same card physics: both hold the same drifted conductances.
    tile_c, tile_u = the_layer(compensated).tile, the_layer(uncompensated).tile
    torch.testing.assert_close(tile_c.w_effective, tile_u.w_effective, rtol=0, atol=0)

    # Uncompensated: |y| shrinks as (t/t0)^(−ν). The noise-free prediction from the programmed
    # conductances and exponents, and the first-order (t/t0)^(−ν̄) with the conductance-weighted
    # mean exponent ν̄ (the read noise, output noise and ADC spread the measured ratio a little).
    ratio_u = mean_abs_output(uncompensated, digital, x) / start
    t_ratio = (t_day + 20.0) / 20.0
    g, nu = tile_u.g_programmed[0].float(), drift_exponents_of(tile_u)[0]
    w0 = (g[0] - g[1]) / G_MAX
    wt = (g[0] * t_ratio ** -nu[0] - g[1] * t_ratio ** -nu[1]) / G_MAX
    exact = ((x @ wt.T).abs().mean() / (x @ w0.T).abs().mean()).item()
    nu_bar = ((g * nu).sum() / g.sum()).item()
    assert ratio_u == pytest.approx(exact, rel=0.03)
    assert ratio_u == pytest.approx(t_ratio**-nu_bar, rel=0.1)
    assert ratio_u < 0.8

    # Compensated: back within a few % of t = 0.
    ratio_c = mean_abs_output(compensated, digital, x) / start
    assert ratio_c == pytest.approx(1.0, abs=0.05)
    alpha = tile_c.compensation_factor
    assert alpha.shape == (1, 1, 48) and (alpha == alpha[0, 0, 0]).all()  # one factor per tile
    assert alpha[0, 0, 0].item() == pytest.approx(ratio_c / ratio_u, rel=0.02)


# -------------------------------------------------------------------- instances and seeds


def programmed(
    factory: Callable[[], nn.Module], chip: asim.Chip, seed: int, instances
) -> nn.Module:
    analog = asim.convert(seeded(factory(), 5), chip).eval()
    asim.program(analog, seed=seed, instances=instances)
    asim.drift(analog, 3600.0)
    return analog


INSTANCE_LAYERS = {
    "linear": (lambda: nn.Linear(24, 10), (24,)),
    "conv-grouped": (lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2), (4, 6, 6)),
}


@pytest.mark.parametrize("layer_name", list(INSTANCE_LAYERS), ids=list(INSTANCE_LAYERS))
@pytest.mark.parametrize(("k", "count"), [(0, 3), (2, 4)], ids=["0of3", "2of4"])
def test_instance_k_of_k_equals_lone_instance(layer_name: str, k: int, count: int) -> None:
    factory, input_shape = INSTANCE_LAYERS[layer_name]
    chip = asim.load_chip(
        "pcm", per_read_noise_additive_std=0.01, per_read_noise_multiplicative_std=0.01
    )
    together = programmed(factory, chip, 7, count)
    alone = programmed(factory, chip, 7, [k])
    tile_t, tile_a = the_layer(together).tile, the_layer(alone).tile
    for name in ("g_programmed", "w_effective", "compensation_factor"):
        assert torch.equal(getattr(tile_t, name)[k], getattr(tile_a, name)[0]), name
    assert torch.equal(drift_exponents_of(tile_t)[k], drift_exponents_of(tile_a)[0])
    x = torch.randn((5, *input_shape), generator=make_generator(304))
    with torch.no_grad(), asim.instances_folded(together):
        y_t = together(x.repeat(count, *[1] * len(input_shape)))
        y_a = alone(x)
    assert torch.equal(y_t[k * 5 : (k + 1) * 5], y_a)


def test_instance_of_a_tiled_convolution_equals_lone_instance() -> None:
    # Several row chunks and column groups, per-column scales and compensation: the
    # convolution runs its K instances one at a time through per-instance slices of the plan.
    chip = asim.load_chip(
        "pcm", mapping_tile_rows=18, mapping_tile_cols=4, mapping_weight_scaling="column",
        drift_compensation_method="per_column", per_read_noise_additive_std=0.01,
        per_read_noise_multiplicative_std=0.02,
    )
    factory = lambda: nn.Conv2d(6, 10, 3, padding=1)  # noqa: E731
    together, alone = programmed(factory, chip, 3, 3), programmed(factory, chip, 3, [1])
    assert len(the_layer(alone).tile.layout.row_chunks) == 3
    x = torch.randn((4, 6, 8, 8), generator=make_generator(306))
    with torch.no_grad(), asim.instances_folded(together):
        assert torch.equal(together(x.repeat(3, 1, 1, 1))[4:8], alone(x))


def test_same_seed_same_chip_different_seed_different_chip() -> None:
    factory, input_shape = INSTANCE_LAYERS["linear"]
    chip = asim.load_chip("pcm", per_read_noise_additive_std=0.01)
    first, again, other = (programmed(factory, chip, s, 2) for s in (7, 7, 8))
    x = torch.randn((5, *input_shape), generator=make_generator(305)).repeat(2, 1)
    with torch.no_grad(), asim.instances_folded(first), asim.instances_folded(again), \
            asim.instances_folded(other):
        y_first, y_again, y_other = first(x), again(x), other(x)
    tiles = [the_layer(m).tile for m in (first, again, other)]
    assert torch.equal(tiles[0].g_programmed, tiles[1].g_programmed)
    assert torch.equal(tiles[0].w_effective, tiles[1].w_effective)
    assert torch.equal(y_first, y_again)
    assert not torch.equal(tiles[0].g_programmed, tiles[2].g_programmed)
    assert not torch.equal(y_first, y_other)
    # Instances of one chip differ from each other too.
    assert not torch.equal(tiles[0].g_programmed[0], tiles[0].g_programmed[1])


FUSED_CLAMP_CONVS = {
    "conv1d": (lambda: nn.Conv1d(4, 6, 3, padding=1), (4, 16)),
    "conv2d strided dilated": (lambda: nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2),
                               (4, 12, 12)),
    "conv2d grouped": (lambda: nn.Conv2d(4, 6, 3, groups=2, bias=False), (4, 9, 9)),
    "conv2d same": (lambda: nn.Conv2d(4, 6, 3, padding="same"), (4, 9, 9)),
    "conv2d reflect": (lambda: nn.Conv2d(4, 6, 3, padding=1, padding_mode="reflect"),
                       (4, 9, 9)),
    "conv3d": (lambda: nn.Conv3d(3, 4, 3, padding=1), (3, 5, 5, 5)),
}


@pytest.mark.parametrize("name", list(FUSED_CLAMP_CONVS), ids=list(FUSED_CLAMP_CONVS))
def test_adc_clipping_in_the_convolution_kernel_equals_clipping_after_rounding(
    name: str,
) -> None:
    # Without forward noise, inference clamps to the ADC's integer ±limit inside the
    # convolution (oneDNN where it takes the geometry) and rounds after; with autograd on,
    # the tile rounds, then clips. The two must agree, and the bound must be reached.
    factory, input_shape = FUSED_CLAMP_CONVS[name]
    chip = quiet_chip(dac_bits=7, dac_input_scaling="abs_max", adc_bits=5, adc_bound=0.5)
    model = seeded(factory(), 5)
    analog = asim.convert(model, chip)
    asim.program(analog.eval(), seed=0)
    x = torch.randn((3, *input_shape), generator=make_generator(307))
    with torch.inference_mode():
        fused = analog(x)
    with torch.enable_grad():
        unfused = analog(x.clone().requires_grad_()).detach()
    torch.testing.assert_close(fused, unfused, rtol=0, atol=0)
    tile = the_layer(analog).tile
    spatial = [1] * (x.dim() - 2)
    bias = 0 if model.bias is None else model.bias.detach().reshape(-1, *spatial)
    max_x = x.abs().amax(dim=tuple(range(1, x.dim()))).reshape(-1, 1, *spatial)
    full_scale = chip.adc.bound * tile.weight_scale.amax() * max_x  # the ADC bound, in outputs
    assert bool(((fused - bias).abs() >= full_scale * (1 - 1e-5)).any()), "nothing clipped"
