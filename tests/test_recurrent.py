"""Analog LSTM/GRU/RNN: torch semantics on the ideal card, tiles for every matrix, conversion
and state round trips, chip instances folded into the batch, noise bounded, gradients."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import analogsim as asim
from analogsim.conversion import analog_layers
from analogsim.errors import ArgumentTypeError, ShapeError
from analogsim.seeding import make_generator
from analogsim.tiles import AnalogGRU, AnalogLSTM, AnalogRNN
from analogsim.tiles.recurrent import AnalogRNNBase
from analogsim.train.perturbation import perturbable_weights

# torch's own LSTM with proj_size falls back from oneDNN, and says so
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")

T, B, IN, HIDDEN = 5, 3, 4, 6  # tiny: time steps, batch, input and hidden features

# (torch class, keyword arguments, unbatched input, with an initial state)
CASES = [
    (nn.LSTM, {}, False, False),
    (nn.LSTM, {"num_layers": 2, "bidirectional": True, "batch_first": True}, False, True),
    (nn.LSTM, {"bias": False}, True, True),
    (nn.LSTM, {"num_layers": 2, "bidirectional": True, "proj_size": 2}, False, True),
    (nn.GRU, {"num_layers": 2, "bidirectional": True}, False, True),
    (nn.GRU, {"bias": False, "batch_first": True}, False, False),
    (nn.GRU, {}, True, False),
    (nn.RNN, {"num_layers": 2}, False, False),
    (nn.RNN, {"nonlinearity": "relu", "bidirectional": True, "batch_first": True,
              "bias": False}, False, True),
    (nn.RNN, {}, True, True),
]
IDS = ["lstm", "lstm-2layer-bidir-batchfirst-h0c0", "lstm-nobias-unbatched-h0c0",
       "lstm-proj-2layer-bidir-h0c0", "gru-2layer-bidir-h0", "gru-nobias-batchfirst",
       "gru-unbatched", "rnn-2layer", "rnn-relu-bidir-batchfirst-nobias-h0", "rnn-unbatched-h0"]


def make_digital(torch_class: type[nn.RNNBase], kwargs: dict, seed: int = 0) -> nn.RNNBase:
    torch.manual_seed(seed)
    return torch_class(IN, HIDDEN, **kwargs).eval()


def inputs(digital: nn.RNNBase, unbatched: bool, with_state: bool) -> tuple:
    """(input, initial state or None) shaped for ``digital``, drawn from a fixed stream."""
    generator = make_generator(11)
    shape = (T, IN) if unbatched else (B, T, IN) if digital.batch_first else (T, B, IN)
    x = torch.randn(shape, generator=generator)
    if not with_state:
        return x, None
    count = digital.num_layers * (2 if digital.bidirectional else 1)
    lead = (count,) if unbatched else (count, B)
    h0 = torch.randn(*lead, digital.proj_size or HIDDEN, generator=generator)
    if isinstance(digital, nn.LSTM):
        return x, (h0, torch.randn(*lead, HIDDEN, generator=generator))
    return x, h0


def flat(result: tuple) -> list[torch.Tensor]:
    """(output, h_n) or (output, (h_n, c_n)) as a list of tensors."""
    output, state = result
    return [output.data if hasattr(output, "batch_sizes") else output,
            *(state if isinstance(state, tuple) else (state,))]


def max_relative_difference(analog: list[torch.Tensor], digital: list[torch.Tensor]) -> float:
    """max |a − d| / max |d| over each tensor, the largest of them."""
    assert [a.shape for a in analog] == [d.shape for d in digital]
    return max(float((a - d).abs().max() / d.abs().max()) for a, d in zip(analog, digital,
                                                                         strict=True))


class Classifier(nn.Module):
    """Tokens (B, T) → embedding → LSTM → linear head on the mean over time (the last step
    alone would leave the reverse direction's hh weights of layer 1 without a gradient)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, IN)
        self.lstm = nn.LSTM(IN, HIDDEN, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * HIDDEN, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        output, _ = self.lstm(self.embed(tokens))
        return self.head(output.mean(dim=1))


def tokens() -> torch.Tensor:
    return torch.randint(0, 20, (B, T), generator=make_generator(5))


# ---------------------------------------------------------------------------- ideal card


@pytest.mark.parametrize(("torch_class", "kwargs", "unbatched", "with_state"), CASES, ids=IDS)
def test_on_the_ideal_card_a_converted_layer_computes_the_torch_layer(torch_class, kwargs,
                                                                      unbatched, with_state):
    digital = make_digital(torch_class, kwargs)
    analog = asim.program(asim.convert(digital, "ideal"), seed=0).eval()
    x, hx = inputs(digital, unbatched, with_state)
    with torch.no_grad():
        expected, got = flat(digital(x, hx)), flat(analog(x, hx))
    assert max_relative_difference(got, expected) <= 1e-5


@pytest.mark.parametrize("torch_class", [nn.LSTM, nn.GRU, nn.RNN])
def test_packed_sequences_give_torch_outputs_and_final_states(torch_class):
    digital = make_digital(torch_class, {"num_layers": 2, "bidirectional": True})
    analog = asim.convert(digital, "ideal").eval()
    x, hx = inputs(digital, unbatched=False, with_state=True)
    packed = pack_padded_sequence(x, torch.tensor([2, T, 4]), enforce_sorted=False)
    with torch.no_grad():
        expected, got = digital(packed, hx), analog(packed, hx)
    assert torch.equal(got[0].batch_sizes, expected[0].batch_sizes)
    assert torch.equal(got[0].unsorted_indices, expected[0].unsorted_indices)
    assert max_relative_difference(flat(got), flat(expected)) <= 1e-5


def test_a_model_using_an_lstm_reproduces_its_digital_outputs_and_counts_every_weight():
    torch.manual_seed(0)
    digital = Classifier().eval()
    analog = asim.program(asim.convert(digital, "ideal"), seed=0).eval()
    with torch.no_grad():
        assert max_relative_difference([analog(tokens())], [digital(tokens())]) <= 1e-5
    assert isinstance(analog.lstm, AnalogLSTM) and not any(
        isinstance(m, nn.RNNBase) for m in analog.modules())
    layers = dict(analog_layers(analog))
    recurrent = {name: layer for name, layer in layers.items() if name.startswith("lstm.")}
    assert sorted(recurrent) == sorted(f"lstm.{kind}_l{layer}{suffix}" for kind in ("ih", "hh")
                                       for layer in (0, 1) for suffix in ("", "_reverse"))
    on_tiles = sum(p.numel() for layer in recurrent.values() for p in layer.parameters())
    assert on_tiles == sum(p.numel() for p in digital.lstm.parameters())
    # consecutive layer indices in module order: the seeds of each tile are distinct
    assert [layer.tile.layer_index for layer in layers.values()] == list(range(len(layers)))
    back = asim.to_digital(analog)
    assert type(back.lstm) is nn.LSTM and torch.equal(back(tokens()), digital(tokens()))


@pytest.mark.parametrize(("torch_class", "kwargs"),
                         [(nn.LSTM, {"num_layers": 2, "bidirectional": True, "proj_size": 2}),
                          (nn.GRU, {"bias": False}), (nn.RNN, {"nonlinearity": "relu"})],
                         ids=["lstm-proj", "gru-nobias", "rnn-relu"])
def test_to_digital_round_trips_exactly_and_from_digital_draws_nothing(torch_class, kwargs):
    digital = make_digital(torch_class, kwargs)
    state = torch.get_rng_state()
    analog = asim.convert(digital, "pcm")
    assert torch.equal(torch.get_rng_state(), state)
    back = analog.to_digital()
    assert type(back) is torch_class
    assert [(n, p.shape) for n, p in back.named_parameters()] == [
        (n, p.shape) for n, p in digital.named_parameters()]
    assert all(torch.equal(a, b) for a, b in zip(back.parameters(), digital.parameters(),
                                                  strict=True))
    x, hx = inputs(digital, unbatched=False, with_state=True)
    assert all(torch.equal(a, b) for a, b in zip(flat(back.eval()(x, hx)), flat(digital(x, hx)),
                                                  strict=True))


@pytest.mark.parametrize(("analog_class", "torch_class", "args", "kwargs"), [
    (AnalogLSTM, nn.LSTM, (IN, HIDDEN, 2), {"bidirectional": True, "proj_size": 3}),
    (AnalogGRU, nn.GRU, (IN, HIDDEN), {"bias": False, "batch_first": True}),
    (AnalogRNN, nn.RNN, (IN, HIDDEN, 2, "relu"), {"dropout": 0.5}),
], ids=["lstm", "gru", "rnn"])
def test_constructors_are_shaped_and_initialised_like_torch(analog_class, torch_class, args,
                                                            kwargs):
    torch.manual_seed(3)
    digital = torch_class(*args, **kwargs)
    torch.manual_seed(3)
    analog = analog_class(*args, **kwargs, chip="ideal")
    assert isinstance(analog, AnalogRNNBase) and analog.digital_class is torch_class
    assert all(torch.equal(d, a) for d, a in analog.parameter_pairs(digital))  # same draws
    x, hx = inputs(digital, unbatched=False, with_state=True)
    with torch.no_grad():
        assert max_relative_difference(flat(analog.eval()(x, hx)),
                                       flat(digital.eval()(x, hx))) <= 1e-5
    assert repr(analog).startswith(f"{analog_class.__name__}(\n  {IN}, {HIDDEN}")


def test_dropout_acts_between_layers_in_training_only():
    digital = make_digital(nn.GRU, {"num_layers": 2, "dropout": 0.5})
    analog = asim.convert(digital, "ideal")
    x, _ = inputs(digital, unbatched=False, with_state=False)
    with torch.no_grad():
        assert not torch.allclose(analog.train()(x)[0], digital(x)[0])
        assert max_relative_difference(flat(analog.eval()(x)), flat(digital(x))) <= 1e-5


# ---------------------------------------------------------------------------- noisy card


def test_a_state_dict_round_trip_restores_the_programmed_model():
    torch.manual_seed(0)
    source = asim.program(asim.convert(Classifier(), "pcm"), seed=4).eval()
    with torch.no_grad():
        before = source(tokens())
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)  # other weights, unprogrammed: everything must come from the file
    target = asim.convert(Classifier(), "pcm")
    target.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        assert torch.equal(target.eval()(tokens()), before)
        asim.program(source, seed=9)
        asim.program(target, seed=9)
        assert torch.equal(target(tokens()), source(tokens()))


def test_folded_instances_each_compute_what_that_chip_alone_computes():
    # time-major input: the batch is dimension 1, and chip k must see batch rows k·B … k·B+B−1
    digital = make_digital(nn.LSTM, {"num_layers": 2, "bidirectional": True})
    x, (h0, c0) = inputs(digital, unbatched=False, with_state=True)
    folded = asim.program(asim.convert(digital, "pcm"), seed=4, instances=3).eval()
    with torch.no_grad(), asim.instances_folded(folded):
        output, (h_n, c_n) = folded(x.repeat(1, 3, 1), (h0.repeat(1, 3, 1), c0.repeat(1, 3, 1)))
    for k in range(3):
        # instance k alone: the same programmed state and forward noise streams (seed, layer, k)
        alone = asim.program(asim.convert(digital, "pcm"), seed=4, instances=[k]).eval()
        with torch.no_grad():
            expected = flat(alone(x, (h0, c0)))
        block = slice(k * B, (k + 1) * B)
        assert all(torch.equal(a, e) for a, e in zip(
            [output[:, block], h_n[:, block], c_n[:, block]], expected, strict=True)), k
        assert not torch.allclose(expected[0], digital(x, (h0, c0))[0])  # chips differ


def test_on_a_noisy_card_the_error_stays_within_its_propagated_tile_error():
    """For h_t = tanh(a_t), with a_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh, the analog layer
    computes h̃_t = tanh(ã_t) from its tiles' products. Let δ_t = ã_t − (W_ih x_t + b_ih +
    W_hh h̃_{t−1} + b_hh): the tiles' own error on the inputs they were given. tanh is
    1-Lipschitz, so per batch row ‖h̃_t − h_t‖ ≤ ‖δ_t‖ + ‖W_hh‖₂ ‖h̃_{t−1} − h_{t−1}‖."""
    digital = make_digital(nn.RNN, {"batch_first": True})
    analog = asim.drift(asim.program(asim.convert(digital, "pcm"), seed=2), 3600.0).eval()
    x, _ = inputs(digital, unbatched=False, with_state=False)
    reads: dict[str, list] = {"ih": [], "hh": []}
    for kind in reads:
        layer = analog.get_submodule(f"{kind}_l0")
        layer.register_forward_hook(
            lambda layer, args, out, kind=kind: reads[kind].append((args[0], out)))
    with torch.no_grad():
        got, expected = analog(x)[0], digital(x)[0]  # (B, T, hidden)
    (x_in, ih_out), = reads["ih"]
    ih_error = ih_out - nn.functional.linear(x_in, digital.weight_ih_l0, digital.bias_ih_l0)
    gain = torch.linalg.matrix_norm(digital.weight_hh_l0.detach(), ord=2)
    bound = torch.zeros(B)
    eps = torch.finfo(torch.float32).eps * HIDDEN  # float32 rounding of one step's sums
    for t, (h_in, hh_out) in enumerate(reads["hh"]):
        hh_error = hh_out - nn.functional.linear(h_in, digital.weight_hh_l0, digital.bias_hh_l0)
        bound = (ih_error[:, t] + hh_error).norm(dim=1) + gain * bound + eps
        error = (got[:, t] - expected[:, t]).norm(dim=1)
        assert (error <= bound).all(), (t, error, bound)
    assert (got - expected).abs().max() > 1e-3  # the noise is there: not the ideal card's 1e-5


def test_gradients_reach_every_analog_weight_in_training():
    torch.manual_seed(0)
    digital = Classifier()
    for card in ("ideal", "pcm"):
        analog = asim.program(asim.convert(digital, card), seed=0).train()
        nn.functional.cross_entropy(analog(tokens()), torch.tensor([0, 1, 2])).backward()
        for name, layer in analog_layers(analog):
            assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0, name
            assert torch.isfinite(layer.weight.grad).all(), name
    # noise-aware training perturbs them like any analog layer's weight
    perturbed = {id(w) for w in perturbable_weights(analog)}
    assert all(id(layer.weight) in perturbed for _, layer in analog_layers(analog.lstm))
    # on the ideal card the gradients are the digital model's
    nn.functional.cross_entropy(digital(tokens()), torch.tensor([0, 1, 2])).backward()
    ideal = asim.convert(digital, "ideal").train()
    nn.functional.cross_entropy(ideal(tokens()), torch.tensor([0, 1, 2])).backward()
    for d, a in ideal.lstm.parameter_pairs(digital.lstm):
        torch.testing.assert_close(a.grad, d.grad, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------- errors


def test_wrong_shapes_and_states_are_refused_with_the_layer_the_size_and_the_expectation():
    model = asim.convert(nn.Sequential(nn.LSTM(IN, HIDDEN, num_layers=2)), "ideal")
    with pytest.raises(ShapeError, match=r"layer '0' \(AnalogLSTM\): input of shape \(5, 3, 7\) "
                                         r"has 7 features.*expected input_size = 4"):
        model(torch.randn(T, B, 7))
    with pytest.raises(ShapeError, match=r"shape \(5, 3, 4, 1\) has 4 dimensions; expected 3"):
        model(torch.randn(T, B, IN, 1))
    with pytest.raises(ShapeError, match=r"c_0 of shape \(2, 3, 5\); expected .* = \(2, 3, 6\)"):
        model[0](torch.randn(T, B, IN), (torch.zeros(2, B, HIDDEN), torch.zeros(2, B, 5)))
    with pytest.raises(ArgumentTypeError, match=r"must be a tuple of tensors \(h_0, c_0\); "
                                                r"got Tensor"):
        model[0](torch.randn(T, B, IN), torch.zeros(2, B, HIDDEN))
    with pytest.raises(ShapeError, match=r"layer #0 \(AnalogGRU\).*h_0 of shape \(1, 6\)"):
        AnalogGRU(IN, HIDDEN, chip="ideal")(torch.randn(T, B, IN), torch.zeros(1, HIDDEN))
    with pytest.raises(ShapeError, match=r"h_0 of shape \(1, 1, 6\); expected \(layers·directions, "
                                         r"features; the input is unbatched\) = \(1, 6\)"):
        AnalogRNN(IN, HIDDEN, chip="ideal")(torch.randn(T, IN), torch.zeros(1, 1, HIDDEN))
