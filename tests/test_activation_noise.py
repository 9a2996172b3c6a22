"""Activation-noise operators and their insertion (METHODS.md §9–§10, §12 repetitions)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analogsim.errors import ConversionError, SpecError, StateError
from analogsim.profiling.guided import allocate_repetitions
from analogsim.profiling.noise_laws import AdditiveNoise, MixedNoise, MultiplicativeNoise, NoiseLaw
from analogsim.profiling.noise_operator import NoiseOperator, activate_operators, set_repetitions
from analogsim.profiling.noise_placement import (
    MODEL_INPUT,
    insert_noise_operators,
    noise_sites,
    remove_noise_operators,
)

DRAWS = 200_000  # samples per moment check
BOUND = 5.0  # standard errors; two-sided tail probability ≈ 6e-7 per check
X = 2.0  # the constant activation the moments are taken at

# (law, Var y at x = X). E y = x for every law: the additive term has mean 0, the factor mean 1.
#   additive:       σ²
#   multiplicative: x²σ²
#   mul. first:     x²σ_mul² + σ_add²
#   add. first:     E[(x + a)²] E[f²] − x² = (x² + σ_add²)(1 + σ_mul²) − x²
LAWS: list[tuple[NoiseLaw, float]] = [
    (AdditiveNoise(0.5), 0.5**2),
    (MultiplicativeNoise(0.3), X**2 * 0.3**2),
    (MixedNoise(sigma_mul=0.3, sigma_add=0.5), X**2 * 0.3**2 + 0.5**2),
    (
        MixedNoise(sigma_mul=0.3, sigma_add=0.5, multiplicative_first=False),
        (X**2 + 0.5**2) * (1 + 0.3**2) - X**2,
    ),
    # Amplitude/ratio form: σ_add = A·r = 0.25, σ_mul = A·(1 − r) = 0.75.
    (MixedNoise.from_amplitude(1.0, 0.25), X**2 * 0.75**2 + 0.25**2),
]
LAW_IDS = ["additive", "multiplicative", "mul-first", "add-first", "amplitude-ratio"]


def assert_moments(y: Tensor, mean: float, variance: float) -> None:
    """Sample mean and variance agree with the formula within BOUND standard errors.

    SE of the mean: s/√N. SE of the sample variance: √((m₄ − s⁴)/N), m₄ the 4th central
    moment (large-N variance of s², valid for any distribution with a finite m₄).
    """
    y = y.double().flatten()
    n = y.numel()
    centred = y - y.mean()
    sample_variance = float(centred.pow(2).mean())
    fourth = float(centred.pow(4).mean())
    assert abs(float(y.mean()) - mean) < BOUND * math.sqrt(sample_variance / n)
    assert abs(sample_variance - variance) < BOUND * math.sqrt((fourth - sample_variance**2) / n)


@pytest.mark.parametrize(("law", "variance"), LAWS, ids=LAW_IDS)
def test_moments_match_formula(law: NoiseLaw, variance: float) -> None:
    operator = NoiseOperator(law, seed=0)
    assert_moments(operator(torch.full((DRAWS,), X)), X, variance)


@pytest.mark.parametrize(("law", "variance"), LAWS, ids=LAW_IDS)
def test_repetitions_divide_variance_by_n(law: NoiseLaw, variance: float) -> None:
    # Guided multi-execution: the mean of n i.i.d. draws has variance Var/n, std 1/√n.
    operator = NoiseOperator(law, repetitions=4, seed=1)
    assert_moments(operator(torch.full((DRAWS,), X)), X, variance / 4)


def test_normalize_to_input_size_divides_sigma_by_element_count() -> None:
    operator = NoiseOperator(AdditiveNoise(2.0), normalize_to_input_size=True, seed=2)
    y = operator(torch.zeros(DRAWS // 20, 4, 5))  # 20 elements per sample: σ = 2/20
    assert_moments(y, 0.0, (2.0 / 20) ** 2)


def test_additive_draw_is_sigma_times_standard_normal() -> None:
    x = torch.randn(3, 7, generator=torch.Generator().manual_seed(9))
    y = NoiseOperator(AdditiveNoise(0.5), seed=4)(x)
    expected = x + 0.5 * torch.randn(3, 7, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(y, expected)


@pytest.mark.parametrize(("law", "variance"), LAWS, ids=LAW_IDS)
def test_sampled_gradient_is_the_sampled_factor(law: NoiseLaw, variance: float) -> None:
    # Every law is affine in x given its draws, y = f·x + c, so the sampled gradient f equals
    # y(x + 1) − y(x) with the same draws; f = 1 for additive noise.
    x = torch.rand(64, 8, generator=torch.Generator().manual_seed(0)).requires_grad_()
    operator = NoiseOperator(law, repetitions=3, seed=5)
    y = operator(x)
    y.sum().backward()
    operator.reseed(5)
    y_at_x = operator(x.detach())
    operator.reseed(5)
    factor = operator(x.detach() + 1) - y_at_x
    torch.testing.assert_close(y.detach(), y_at_x)
    torch.testing.assert_close(x.grad, factor)
    if isinstance(law, AdditiveNoise):
        torch.testing.assert_close(x.grad, torch.ones_like(x))
    else:
        assert not torch.allclose(x.grad, torch.ones_like(x))


@pytest.mark.parametrize(("law", "variance"), LAWS, ids=LAW_IDS)
def test_ste_gradient_is_one_and_forward_is_unchanged(law: NoiseLaw, variance: float) -> None:
    x = torch.rand(64, 8, generator=torch.Generator().manual_seed(0)).requires_grad_()
    y = NoiseOperator(law, grad_mode="ste", seed=6)(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))
    torch.testing.assert_close(y.detach(), NoiseOperator(law, seed=6)(x.detach()))
    assert not torch.equal(y.detach(), x.detach())


@pytest.mark.parametrize(
    ("options", "noisy_in_training", "noisy_in_eval"),
    [
        ({}, True, True),
        ({"enable_in_training": False}, False, True),  # S2 "noise at inference only"
        ({"enable_in_eval": False}, True, False),
    ],
    ids=["both", "eval-only", "training-only"],
)
def test_enable_flags(options: dict, noisy_in_training: bool, noisy_in_eval: bool) -> None:
    x = torch.ones(10)
    operator = NoiseOperator(AdditiveNoise(1.0), seed=0, **options)
    assert (operator.train()(x) is not x) == noisy_in_training
    assert (operator.eval()(x) is not x) == noisy_in_eval
    operator.active = False
    assert operator.train()(x) is x and operator.eval()(x) is x


def test_same_seed_same_output_and_reseed_restarts() -> None:
    x = torch.ones(100)
    first = NoiseOperator(AdditiveNoise(1.0), seed=3)
    second = NoiseOperator(AdditiveNoise(1.0), seed=3)
    draw = first(x)
    torch.testing.assert_close(draw, second(x))
    assert not torch.equal(draw, first(x))  # the stream moves on
    first.reseed(3)
    torch.testing.assert_close(draw, first(x))
    assert not torch.equal(draw, NoiseOperator(AdditiveNoise(1.0), seed=4)(x))
    explicit = NoiseOperator(AdditiveNoise(1.0), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(draw, explicit(x))


def test_randomness_must_be_given() -> None:
    operator = NoiseOperator(AdditiveNoise(1.0))
    with pytest.raises(StateError, match=r"no random generator.*reseed"):
        operator(torch.ones(3))
    operator.active = False
    operator(torch.ones(3))  # an identity operator needs no generator
    with pytest.raises(SpecError, match=r"'seed' or 'generator', not both"):
        NoiseOperator(AdditiveNoise(1.0), seed=0, generator=torch.Generator())


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: AdditiveNoise(-1.0), r"'sigma' of AdditiveNoise must be ≥ 0; got -1.0"),
        (lambda: MultiplicativeNoise(float("inf")), r"'sigma' of MultiplicativeNoise.*finite"),
        (lambda: MixedNoise.from_amplitude(1.0, 1.5), r"'ratio'.*\[0, 1\]; got 1.5"),
        (lambda: NoiseOperator(AdditiveNoise(1.0), grad_mode="identity"), r"'grad_mode'.*"),
        (lambda: NoiseOperator(AdditiveNoise(1.0), repetitions=0), r"'repetitions'.*got 0"),
        (lambda: NoiseOperator(0.5), r"'noise' of NoiseOperator must be an AdditiveNoise"),
        (lambda: NoiseOperator(AdditiveNoise(1.0), seed=-1), r"'seed'.*≥ 0; got -1"),
    ],
    ids=["negative-sigma", "inf-sigma", "ratio", "grad-mode", "repetitions", "law", "seed"],
)
def test_invalid_operator_arguments(build, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        build()


# ------------------------------------------------------------------------------- insertion


def tfc_mlp(batchnorm: bool = True) -> nn.Sequential:
    """The layer pattern of S2's RL_TFC MLP (three hidden layers, BN optional), small."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = 12
    for _ in range(3):
        layers += [nn.Linear(width, 16)] + ([nn.BatchNorm1d(16)] if batchnorm else []) + [nn.ReLU()]
        width = 16
    return nn.Sequential(*layers, nn.Linear(width, 10))


