"""AnalogMultiheadAttention (analogsim/tiles/attention.py): nn.MultiheadAttention with its four
projections on tiles, alone and inside torch's transformer layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import analogsim as asim
from analogsim.conversion import analog_layers
from analogsim.errors import ArgumentTypeError, ShapeError, UsageError
from analogsim.profiling import AdditiveNoise, MultiplicativeNoise
from analogsim.tiles import AnalogLinear, AnalogMultiheadAttention, AnalogTile

pytestmark = [  # torch's own notes on its nested-tensor path, about the digital models
    pytest.mark.filterwarnings("ignore:enable_nested_tensor is True"),
    pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors"),
]

# The ideal card multiplies exactly; what is left is float32 rounding of sums taken in another
# order (a batched matmul instead of torch's fused kernels).
RTOL = 1e-5
E, HEADS, N, L, S = 8, 2, 3, 4, 5  # embed_dim, heads, batch, query and key lengths
DIMS = {"packed": (E, E), "separate": (6, 7)}  # kdim, vdim


def relative_difference(analog: torch.Tensor, digital: torch.Tensor) -> float:
    return ((analog - digital).abs().max() / digital.abs().max()).item()


def sequences(batch_first: bool, *shapes: tuple[int, int]) -> list[torch.Tensor]:
    """One (length, N, features) batch per shape, batch first if asked."""
    made = [torch.randn(length, N, features) for length, features in shapes]
    return [x.transpose(0, 1) for x in made] if batch_first else made


def padding() -> torch.Tensor:
    """key_padding_mask (N, S): keys 3, 4 of sequence 0 and key 0 of sequence 2 are padding."""
    mask = torch.zeros(N, S, dtype=torch.bool)
    mask[0, 3:] = mask[2, 0] = True
    return mask


def blocked() -> torch.Tensor:
    """attn_mask (L, S), True where a query may not attend; keys 0 and 1 are always open, so
    that no row is masked entirely (padding never hides key 1)."""
    mask = torch.rand(L, S) < 0.4
    mask[:, :2] = False
    return mask


MASKS = {
    "none": dict,
    "padding-bool": lambda: {"key_padding_mask": padding()},
    "padding-float": lambda: {"key_padding_mask": padding().float() * -3.0},
    "attn-bool-2d": lambda: {"attn_mask": blocked()},
    "attn-float-2d": lambda: {"attn_mask": torch.randn(L, S)},
    "attn-float-3d": lambda: {"attn_mask": torch.randn(N * HEADS, L, S)},
    "causal": lambda: {"attn_mask": torch.ones(L, S, dtype=torch.bool).triu(1),
                       "is_causal": True},
    "padding-and-attn": lambda: {"key_padding_mask": padding(), "attn_mask": blocked()},
}
WEIGHTS = [{"need_weights": True}, {"need_weights": True, "average_attn_weights": False},
           {"need_weights": False}]


def assert_same_call(analog: nn.Module, digital: nn.Module, *args: torch.Tensor,
                     **kwargs: object) -> None:
    y, weights = analog(*args, **kwargs)
    y_digital, weights_digital = digital(*args, **kwargs)
    assert y.shape == y_digital.shape and relative_difference(y, y_digital) <= RTOL
    assert (weights is None) == (weights_digital is None)
    if weights is not None:
        assert weights.shape == weights_digital.shape
        assert relative_difference(weights, weights_digital) <= RTOL


@pytest.mark.parametrize("mask", MASKS, ids=list(MASKS))
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq-first", "batch-first"])
@pytest.mark.parametrize("dims", DIMS, ids=list(DIMS))
def test_ideal_card_reproduces_torch(dims, batch_first, mask):
    torch.manual_seed(0)
    kdim, vdim = DIMS[dims]
    digital = nn.MultiheadAttention(E, HEADS, kdim=kdim, vdim=vdim, batch_first=batch_first)
    analog = asim.convert(digital.eval(), "ideal").eval()
    assert (analog.in_proj_weight is None) == (dims == "separate")
    inputs = sequences(batch_first, (L, E), (S, kdim), (S, vdim))
    for options in WEIGHTS:
        assert_same_call(analog, digital, *inputs, **MASKS[mask](), **options)


@pytest.mark.parametrize("dims", DIMS, ids=list(DIMS))
def test_unbatched_inputs(dims):
    torch.manual_seed(0)
    kdim, vdim = DIMS[dims]
    digital = nn.MultiheadAttention(E, HEADS, kdim=kdim, vdim=vdim).eval()
    analog = asim.convert(digital, "ideal").eval()
    inputs = torch.randn(L, E), torch.randn(S, kdim), torch.randn(S, vdim)
    for masks in ({}, {"key_padding_mask": padding()[0]},
                  {"attn_mask": torch.randn(HEADS, L, S)}):
        for options in WEIGHTS:
            assert_same_call(analog, digital, *inputs, **masks, **options)


@pytest.mark.parametrize("options", [{"add_bias_kv": True}, {"add_zero_attn": True},
                                     {"bias": False}, {"add_bias_kv": True, "kdim": 6, "vdim": 6}],
                         ids=["bias-kv", "zero-attn", "no-bias", "bias-kv-separate"])
def test_the_other_options_reproduce_torch(options):
    torch.manual_seed(0)
    digital = nn.MultiheadAttention(E, HEADS, batch_first=True, **options).eval()
    analog = asim.convert(digital, "ideal").eval()
    if options.get("add_bias_kv"):  # digital parameters, not on a tile
        assert isinstance(analog.bias_k, nn.Parameter) and analog.bias_k.shape == (1, 1, E)
    query, key = sequences(True, (L, E), (S, options.get("kdim", E)))
    for masks in ({}, MASKS["padding-and-attn"]()):
        for need_weights in (True, False):
            assert_same_call(analog, digital, query, key, key, **masks,
                             need_weights=need_weights)


def test_dropout_acts_on_the_weights_in_training_only():
    torch.manual_seed(0)
    digital = nn.MultiheadAttention(E, HEADS, dropout=0.5, batch_first=True)
    analog = asim.convert(digital, "ideal")
    (x,) = sequences(True, (L, E))
    for need_weights in (True, False):  # explicit softmax, scaled_dot_product_attention
        torch.manual_seed(7)  # dropout draws from torch's global generator, as torch's does
        y, _ = analog.train()(x, x, x, need_weights=need_weights)
        torch.manual_seed(7)
        y_digital, _ = digital.train()(x, x, x, need_weights=need_weights)
        assert relative_difference(y, y_digital) <= RTOL
        assert relative_difference(y, analog.eval()(x, x, x)[0]) > 0.01


TRANSFORMERS = {
    "encoder-layer": lambda bf: nn.TransformerEncoderLayer(E, HEADS, 16, 0.0, batch_first=bf),
    "decoder-layer": lambda bf: nn.TransformerDecoderLayer(E, HEADS, 16, 0.0, batch_first=bf),
    "encoder": lambda bf: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(E, HEADS, 16, 0.0, batch_first=bf), 2,
        enable_nested_tensor=True),
    "transformer": lambda bf: nn.Transformer(E, HEADS, 1, 1, 16, 0.0, batch_first=bf),
}


def transformer_calls(kind: str) -> list[dict[str, object]]:
    """Keyword arguments of the calls to try: without masks, with padding, causal."""
    pad = torch.zeros(N, L, dtype=torch.bool)
    pad[0, 3:] = True  # at the end, as nn.TransformerEncoder's nested-tensor path wants
    causal = nn.Transformer.generate_square_subsequent_mask(L)
    if kind == "decoder-layer":
        return [{}, {"memory_key_padding_mask": pad, "tgt_mask": causal, "tgt_is_causal": True}]
    if kind == "transformer":
        return [{}, {"src_key_padding_mask": pad, "memory_key_padding_mask": pad},
                {"tgt_mask": causal, "tgt_is_causal": True, "src_mask": blocked()[:, :L]}]
    mask = "src_mask" if kind == "encoder-layer" else "mask"
    return [{}, {"src_key_padding_mask": pad}, {mask: causal, "is_causal": True}]


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq-first", "batch-first"])
@pytest.mark.parametrize("kind", TRANSFORMERS, ids=list(TRANSFORMERS))
def test_torch_transformers_run_every_product_through_the_tiles(kind, batch_first, mode,
                                                                 monkeypatch):
    torch.manual_seed(0)
    digital = getattr(TRANSFORMERS[kind](batch_first), mode)()
    analog = getattr(asim.convert(digital, "ideal"), mode)()
    tiles = [m for m in analog.modules() if isinstance(m, AnalogTile)]
    calls = []
    forward = AnalogTile.forward

    def counted(tile: AnalogTile, *args: object, **kwargs: object) -> torch.Tensor:
        calls.append(tile)
        return forward(tile, *args, **kwargs)

    # a class attribute, not a hook: torch's fast-path checks look for hooks
    monkeypatch.setattr(AnalogTile, "forward", counted)
    inputs = sequences(batch_first, (L, E), (L, E))
    inputs = inputs if kind in ("decoder-layer", "transformer") else inputs[:1]
    for kwargs in transformer_calls(kind):
        for grad in (True, False):  # no_grad in eval opens torch's fused and nested paths
            calls.clear()
            with torch.set_grad_enabled(grad):
                y, y_digital = analog(*inputs, **kwargs), digital(*inputs, **kwargs)
            assert sorted(map(id, calls)) == sorted(map(id, tiles))  # each tile, once
            # torch's nested-tensor path zeroes padded positions; compare the others
            keep = ~kwargs.get("src_key_padding_mask", torch.zeros(N, L, dtype=torch.bool))
            if kind in ("encoder-layer", "encoder"):
                keep = keep if batch_first else keep.T
                y, y_digital = y[keep], y_digital[keep]
            assert relative_difference(y, y_digital) <= RTOL, kwargs


def test_every_weight_used_in_a_product_sits_on_a_tile():
    digital = nn.Transformer(E, HEADS, 2, 1, 16, 0.0)
    analog = asim.convert(digital, "ideal")
    attentions = [m for m in digital.modules() if isinstance(m, nn.MultiheadAttention)]
    linears = [m for m in digital.modules() if isinstance(m, nn.Linear)]  # out_proj included
    products = [m.in_proj_weight for m in attentions] + [m.weight for m in linears]
    on_tiles = [layer.weight for _, layer in analog_layers(analog)]
    assert len(on_tiles) == 3 * len(attentions) + len(linears)
    assert sum(w.numel() for w in on_tiles) == sum(w.numel() for w in products)
    in_layers = {id(p) for _, layer in analog_layers(analog) for p in layer.parameters()}
    rest = [name for name, p in analog.named_parameters() if id(p) not in in_layers]
    assert rest and all(".norm" in name for name in rest)  # only LayerNorm stays digital


@pytest.mark.parametrize("options", [{}, {"kdim": 6, "vdim": 7, "add_bias_kv": True},
                                     {"bias": False, "add_zero_attn": True}],
                         ids=["packed", "separate", "no-bias"])
def test_from_digital_copies_without_drawing_and_to_digital_round_trips(options):
    torch.manual_seed(0)
    digital = nn.MultiheadAttention(E, HEADS, batch_first=True, **options)
    before = torch.random.get_rng_state()
    analog = AnalogMultiheadAttention.from_digital(digital, "pcm", layer_index=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert [layer.tile.layer_index for _, layer in analog_layers(analog)] == [5, 6, 7, 8]
    back = asim.to_digital(nn.Sequential(analog))[0]
    assert type(back) is nn.MultiheadAttention and back.batch_first
    assert back._qkv_same_embed_dim == digital._qkv_same_embed_dim  # packed when it was
    assert back.state_dict().keys() == digital.state_dict().keys()
    assert all(torch.equal(back.state_dict()[k], v) for k, v in digital.state_dict().items())


def test_a_converted_transformer_converts_back_exactly():
    digital = nn.Transformer(E, HEADS, 1, 1, 16, 0.0)
    back = asim.to_digital(asim.convert(digital, "pcm"))
    assert [type(m) for m in back.modules()] == [type(m) for m in digital.modules()]
    assert all(torch.equal(back.state_dict()[k], v) for k, v in digital.state_dict().items())


@pytest.mark.parametrize("options", [{}, {"kdim": 6, "vdim": 7}, {"add_bias_kv": True}],
                         ids=["packed", "separate", "bias-kv"])
def test_the_constructor_initialises_as_torch_does(options):
    torch.manual_seed(3)
    digital = nn.MultiheadAttention(E, HEADS, **options)
    torch.manual_seed(3)
    analog = AnalogMultiheadAttention(E, HEADS, **options, chip="pcm", layer_index=2)
    assert analog.q_proj.tile.chip.name == "pcm" and analog.out_proj.tile.layer_index == 5
    mine = analog.to_digital().state_dict()
    assert all(torch.equal(mine[k], v) for k, v in digital.state_dict().items())


def test_state_dict_round_trips_through_a_file(tmp_path):
    def model() -> nn.Module:
        return asim.convert(nn.TransformerEncoderLayer(E, HEADS, 16, 0.0, batch_first=True),
                            "pcm")

    torch.manual_seed(0)
    analog = model()
    with torch.no_grad():
        analog.self_attn.k_proj.weight.mul_(0.5)  # as if trained away from its conversion
    torch.save(analog.state_dict(), tmp_path / "converted.pt")
    torch.manual_seed(1)  # other weights, replaced by the loaded ones
    fresh = model()
    fresh.load_state_dict(torch.load(tmp_path / "converted.pt", weights_only=True))
    (x,) = sequences(True, (L, E))
    outputs = []
    for m in (analog, fresh):
        asim.program(m, seed=4)
        with torch.no_grad():
            outputs.append(m.eval()(x))
    assert torch.equal(outputs[0], outputs[1])
    torch.save(analog.state_dict(), tmp_path / "programmed.pt")  # the programmed state too
    programmed = model()
    programmed.load_state_dict(torch.load(tmp_path / "programmed.pt", weights_only=True))
    with torch.no_grad():
        assert torch.equal(programmed.eval()(x), outputs[0])


@pytest.mark.parametrize("batch_first", [False, True], ids=["seq-first", "batch-first"])
def test_folded_instances_each_give_what_that_instance_gives_alone(batch_first):
    torch.manual_seed(0)
    digital = nn.MultiheadAttention(E, HEADS, batch_first=batch_first).eval()
    (x,) = sequences(batch_first, (L, E))
    batch_axis = 0 if batch_first else 1
    folded = asim.program(asim.convert(digital, "pcm"), seed=3, instances=2).eval()
    with torch.no_grad(), asim.instances_folded(folded):
        both = torch.cat([x, x], dim=batch_axis)  # (2·N, ...) instance-major
        y, weights = folded(both, both, both, key_padding_mask=padding()[:, :L].repeat(2, 1))
    for k, (y_k, weights_k) in enumerate(zip(y.chunk(2, dim=batch_axis), weights.chunk(2),
                                             strict=True)):
        alone = asim.program(asim.convert(digital, "pcm"), seed=3, instances=[k]).eval()
        with torch.no_grad():
            y_alone, weights_alone = alone(x, x, x, key_padding_mask=padding()[:, :L])
        torch.testing.assert_close(y_k, y_alone, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(weights_k, weights_alone, rtol=1e-6, atol=1e-6)
    # the two chips differ, so rows sent through the wrong chip would show
    assert relative_difference(*y.chunk(2, dim=batch_axis)) > 100 * RTOL


def test_a_noisy_card_stays_within_the_error_budget_of_its_projections():
    """First-order error budget: a product's relative error is at most the sum of its factors'
    (its projection's own error ε_j adds once per stage), and the softmax passes on at most
    half of a score error (its Jacobian has norm ≤ ½) of scores of order one here, so the
    output's relative error is at most ε_q + ε_k + ε_v + ε_out. Each ε_j is measured on the
    same forward: the tile's output against its digital weight on the same input."""
    torch.manual_seed(0)
    digital = nn.MultiheadAttention(16, HEADS, batch_first=True).eval()
    (x,) = sequences(True, (6, 16))
    analog = asim.program(asim.convert(digital, "pcm"), seed=11).eval()
    errors = []

    def measure(layer: AnalogLinear, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        exact = F.linear(inputs[0], layer.weight, layer.bias)
        errors.append(((output - exact).norm() / exact.norm()).item())

    for _, layer in analog_layers(analog):
        layer.register_forward_hook(measure)
    with torch.no_grad():
        y, y_digital = analog(x, x, x)[0], digital(x, x, x)[0]
    error = ((y - y_digital).norm() / y_digital.norm()).item()
    assert len(errors) == 4 and min(errors) > 100 * RTOL  # every tile is noisy
    assert 100 * RTOL < error <= sum(errors)


def test_product_noise_only_when_set_seeded_and_never_from_the_global_generator():
    torch.manual_seed(0)
    digital = nn.MultiheadAttention(E, HEADS, batch_first=True).eval()
    first, second = (asim.convert(digital, "ideal").eval() for _ in range(2))
    (x,) = sequences(True, (L, E))
    exact = digital(x, x, x, need_weights=False)[0]
    assert first.product_noise is None
    assert relative_difference(first(x, x, x, need_weights=False)[0], exact) <= RTOL
    for attention in (first, second):
        attention.product_noise = AdditiveNoise(0.05)
    global_state = torch.random.get_rng_state()
    noisy = first(x, x, x, need_weights=False)[0]
    assert torch.equal(torch.random.get_rng_state(), global_state)
    assert relative_difference(noisy, exact) > 100 * RTOL
    assert torch.equal(second(x, x, x, need_weights=False)[0], noisy)  # same seed, same draws
    assert not torch.equal(first(x, x, x, need_weights=False)[0], noisy)  # fresh draws
    first.reseed_product_noise(0)
    assert torch.equal(first(x, x, x, need_weights=False)[0], noisy)
    first.reseed_product_noise(1)
    assert not torch.equal(first(x, x, x, need_weights=False)[0], noisy)
    first.product_noise = None
    assert relative_difference(first(x, x, x)[0], exact) <= RTOL
    built = AnalogMultiheadAttention(E, HEADS, chip="ideal", product_noise=MultiplicativeNoise(
        0.1), product_noise_seed=3)
    assert "MultiplicativeNoise" in repr(built) and built(x[0], x[0], x[0])[0].shape == (L, E)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda a, x: a(x, x[..., :6], x), ShapeError,
     r"layer #0 \(AnalogMultiheadAttention\): key of shape \(3, 4, 6\); expected \(3, 4, 8\) = "
     r"\(N, S, kdim\)"),
    (lambda a, x: a(x, x, x, attn_mask=torch.zeros(3, 3)), ShapeError,
     r"attn_mask of shape \(3, 3\); expected \(4, 4\) or \(6, 4, 4\)"),
    (lambda a, x: a(x, x, x, key_padding_mask=torch.zeros(N, S, dtype=torch.bool)), ShapeError,
     r"key_padding_mask of shape \(3, 5\); expected \(3, 4\)"),
    (lambda a, x: a(x[0, 0], x, x), ShapeError, r"query of shape \(8,\); expected \(L, E\)"),
    (lambda a, x: a(x, x, x, key_padding_mask=torch.zeros(N, L, dtype=torch.int64)),
     ArgumentTypeError, "'key_padding_mask' must be a bool or floating-point tensor"),
    (lambda a, x: a(x, x, x, is_causal=True), UsageError, "pass attn_mask too"),
    (lambda a, x: setattr(a, "product_noise", 0.1), ArgumentTypeError,
     "'product_noise' of AnalogMultiheadAttention must be None, AdditiveNoise"),
    (lambda a, x: a.reseed_product_noise(-1), UsageError, "must be an int ≥ 0; got -1"),
    (lambda a, x: AnalogMultiheadAttention(E, 3, chip="ideal"), UsageError,
     "embed_dim divisible by num_heads"),
], ids=["key-features", "attn-mask", "padding-mask", "query-dims", "mask-dtype", "causal-hint",
        "noise-law", "noise-seed", "heads"])
def test_errors_name_the_layer_the_value_and_the_expectation(call, error, message):
    attention = AnalogMultiheadAttention(E, HEADS, batch_first=True, chip="ideal")
    (x,) = sequences(True, (L, E))
    with pytest.raises(error, match=message):
        call(attention, x)


def test_a_shape_error_in_a_converted_model_names_the_module():
    model = nn.Sequential(nn.TransformerEncoderLayer(E, HEADS, 16, 0.0, batch_first=True))
    analog = asim.convert(model, "ideal")
    with pytest.raises(ShapeError, match=r"layer '0\.self_attn' \(AnalogMultiheadAttention\): "
                                         r"query of shape \(3, 4, 6\)"):
        analog(torch.randn(N, L, 6))
