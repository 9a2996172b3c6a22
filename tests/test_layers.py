"""The public analog layer family: one base class, torch-shaped constructors, from_digital."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import analogsim as asim
from analogsim.conversion import analog_layers
from analogsim.seeding import make_generator

# (analog class, torch class, positional arguments, keyword arguments), as a user writes them
LAYERS = [
    (asim.AnalogLinear, nn.Linear, (12, 5), {}),
    (asim.AnalogLinear, nn.Linear, (12, 5), {"bias": False}),
    (asim.AnalogConv1d, nn.Conv1d, (3, 4, 5), {"stride": 2, "padding": 2}),
    (asim.AnalogConv2d, nn.Conv2d, (3, 8, 3), {"padding": 1, "groups": 1}),
    (asim.AnalogConv2d, nn.Conv2d, (4, 8, (3, 2)), {"padding": "same", "dilation": 2,
                                                    "padding_mode": "reflect"}),
    (asim.AnalogConv2d, nn.Conv2d, (4, 8, 3), {"groups": 2, "padding_mode": "circular",
                                               "padding": 1}),
    (asim.AnalogConv3d, nn.Conv3d, (2, 3, 2), {"bias": False}),
]
IDS = ["linear", "linear-no-bias", "conv1d", "conv2d", "conv2d-same-reflect",
       "conv2d-grouped-circular", "conv3d"]


def sample_input(digital: nn.Module) -> torch.Tensor:
    generator = make_generator(11)
    if isinstance(digital, nn.Linear):
        return torch.randn(6, digital.in_features, generator=generator)
    spatial = {nn.Conv1d: (17,), nn.Conv2d: (9, 10), nn.Conv3d: (5, 6, 4)}[type(digital)]
    return torch.randn(2, digital.in_channels, *spatial, generator=generator)


@pytest.mark.parametrize(("analog_class", "torch_class", "args", "kwargs"), LAYERS, ids=IDS)
def test_constructors_are_shaped_and_initialised_like_torch(analog_class, torch_class, args,
                                                            kwargs):
    torch.manual_seed(3)
    digital = torch_class(*args, **kwargs)
    torch.manual_seed(3)
    analog = analog_class(*args, **kwargs, chip="ideal")
    assert isinstance(analog, asim.AnalogLayer) and analog.digital_class is torch_class
    assert torch.equal(analog.weight, digital.weight)  # the same draws as torch's init
    assert (analog.bias is None) == (digital.bias is None)
    if digital.bias is not None:
        assert torch.equal(analog.bias, digital.bias)
    # on the ideal card (no periphery, no noise) the analog layer computes the torch layer
    x = sample_input(digital)
    torch.testing.assert_close(analog(x), digital(x), rtol=1e-5, atol=1e-6)
    assert type(analog.to_digital()) is torch_class
    torch.testing.assert_close(analog.to_digital()(x), digital(x), rtol=0, atol=0)


@pytest.mark.parametrize(("analog_class", "torch_class", "args", "kwargs"), LAYERS, ids=IDS)
def test_from_digital_copies_and_draws_no_random_numbers(analog_class, torch_class, args,
                                                         kwargs):
    digital = torch_class(*args, **kwargs)
    state = torch.random.get_rng_state()
    analog = analog_class.from_digital(digital, asim.load_chip("pcm"), layer_index=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(analog.weight, digital.weight) and analog.weight is not digital.weight
    assert analog.tile.layer_index == 2 and analog.chip.name == "pcm"


def test_a_model_built_from_analog_layers_programs_like_a_converted_one():
    torch.manual_seed(0)
    built = nn.Sequential(asim.AnalogConv2d(1, 4, 3, padding=1, chip="pcm", layer_index=0),
                          nn.ReLU(), nn.Flatten(),
                          asim.AnalogLinear(4 * 6 * 6, 3, chip="pcm", layer_index=1))
    digital = asim.convert(asim.to_digital(built), "pcm")
    assert [name for name, _ in analog_layers(built)] == ["0", "3"]
    for model in (built, digital):
        asim.program(model.eval(), seed=5, instances=2)
        asim.drift(model, 3600)
    x = torch.randn(2 * 3, 1, 6, 6, generator=make_generator(12))
    with torch.no_grad(), asim.instances_folded(built), asim.instances_folded(digital):
        assert torch.equal(built(x), digital(x))  # same weights, seeds and layer indices


def test_a_bad_card_or_geometry_is_refused_as_torch_would():
    with pytest.raises(asim.AnalogsimError, match="nope"):
        asim.AnalogLinear(3, 4, chip="nope")
    with pytest.raises(ValueError, match="groups"):
        asim.AnalogConv2d(3, 4, 3, groups=2, chip="pcm")  # torch's own check of the geometry


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_explicit_padding_matches_torch_for_same_and_valid():
    # an even kernel pads one more on one side than the other: the case to get right
    from analogsim.tiles.layers import explicit_padding

    x = torch.randn(1, 2, 7, 8, generator=make_generator(13))
    for kernel, dilation in [((3, 2), (2, 1)), ((4, 5), (1, 3))]:
        conv = nn.Conv2d(2, 2, kernel, padding="same", dilation=dilation, bias=False)
        widths = explicit_padding("same", kernel, dilation)
        expected = conv(x)
        padded = F.conv2d(F.pad(x, widths), conv.weight, dilation=dilation)
        torch.testing.assert_close(padded, expected)
    assert explicit_padding("valid", (3, 3), (1, 1)) == (0, 0, 0, 0)
    assert explicit_padding((1, 2), (3, 3), (1, 1)) == (2, 2, 1, 1)


def test_training_through_an_adc_with_a_bias_and_a_per_vector_scale():
    # the float output factor of an ideal card with an ADC, out of place (autograd)
    layer = asim.AnalogLinear(4, 3, chip=asim.load_chip("ideal", adc_bits=8)).train()
    x = torch.randn(5, 4)
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer.bias.grad is not None
    assert torch.allclose(layer.bias.grad, torch.full((3,), 5.0))