class SmallNet(nn.Module):
    """A custom module whose forward calls its submodules (and F.relu, flatten) itself."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(2 * 3 * 3, 4)

    def forward(self, x: Tensor) -> Tensor:  # (B, 1, 8, 8) → (B, 4)
        x = self.pool(F.relu(self.conv(x)))
        return self.head(x.flatten(1))


def additive(sigma: float = 0.5, **options: object):
    return lambda: NoiseOperator(AdditiveNoise(sigma), **options)


def test_sites_follow_section_10() -> None:
    # RL_TFC with BN: 11 operators; without BN: 8 (METHODS.md §10). Flatten gets none.
    assert noise_sites(tfc_mlp()) == [MODEL_INPUT, *(str(i) for i in range(1, 11))]
    assert len(noise_sites(tfc_mlp(batchnorm=False))) == 8
    without_bn = [MODEL_INPUT, "1", "3", "4", "6", "7", "9", "10"]
    assert noise_sites(tfc_mlp(), skip_batchnorm=True) == without_bn
    assert noise_sites(SmallNet()) == [MODEL_INPUT, "conv", "pool", "head"]
    assert noise_sites(nn.Linear(3, 2)) == [MODEL_INPUT, ""]


class TiledLinear(nn.Module):
    """Shaped like an analog layer: its own weight and bias, and a child that does the MVM."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.eye(width))
        self.bias = nn.Parameter(torch.zeros(width))
        self.tile = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.tile(x @ self.weight.T) + self.bias


