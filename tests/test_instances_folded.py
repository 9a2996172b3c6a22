"""The instance layout is explicit: a model programmed with K > 1 chip instances takes folded
(K·B, ...) inputs only inside ``analogsim.instances_folded``; an ordinary forward raises."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import analogsim as asim
from analogsim.conversion import analog_layers
from analogsim.errors import ArgumentTypeError, ShapeError, StateError
from analogsim.programming import reseed_forward_noise


def _programmed(instances: int, backend: str = "native") -> nn.Module:
    torch.manual_seed(0)
    digital = nn.Sequential(nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 5))
    options = {"aihwkit_tile": "torch"} if backend == "aihwkit" else {}
    analog = asim.convert(digital, "pcm", backend=backend, **options)
    asim.program(analog, seed=3, instances=instances)
    return asim.drift(analog, 3600.0).eval()


def _folded_flags(model: nn.Module) -> list[bool]:
    return [layer.tile.instances_folded for _, layer in analog_layers(model)]


def test_an_ordinary_forward_on_k_instances_raises_and_says_what_to_do():
    analog = _programmed(4)
    with pytest.raises(StateError, match=r"programmed with 4 chip instances.*plain forward "
                                         r"would spread the batch.*analogsim\.evaluate.*"
                                         r"instances_folded.*instances=1"):
        analog(torch.randn(8, 16))  # a multiple of K: it used to be spread silently
    with pytest.raises(StateError, match="programmed with 4 chip instances"):
        analog(torch.randn(3, 16))


def test_one_instance_and_training_mode_need_no_context():
    analog = _programmed(1)
    assert analog(torch.randn(6, 16)).shape == (6, 5)
    training = _programmed(4).train()
    assert training(torch.randn(6, 16)).shape == (6, 5)  # live weights: no instances


def test_inside_the_context_a_folded_forward_equals_evaluate():
    analog = _programmed(3)
    x, y = torch.randn(40, 16), torch.randint(0, 5, (40,))
    result = asim.evaluate(analog, (x, y), batch_size=40, seed=9)
    reseed_forward_noise(analog, 9)
    with torch.no_grad(), asim.instances_folded(analog) as same:
        assert same is analog
        logits = analog(x.repeat(3, 1))
        with pytest.raises(ShapeError, match="got a batch of 40, not a multiple of 3"):
            analog(x)
    correct = (logits.reshape(3, 40, -1).argmax(dim=-1) == y).double().mean(dim=1)
    assert torch.equal(correct, torch.from_numpy(result.accuracy))  # bit-identical
    assert _folded_flags(analog) == [False, False]


def test_the_flag_is_restored_on_an_exception_and_contexts_nest():
    analog = _programmed(2)
    with pytest.raises(RuntimeError, match="boom"), asim.instances_folded(analog):
        assert _folded_flags(analog) == [True, True]
        raise RuntimeError("boom")
    assert _folded_flags(analog) == [False, False]
    with pytest.raises(StateError):
        analog(torch.randn(4, 16))
    with asim.instances_folded(analog):
        with asim.instances_folded(analog):
            pass
        assert _folded_flags(analog) == [True, True]  # the inner exit restores the outer's
        analog(torch.randn(4, 16))
    assert _folded_flags(analog) == [False, False]


def test_the_flag_is_per_model_not_process_wide():
    first, second = _programmed(2), _programmed(2)
    with asim.instances_folded(first):
        first(torch.randn(4, 16))
        with pytest.raises(StateError):
            second(torch.randn(4, 16))


def test_a_model_that_is_not_a_module_is_refused():
    with pytest.raises(ArgumentTypeError, match=r"takes a torch nn\.Module; got str"), \
            asim.instances_folded("model"):
        pass


def test_the_aihwkit_backend_refuses_an_unfolded_forward_too():
    pytest.importorskip("aihwkit")
    analog = _programmed(3, backend="aihwkit")
    with pytest.raises(StateError, match="aihwkit model is programmed with 3 chip instances"):
        analog(torch.randn(6, 16))
    with asim.instances_folded(analog):
        assert analog(torch.randn(6, 16)).shape == (6, 5)
    assert not analog.instances_folded
