"""The pure physics of analogsim.physics against the formulas of METHODS.md §14.

Statistical checks draw ≥ 10⁵ devices from explicitly seeded generators and bound the error
by a stated number of standard errors (SE):

- SE of a sample mean: σ/√n.
- SE of a sample std of a normal sample: σ/√(2(n−1)); for another law with excess kurtosis
  κ: σ·√((κ + 2)/(4n)) (delta method on Var(s²) = σ⁴(κ + 2)/n).
- SE of a binomial fraction: √(p(1 − p)/n).
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from analogsim.physics import conductance, pcm, periphery, programming, rram
from analogsim.seeding import make_generator

N_DEVICES = 200_000
SE_BOUND = 5.0  # standard errors allowed on every statistical check

# METHODS.md §14: the PCM programming-noise polynomial, µS at g_max = 25 µS.
PCM_COEFFICIENTS = (0.26348, 1.9650, -1.1731)
G_MAX = 25.0

# METHODS.md §14: drift-exponent law (aihwkit PCMLikeNoiseModel).
DRIFT_LAW = {
    "mean_slope": -0.0155,
    "mean_offset": 0.0244,
    "mean_range": (0.049, 0.1),
    "std_slope": -0.0125,
    "std_offset": -0.0059,
    "std_range": (0.008, 0.045),
    "g_rel_min": 1e-7,
}
T0 = 20.0  # s
T_READ = 250e-9  # s

# The rram card (Wan et al. 2022 via aihwkit ReRamWan2022NoiseModel), g_max = 40 µS.
RRAM_TIMES = (1.0, 86400.0, 172800.0)
RRAM_COEFFICIENTS = (
    (0.348, 16.030, -43.853, 45.393, -16.815),
    (0.701, 22.086, -50.773, 47.095, -16.458),
    (0.782, 20.274, -43.507, 37.062, -11.934),
)
RRAM_G_MAX = 40.0


def pcm_sigma(g_target: float, g_max: float = G_MAX) -> float:
    """σ_prog = (c0 + c1 x + c2 x²) · g_max/25 µS, x = g_T/g_max, floored at 0 (METHODS §14)."""
    x = g_target / g_max
    c0, c1, c2 = PCM_COEFFICIENTS
    return max(c0 + c1 * x + c2 * x * x, 0.0) * g_max / 25.0


def poly_sigma(g_target: float, coefficients, g_max: float) -> float:
    x = g_target / g_max
    return max(sum(c * x**i for i, c in enumerate(coefficients)), 0.0)


def std_se(sigma: float, n: int, excess_kurtosis: float = 0.0) -> float:
    """SE of a sample std: σ·√((κ + 2)/(4n)); σ/√(2n) for a normal sample (κ = 0)."""
    return sigma * math.sqrt((excess_kurtosis + 2.0) / (4.0 * n))


# ------------------------------------------------------------------------ programming noise


def test_polynomial_std_matches_formula_and_scales_with_g_max() -> None:
    g = torch.linspace(0, 50, 101, dtype=torch.float64)
    for g_max in (25.0, 50.0):
        g_target = g.clamp(max=g_max)
        got = programming.polynomial_programming_std(g_target, PCM_COEFFICIENTS, g_max, 25.0)
        want = torch.tensor([pcm_sigma(float(v), g_max) for v in g_target], dtype=torch.float64)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # A polynomial that goes negative is floored at 0.
    floored = programming.polynomial_programming_std(g, (0.1, -1.0), 25.0, 25.0)
    assert floored.min() == 0 and floored[0] == pytest.approx(0.1)


@pytest.mark.parametrize(
    "g_target", [5.0, 10.0, 15.0, 20.0, 25.0], ids=["5uS", "10uS", "15uS", "20uS", "25uS"]
)
def test_programming_noise_std_and_mean(g_target: float) -> None:
    generator = make_generator(1, 0, int(g_target))
    target = torch.full((N_DEVICES,), g_target, dtype=torch.float64)
    g = programming.add_polynomial_programming_noise(
        target, PCM_COEFFICIENTS, G_MAX, 25.0, 1.0, generator
    )
    sigma = pcm_sigma(g_target)
    # g_T ≥ 5 µS is ≥ 8 σ from 0: the clamp at 0 changes nothing measurable.
    assert g_target / sigma > 8
    std = g.std().item()
    assert abs(std - sigma) < 0.03 * sigma  # the 3 % of the issue
    assert abs(std - sigma) < SE_BOUND * std_se(sigma, N_DEVICES)  # SE = σ/√(2(n−1))
    assert abs(g.mean().item() - g_target) < SE_BOUND * sigma / math.sqrt(N_DEVICES)


@pytest.mark.parametrize("scale", [0.5, 2.0], ids=["half", "double"])
def test_programming_noise_scale_multiplies_std(scale: float) -> None:
    target = torch.full((N_DEVICES,), 15.0, dtype=torch.float64)
    g = programming.add_polynomial_programming_noise(
        target, PCM_COEFFICIENTS, G_MAX, 25.0, scale, make_generator(2, int(10 * scale))
    )
    sigma = scale * pcm_sigma(15.0)
    assert abs(g.std().item() - sigma) < SE_BOUND * std_se(sigma, N_DEVICES)


def test_programming_noise_clamps_at_zero() -> None:
    target = torch.zeros(N_DEVICES, dtype=torch.float64)
    g = programming.add_polynomial_programming_noise(
        target, PCM_COEFFICIENTS, G_MAX, 25.0, 1.0, make_generator(3)
    )
    assert (g >= 0).all()
    # Half of the draws fall below 0 and are clamped to exactly 0: binomial SE √(p(1−p)/n).
    zero_fraction = (g == 0).double().mean().item()
    assert abs(zero_fraction - 0.5) < SE_BOUND * math.sqrt(0.25 / N_DEVICES)
    # Near 0 (g_T = 0.2 µS ≈ 0.6 σ) still nothing is negative.
    near = programming.add_polynomial_programming_noise(
        torch.full((N_DEVICES,), 0.2), PCM_COEFFICIENTS, G_MAX, 25.0, 1.0, make_generator(4)
    )
    assert (near >= 0).all() and (near == 0).any()


@pytest.mark.parametrize(
    ("additive", "multiplicative"),
    [(0.02, 0.0), (0.0, 0.05), (0.02, 0.05)],
    ids=["additive", "multiplicative", "both"],
)
def test_gaussian_programming_noise_std(additive: float, multiplicative: float) -> None:
    # σ² = (σ_a (g_max − g_min))² + (σ_m g_T)², two independent draws, no clamp.
    g_min, g_max, g_target = 2.0, 27.0, 10.0
    target = torch.full((N_DEVICES,), g_target, dtype=torch.float64)
    g = programming.add_gaussian_programming_noise(
        target, additive, multiplicative, g_min, g_max, make_generator(5)
    )
    sigma = math.hypot(additive * (g_max - g_min), multiplicative * g_target)
    assert abs(g.std().item() - sigma) < SE_BOUND * std_se(sigma, N_DEVICES)
    assert abs(g.mean().item() - g_target) < SE_BOUND * sigma / math.sqrt(N_DEVICES)


# ------------------------------------------------------------------------------- PCM drift


def drift_moments_reference(g_target: float) -> tuple[float, float]:
    """μ_ν = clip(−0.0155 ln g_rel + 0.0244, 0.049, 0.1), σ_ν = clip(−0.0125 ln g_rel − 0.0059,
    0.008, 0.045), g_rel = max(g_T/g_max, 1e−7)."""
    log_g = math.log(max(abs(g_target) / G_MAX, 1e-7))
    mean = min(max(-0.0155 * log_g + 0.0244, 0.049), 0.1)
    std = min(max(-0.0125 * log_g - 0.0059, 0.008), 0.045)
    return mean, std


def test_drift_exponent_moments_formula() -> None:
    # From g_T = 0 (floored g_rel, both clips high) to g_max (both clips low).
    values = [0.0, 1e-6, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 25.0]
    mean, std = pcm.drift_exponent_moments(
        torch.tensor(values, dtype=torch.float64), G_MAX, **DRIFT_LAW
    )
    for i, g in enumerate(values):
        want_mean, want_std = drift_moments_reference(g)
        assert mean[i].item() == pytest.approx(want_mean, abs=1e-12)
        assert std[i].item() == pytest.approx(want_std, abs=1e-12)
    assert mean[0].item() == pytest.approx(0.1) and std[0].item() == pytest.approx(0.045)
    assert mean[-1].item() == pytest.approx(0.049) and std[-1].item() == pytest.approx(0.008)


@pytest.mark.parametrize(
    "g_target",
    [0.5, 1.0, 2.5, 5.0, 12.5, 25.0],
    ids=["0.5uS", "1uS", "2.5uS", "5uS", "12.5uS", "25uS"],
)
def test_drift_exponent_distribution(g_target: float) -> None:
    mu, sigma = drift_moments_reference(g_target)
    # μ/σ ≥ ~2: the fold at 0 moves the moments only slightly, but is computed exactly anyway.
    assert mu / sigma > 1.9
    target = torch.full((N_DEVICES,), g_target, dtype=torch.float64)
    mean, std = pcm.drift_exponent_moments(target, G_MAX, **DRIFT_LAW)
    nu = pcm.draw_drift_exponents(mean, std, 1.0, make_generator(6, int(10 * g_target)))
    assert (nu >= 0).all()
    # ν = |μ + σN| is folded normal: foldnorm(c = μ/σ, scale = σ).
    folded = stats.foldnorm(mu / sigma, scale=sigma)
    f_mean, f_var, _, f_kurtosis = (float(v) for v in folded.stats(moments="mvsk"))
    f_std = math.sqrt(f_var)
    assert abs(nu.mean().item() - f_mean) < SE_BOUND * f_std / math.sqrt(N_DEVICES)
    assert abs(nu.std().item() - f_std) < SE_BOUND * std_se(f_std, N_DEVICES, f_kurtosis)


def test_drift_exponent_scale() -> None:
    mean = torch.full((1000,), 0.06, dtype=torch.float64)
    std = torch.full((1000,), 0.02, dtype=torch.float64)
    one = pcm.draw_drift_exponents(mean, std, 1.0, make_generator(7))
    two = pcm.draw_drift_exponents(mean, std, 2.0, make_generator(7))
    torch.testing.assert_close(two, 2 * one)


@pytest.mark.parametrize("t_inference", [1.0, 3600.0, 86400.0], ids=["1s", "1h", "1d"])
def test_power_law_drift_exact(t_inference: float) -> None:
    generator = make_generator(8)
    g = torch.rand(1000, generator=generator, dtype=torch.float64) * G_MAX
    nu = torch.rand(1000, generator=generator, dtype=torch.float64) * 0.1
    drifted = pcm.apply_power_law_drift(g, nu, t_inference, T0)
    # g(t) = g_prog (t/t0)^(−ν), t = t_inference + t0.
    want = g * ((t_inference + T0) / T0) ** (-nu)
    torch.testing.assert_close(drifted, want, rtol=1e-12, atol=0)
    assert (drifted <= g).all()


def test_no_drift_at_time_zero() -> None:
    g = torch.rand(100, generator=make_generator(9)) * G_MAX
    nu = torch.full((100,), 0.08)
    torch.testing.assert_close(pcm.apply_power_law_drift(g, nu, 0.0, T0), g, rtol=0, atol=0)


# -------------------------------------------------------------------------- PCM read noise


@pytest.mark.parametrize(
    ("t_inference", "factor"),
    [(0.0, 4.18), (3600.0, 4.76), (86400.0, 5.09)],
    ids=["t0", "1h", "1d"],
)
def test_read_noise_time_factor(t_inference: float, factor: float) -> None:
    # METHODS.md §14: √ln((t + t_read)/(2 t_read)), t = t_inference + 20 s.
    got = pcm.read_noise_time_factor(t_inference, T0, T_READ)
    t = t_inference + T0
    assert got == pytest.approx(math.sqrt(math.log((t + T_READ) / (2 * T_READ))), rel=1e-12)
    assert round(got, 2) == factor


def read_noise_sigma(g_prog: float, g_drift: float, factor: float) -> float:
    """σ = |g_drift| · min(0.0088 / max((g_prog/g_max)^0.65, 1e−3), 0.2) · factor."""
    q = min(0.0088 / max((abs(g_prog) / G_MAX) ** 0.65, 1e-3), 0.2)
    return abs(g_drift) * q * factor


def test_read_noise_std_formula_cap_and_floor() -> None:
    # Q_s is evaluated on g_prog, the prefactor on g_drift; Q_s is capped at 0.2.
    g_prog = torch.tensor([0.0, 1e-4, 0.05, 0.2, 1.0, 5.0, 25.0], dtype=torch.float64)
    g_drift = g_prog * 0.7
    factor = pcm.read_noise_time_factor(3600.0, T0, T_READ)
    got = pcm.one_over_f_read_noise_std(g_prog, g_drift, G_MAX, 0.0088, 0.65, 1e-3, 0.2, factor)
    want = [
        read_noise_sigma(float(a), float(b), factor) for a, b in zip(g_prog, g_drift, strict=True)
    ]
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=0)
    assert got[2].item() == pytest.approx(0.05 * 0.7 * 0.2 * factor)  # capped


@pytest.mark.parametrize("g_target", [2.5, 5.0, 12.5, 25.0], ids=["2.5uS", "5uS", "12.5uS", "25uS"])
def test_read_noise_std_at_one_hour(g_target: float) -> None:
    g_prog = torch.full((N_DEVICES,), g_target, dtype=torch.float64)
    nu = torch.full((N_DEVICES,), 0.06, dtype=torch.float64)
    g_drift = pcm.apply_power_law_drift(g_prog, nu, 3600.0, T0)
    factor = pcm.read_noise_time_factor(3600.0, T0, T_READ)
    std = pcm.one_over_f_read_noise_std(g_prog, g_drift, G_MAX, 0.0088, 0.65, 1e-3, 0.2, factor)
    g = pcm.add_read_noise(g_drift, std, 1.0, make_generator(10, int(10 * g_target)))
    sigma = read_noise_sigma(g_target, float(g_drift[0]), factor)
    assert float(g_drift[0]) / sigma > 5  # the clamp at 0 is negligible
    assert abs(g.std().item() - sigma) < 0.03 * sigma
    assert abs(g.std().item() - sigma) < SE_BOUND * std_se(sigma, N_DEVICES)
    assert abs(g.mean().item() - float(g_drift[0])) < SE_BOUND * sigma / math.sqrt(N_DEVICES)


def test_read_noise_clamps_at_zero() -> None:
    g = torch.full((N_DEVICES,), 0.1)
    noisy = pcm.add_read_noise(g, torch.full_like(g, 1.0), 1.0, make_generator(11))
    assert (noisy >= 0).all() and (noisy == 0).any()


# -------------------------------------------------------------------- conductance mapping


@pytest.mark.parametrize("levels", [2, 16, 64], ids=["2", "16", "64"])
@pytest.mark.parametrize("g_min", [0.0, 2.0], ids=["gmin0", "gmin2"])
def test_quantise_to_levels(levels: int, g_min: float) -> None:
    g_max = 25.0
    g = torch.linspace(g_min - 3, g_max + 3, 100_001, dtype=torch.float64)
    q = conductance.quantise_to_levels(g, g_min, g_max, levels)
    values = torch.unique(q)
    step = (g_max - g_min) / (levels - 1)
    assert values.numel() == levels
    want = g_min + step * torch.arange(levels, dtype=torch.float64)
    torch.testing.assert_close(values, want, rtol=0, atol=1e-9)
    inside = (g >= g_min) & (g <= g_max)
    # Nearest rounding: never more than half a step away; the nearest level is chosen.
    assert ((q - g)[inside].abs() <= step / 2 + 1e-9).all()
    distances = (g[inside, None] - want[None, :]).abs()
    nearest = want[distances.argmin(dim=1)]
    ties = (distances.min(dim=1).values - step / 2).abs() < 1e-9
    assert torch.equal(q[inside][~ties], nearest[~ties])
    # Outside the range: the end levels.
    assert (q[g < g_min] == g_min).all() and (q[g > g_max] == want[-1]).all()


@pytest.mark.parametrize(
    ("low", "high"), [(0.01, 0.0), (0.0, 0.02), (0.005, 0.03)], ids=["low", "high", "both"]
)
def test_stuck_fault_rates(low: float, high: float) -> None:
    n = 1_000_000
    faults = conductance.draw_stuck_faults((1000, 1000), low, high, make_generator(12))
    assert faults.dtype == torch.uint8 and faults.shape == (1000, 1000)
    assert set(torch.unique(faults).tolist()) <= {
        conductance.STUCK_NONE,
        conductance.STUCK_LOW,
        conductance.STUCK_HIGH,
    }
    for code, p in ((conductance.STUCK_LOW, low), (conductance.STUCK_HIGH, high)):
        fraction = (faults == code).double().mean().item()
        assert abs(fraction - p) <= SE_BOUND * math.sqrt(p * (1 - p) / n)  # binomial SE
    g = torch.rand((1000, 1000), generator=make_generator(13)) * 20 + 2
    stuck = conductance.apply_stuck_faults(g, faults, 1.0, 25.0)
    assert (stuck[faults == conductance.STUCK_LOW] == 1.0).all()
    assert (stuck[faults == conductance.STUCK_HIGH] == 25.0).all()
    healthy = faults == conductance.STUCK_NONE
    assert torch.equal(stuck[healthy], g[healthy])


@pytest.mark.parametrize("pair", ["differential", "single"], ids=["differential", "single"])
@pytest.mark.parametrize("g_min", [0.0, 3.0], ids=["gmin0", "gmin3"])
def test_weight_conductance_round_trip(pair: str, g_min: float) -> None:
    g_max = 25.0
    w = torch.rand((2, 7, 11), generator=make_generator(14), dtype=torch.float64) * 2 - 1
    w[0, 0, :3] = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    g = torch.stack([conductance.weights_to_conductances(wk, g_min, g_max, pair) for wk in w])
    assert g.shape == (2, 2 if pair == "differential" else 1, 7, 11)
    assert (g >= g_min).all() and (g <= g_max + 1e-12).all()
    back = conductance.conductances_to_weights(g, g_min, g_max, pair)
    torch.testing.assert_close(back, w, rtol=0, atol=1e-6)
    if pair == "differential":
        # One device of each pair sits at g_min; the other carries |w|.
        assert (g.min(dim=1).values == g_min).all()
        torch.testing.assert_close(g.max(dim=1).values - g_min, w.abs() * (g_max - g_min))
    else:
        torch.testing.assert_close(g[:, 0], g_min + (w + 1) / 2 * (g_max - g_min))
    assert conductance.weight_noise_gain(pair) == (1.0 if pair == "differential" else 2.0)


# ----------------------------------------------------------------------------- periphery


@pytest.mark.parametrize("bits", [2, 4, 7, 9], ids=["2bit", "4bit", "7bit", "9bit"])
@pytest.mark.parametrize("bound", [1.0, 12.0], ids=["bound1", "bound12"])
def test_quantise(bits: int, bound: float) -> None:
    step = periphery.quantisation_step(bits, bound)
    assert step == pytest.approx(2 * bound / (2**bits - 2), rel=1e-15)
    x = torch.linspace(-1.5 * bound, 1.5 * bound, 200_001, dtype=torch.float64)
    q = periphery.quantise(x, bits, bound)
    multiples = q / step
    assert (multiples - multiples.round()).abs().max() < 1e-6
    assert q.abs().max() <= bound * (1 + 1e-12)
    assert torch.unique(multiples.round()).numel() == 2**bits - 1
    inside = x.abs() <= bound
    assert (q - x)[inside].abs().max() <= step / 2 * (1 + 1e-9)
    assert (q[x > bound] == pytest.approx(bound)) and (q[x < -bound] == pytest.approx(-bound))


def test_quantise_without_bits_clips_only() -> None:
    x = torch.linspace(-3, 3, 1001)
    torch.testing.assert_close(periphery.quantise(x, None, 2.0), x.clamp(-2, 2), rtol=0, atol=0)


@pytest.mark.parametrize("bits", [None, 4, 8], ids=["clip", "4bit", "8bit"])
def test_quantise_straight_through_gradient(bits: int | None) -> None:
    x = (torch.linspace(-3, 3, 1001)).requires_grad_()
    periphery.quantise(x, bits, 2.0).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x), rtol=0, atol=0)


def test_per_read_output_variance_and_compensation_factor() -> None:
    s, q = torch.tensor([2.0, 3.0]), torch.tensor([0.5, 0.25])
    got = periphery.per_read_output_variance(s, q, 0.01, 0.04)
    torch.testing.assert_close(got, s * 0.01 + q * 0.04)
    assert periphery.per_read_output_variance(None, None, 0.0, 0.0) == 0.0
    alpha = periphery.drift_compensation_factor(torch.tensor([2.0, 2.0]), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(alpha, torch.tensor([2.0, 2.0 / 1e-4]))


# ----------------------------------------------------------------------------- RRAM


@pytest.mark.parametrize("time_index", [0, 1, 2], ids=["1s", "1d", "2d"])
@pytest.mark.parametrize("g_target", [20.0, 30.0, 40.0], ids=["20uS", "30uS", "40uS"])
def test_rram_relaxation_total_std_at_measured_times(time_index: int, g_target: float) -> None:
    # Programming draws σ(1 s); relaxation adds √(σ(t)² − σ(1 s)²): the total spread around g_T
    # at a measured time is the card's polynomial at that time.
    generator = make_generator(15, time_index, int(g_target))
    target = torch.full((N_DEVICES,), g_target, dtype=torch.float64)
    g_prog = programming.add_polynomial_programming_noise(
        target, RRAM_COEFFICIENTS[0], RRAM_G_MAX, RRAM_G_MAX, 1.0, generator
    )
    prog_std = programming.polynomial_programming_std(
        target, RRAM_COEFFICIENTS[0], RRAM_G_MAX, RRAM_G_MAX
    )
    t = RRAM_TIMES[time_index]
    variance = rram.relaxation_variance(
        target, t, RRAM_TIMES, RRAM_COEFFICIENTS, RRAM_G_MAX, RRAM_G_MAX
    )
    g = rram.apply_relaxation(g_prog, variance, prog_std, generator)
    sigma = poly_sigma(g_target, RRAM_COEFFICIENTS[time_index], RRAM_G_MAX)
    assert g_target / sigma > 4.5  # clamp at 0 below 4e−6 of the devices
    deviation = g - g_target
    rms = deviation.pow(2).mean().sqrt().item()
    assert abs(rms - sigma) < 0.03 * sigma
    assert abs(rms - sigma) < SE_BOUND * std_se(sigma, N_DEVICES)
    assert abs(deviation.mean().item()) < SE_BOUND * sigma / math.sqrt(N_DEVICES)


@pytest.mark.parametrize("interval", [0, 1], ids=["1s-1d", "1d-2d"])
def test_rram_variance_interpolates_linearly_in_log_time(interval: int) -> None:
    g = torch.linspace(0.0, RRAM_G_MAX, 41, dtype=torch.float64)
    lo, hi = RRAM_TIMES[interval], RRAM_TIMES[interval + 1]

    def var(t: float) -> torch.Tensor:
        return rram.relaxation_variance(g, t, RRAM_TIMES, RRAM_COEFFICIENTS, RRAM_G_MAX, 40.0)

    v_lo, v_hi = var(lo), var(hi)
    times = np.logspace(math.log10(lo), math.log10(hi), 25)
    curve = torch.stack([var(float(t)) for t in times])  # (times, g)
    weights = torch.tensor(
        (np.log10(times) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)),
        dtype=torch.float64,
    )
    want = (1 - weights[:, None]) * v_lo + weights[:, None] * v_hi
    torch.testing.assert_close(curve, want, rtol=1e-10, atol=1e-12)
    steps = curve.diff(dim=0)
    monotone = (steps >= -1e-12).all(dim=0) | (steps <= 1e-12).all(dim=0)
    assert monotone.all()


def test_rram_variance_held_outside_measured_times() -> None:
    g = torch.linspace(0.0, RRAM_G_MAX, 9, dtype=torch.float64)

    def var(t: float) -> torch.Tensor:
        return rram.relaxation_variance(g, t, RRAM_TIMES, RRAM_COEFFICIENTS, RRAM_G_MAX, 40.0)

    torch.testing.assert_close(var(0.0), var(1.0))
    torch.testing.assert_close(var(1e7), var(172800.0))
    want = [poly_sigma(float(v), RRAM_COEFFICIENTS[2], 40.0) ** 2 for v in g]
    torch.testing.assert_close(
        var(172800.0), torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=1e-12
    )