def test_a_layer_with_its_own_weights_is_one_site() -> None:
    model = nn.Sequential(TiledLinear(4), nn.ReLU(), nn.Sequential(TiledLinear(4), nn.ReLU()))
    assert noise_sites(model) == [MODEL_INPUT, "0", "1", "2.0", "2.1"]


@pytest.mark.parametrize("layer_index", [0, 1, 3, 10], ids=["input", "fc1", "relu1", "fc-out"])
def test_walking_noise_perturbs_only_the_chosen_site(layer_index: int) -> None:
    torch.manual_seed(0)  # weights only; the noise comes from the operators' generators
    model = tfc_mlp().eval()
    x = torch.randn(5, 3, 4)
    operators = insert_noise_operators(model, additive(), seed=0)
    assert [op.site for op in operators] == noise_sites(model)
    activate_operators(operators, layer_index)
    chosen = operators[layer_index]
    chosen.reseed(123)
    noisy = model(x)

    site = chosen.site
    remove_noise_operators(operators)
    chosen.eval().reseed(123)
    expected = chosen(x) if site == MODEL_INPUT else x
    for name, module in model.named_children():
        expected = module(expected)
        if name == site:
            expected = chosen(expected)
    torch.testing.assert_close(noisy, expected)
    assert not torch.allclose(noisy, model(x))


def test_global_noise_and_clean_model() -> None:
    torch.manual_seed(0)
    model = tfc_mlp().eval()
    x = torch.randn(5, 12)
    clean = model(x)
    keys = list(model.state_dict())
    operators = insert_noise_operators(model, additive(), seed=0)
    assert list(model.state_dict()) == keys  # hooks leave the module tree alone
    activate_operators(operators)
    assert all(op.active for op in operators)
    assert not torch.allclose(model(x), clean)
    for operator in operators:
        operator.active = False
    torch.testing.assert_close(model(x), clean)
    remove_noise_operators(operators)
    activate_operators(operators)
    torch.testing.assert_close(model(x), clean)


def test_insert_by_name_on_custom_module() -> None:
    torch.manual_seed(0)
    model = SmallNet()
    x = torch.randn(6, 1, 8, 8)
    clean = model(x)
    (operator,) = insert_noise_operators(model, additive(0.5), seed=0, after=["head"])
    assert operator.site == "head"
    operator.reseed(7)
    expected = clean + 0.5 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(model(x), expected)


def test_insert_by_index_and_name_keeps_the_given_order() -> None:
    model = SmallNet()
    operators = insert_noise_operators(model, additive(), seed=0, after=["head", 2, MODEL_INPUT])
    assert [op.site for op in operators] == ["head", "pool", MODEL_INPUT]


def test_operators_follow_the_model_mode_and_pass_gradients() -> None:
    torch.manual_seed(0)
    model = SmallNet()
    x = torch.randn(6, 1, 8, 8)
    clean = model(x)
    factory = lambda: NoiseOperator(MultiplicativeNoise(0.2), enable_in_eval=False)  # noqa: E731
    insert_noise_operators(model, factory, seed=0)
    model.eval()
    torch.testing.assert_close(model(x), clean)
    model.train()
    noisy = model(x)
    assert not torch.allclose(noisy, clean)
    noisy.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_derived_seeds_make_runs_reproducible() -> None:
    torch.manual_seed(0)
    model = SmallNet()
    x = torch.randn(6, 1, 8, 8)
    outputs = []
    for seed in (11, 11, 12):
        operators = insert_noise_operators(model, additive(), seed=seed)
        outputs.append(model(x))
        remove_noise_operators(operators)
    torch.testing.assert_close(outputs[0], outputs[1])
    assert not torch.allclose(outputs[0], outputs[2])


def test_guided_repetitions_reach_the_operators() -> None:
    model = tfc_mlp(batchnorm=False)
    operators = insert_noise_operators(model, additive(), seed=0)
    counts = allocate_repetitions([0.2, 0.5, 1.0, 1.0, 2.0, 2.0, 4.0, 0.3], 2 * len(operators))
    set_repetitions(operators, counts)
    assert [op.repetitions for op in operators] == counts
    with pytest.raises(SpecError, match=r"one entry per operator \(8\); got 2"):
        set_repetitions(operators, [1, 1])
    with pytest.raises(SpecError, match=r"ints ≥ 1; got 0 at index 1"):
        set_repetitions(operators, [1, 0, 1, 1, 1, 1, 1, 1])


class TupleOut(nn.Module):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x, x


class UsesTuple(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pair = TupleOut()

    def forward(self, x: Tensor) -> Tensor:
        return self.pair(x)[0]


def test_insertion_errors() -> None:
    model = SmallNet()
    x = torch.randn(2, 1, 8, 8)
    clean = model(x)
    with pytest.raises(ConversionError, match=r"'nope' .*names no module.*'conv'"):
        insert_noise_operators(model, additive(), seed=0, after=["nope"])
    with pytest.raises(SpecError, match=r"index 4 .*out of range.*4 operator sites"):
        insert_noise_operators(model, additive(), seed=0, after=[4])
    with pytest.raises(SpecError, match=r"site 'head' twice"):
        insert_noise_operators(model, additive(), seed=0, after=[3, "head"])
    with pytest.raises(SpecError, match=r"list of names or indices.*wrap it"):
        insert_noise_operators(model, additive(), seed=0, after="head")
    shared = NoiseOperator(AdditiveNoise(1.0))
    with pytest.raises(SpecError, match=r"already placed.*new NoiseOperator"):
        insert_noise_operators(model, lambda: shared, seed=0)
    with pytest.raises(SpecError, match=r"must return a NoiseOperator; got AdditiveNoise"):
        insert_noise_operators(model, lambda: AdditiveNoise(1.0), seed=0)
    torch.testing.assert_close(model(x), clean)  # a failed insertion leaves no hooks behind
    tuple_model = UsesTuple()
    insert_noise_operators(tuple_model, additive(), seed=0)
    with pytest.raises(ConversionError, match=r"'pair', whose output is a tuple"):
        tuple_model(torch.ones(2))
    with pytest.raises(SpecError, match=r"'layer_index'.*\[0, 3\]; got 4"):
        activate_operators([NoiseOperator(AdditiveNoise(1.0)) for _ in range(4)], 4)
