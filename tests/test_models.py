"""Tests of analogsim.models: every registered model, parameter counts, Walking Noise layouts."""

import pytest
import torch
from torch import nn

from analogsim import models
from analogsim.errors import SpecError

# The input of one sample for each registered model, at its defaults.
SAMPLE_SHAPES = {
    "cnn_s": (1, 10, 49),
    "cnn_s_bn": (1, 10, 49),
    "lenet5": (1, 28, 28),
    "lenet5_bn": (1, 28, 28),
    "mlp": (64,),
    "resnet18_cifar": (3, 32, 32),
    "resnet20": (3, 32, 32),
    "rl_tfc": (64,),
    "rl_tfc_bn": (64,),
    "vit_tiny": (1, 28, 28),
    "causal_lm_tiny": (16,),  # 16 token ids
}
NUM_CLASSES = {"cnn_s": 12, "cnn_s_bn": 12}  # Google Speech Commands; the others have 10
#: Models that take token ids, and the shape of their output per sample: logits per position.
TOKEN_MODELS = {"causal_lm_tiny": (16, 98)}


def sample_input(name: str, *batch: int) -> torch.Tensor:
    """Random inputs of the model ``name``: normal values, or token ids for a language model."""
    shape = (*batch, *SAMPLE_SHAPES[name])
    if name in TOKEN_MODELS:
        return torch.randint(0, TOKEN_MODELS[name][-1], shape)
    return torch.randn(shape)


def weight_count(model: nn.Module) -> int:
    """Conv and Linear weights only: what analog tiles hold (METHODS.md §0)."""
    return sum(
        module.weight.numel()
        for module in model.modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    )


def operator_layout(model: nn.Sequential) -> list[str]:
    """Walking Noise operator slots: the input, then every module but Flatten, in order."""
    return ["input"] + [type(m).__name__ for m in model if not isinstance(m, nn.Flatten)]


def test_every_model_has_a_sample_shape():
    assert sorted(SAMPLE_SHAPES) == models.list_models()


@pytest.mark.parametrize("name", models.list_models(), ids=str)
def test_forward_and_backward(name):
    torch.manual_seed(0)  # the default initialisation draws from the global generator
    model = models.create(name)
    out = model(sample_input(name, 4))
    assert out.shape == (4, *TOKEN_MODELS.get(name, (NUM_CLASSES.get(name, 10),)))
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", models.list_models(), ids=str)
def test_folded_batch_gives_the_per_instance_outputs(name):
    """The simulator stacks K chip instances along the batch: (K·B, …) must act as K × (B, …)."""
    torch.manual_seed(0)
    model = models.create(name).eval()
    x = sample_input(name, 2, 3)  # (K, B, …)
    with torch.no_grad():
        folded = model(x.flatten(0, 1)).unflatten(0, (2, 3))
        for k in range(2):
            torch.testing.assert_close(folded[k], model(x[k]))


def test_resnet18_cifar_weight_count_matches_isik():
    # METHODS.md §0: N_small + N_large of S3 = conv + linear weights of CIFAR ResNet-18.
    expected = 1_728 + 147_456 + 524_288 + 2_097_152 + 8_388_608 + 5_120
    assert expected == 11_164_352
    model = models.create("resnet18_cifar")
    assert weight_count(model) == expected
    assert weight_count(model.stem) == 1_728
    stage_counts = [147_456, 524_288, 2_097_152, 8_388_608]
    assert [weight_count(stage) for stage in model.stages] == stage_counts
    assert weight_count(model.fc) == 5_120


@pytest.mark.parametrize(
    ("shortcut", "params"), [("A", 269_722), ("B", 272_474)], ids=["option-A", "option-B"]
)
def test_resnet20_parameter_count(shortcut, params):
    model = models.create("resnet20", shortcut=shortcut)
    assert sum(p.numel() for p in model.parameters()) == params  # "0.27 M" (He et al. Table 6)


def test_resnet20_option_a_shortcut_pads_channels_with_zeros():
    model = models.create("resnet20").eval()
    shortcut = model.stages[1][0].shortcut  # 16 → 32 channels, stride 2
    x = torch.randn(2, 16, 8, 8)
    out = shortcut(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert not out[:, :8].any() and not out[:, 24:].any()


@pytest.mark.parametrize(
    ("name", "layout"),
    [
        ("rl_tfc", ["input"] + ["Linear", "ReLU"] * 3 + ["Linear"]),
        ("rl_tfc_bn", ["input"] + ["Linear", "BatchNorm1d", "ReLU"] * 3 + ["Linear"]),
        (
            "lenet5",
            ["input"] + ["Conv2d", "ReLU", "MaxPool2d"] * 2 + ["Linear", "ReLU"] * 2 + ["Linear"],
        ),
        (
            "lenet5_bn",
            ["input"]
            + ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"] * 2
            + ["Linear", "BatchNorm1d", "ReLU"] * 2
            + ["Linear"],
        ),
        ("cnn_s", ["input"] + ["Conv2d", "ReLU"] * 2 + ["Linear", "ReLU", "Linear"]),
        (
            "cnn_s_bn",
            ["input"]
            + ["Conv2d", "BatchNorm2d", "ReLU"] * 2
            + ["Linear", "BatchNorm1d", "ReLU", "Linear"],
        ),
    ],
    ids=str,
)
def test_walking_noise_operator_layout(name, layout):
    """METHODS.md §10: LeNet5 12 ops, LeNet5-BN 16, RL_TFC 11, RL_TFC-noBN 8 (0 = input)."""
    assert operator_layout(models.create(name)) == layout


def test_lenet5_bn_index_5_is_the_c16_convolution():
    # The mixed-noise study's "layer 5 (Conv)" (METHODS.md §10).
    model = models.create("lenet5_bn")
    conv = [m for m in model if not isinstance(m, nn.Flatten)][5 - 1]
    assert isinstance(conv, nn.Conv2d) and conv.out_channels == 16


@pytest.mark.parametrize(
    ("input_shape", "features"),
    [((1, 28, 28), 16 * 4 * 4), ((3, 32, 32), 16 * 5 * 5)],
    ids=["mnist", "cifar10"],
)
def test_lenet5_sizes_its_first_linear_from_the_input(input_shape, features):
    model = models.create("lenet5", input_shape=input_shape)
    first_linear = next(m for m in model if isinstance(m, nn.Linear))
    assert first_linear.in_features == features
    assert model(torch.zeros(2, *input_shape)).shape == (2, 10)


@pytest.mark.parametrize("name", ["mlp", "rl_tfc", "rl_tfc_bn"], ids=str)
def test_mlps_take_images_and_flatten_them(name):
    model = models.create(name, in_features=3 * 32 * 32, num_classes=7).eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_mlp_hidden_sizes():
    model = models.create("mlp", in_features=784, hidden=(100, 50, 25))
    widths = [m.out_features for m in model if isinstance(m, nn.Linear)]
    assert widths == [100, 50, 25, 10]


def test_unknown_model_lists_known_ones():
    with pytest.raises(SpecError,
                       match=r"unknown model 'vgg16'; expected one of causal_lm_tiny, cnn_s, "):
        models.create("vgg16")


def test_unknown_argument_lists_accepted_ones():
    with pytest.raises(
        SpecError,
        match=r"model 'resnet20' takes no argument 'depth'; expected some of num_classes, "
        r"in_channels, shortcut",
    ):
        models.create("resnet20", depth=32)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("mlp", {"num_classes": 0}, r"num_classes=0; expected a positive integer"),
        ("mlp", {"hidden": (64, -1)}, r"hidden\[1\]=-1; expected a positive integer"),
        ("lenet5", {"input_shape": (1, 12, 12)}, r"input_shape=\(1, 12, 12\) is too small"),
        ("lenet5", {"input_shape": (28, 28)}, r"input_shape=\(28, 28\); expected \(channels, "),
        ("cnn_s", {"input_shape": (1, 10, 20)}, r"input_shape=\(1, 10, 20\) is too small"),
        ("resnet20", {"shortcut": "C"}, r"shortcut='C'; expected 'A' \(zero padding\) or 'B'"),
    ],
    ids=["num_classes", "hidden", "lenet-small", "lenet-2d", "cnn_s-small", "shortcut"],
)
def test_bad_values_raise_spec_error(name, kwargs, message):
    with pytest.raises(SpecError, match=rf"model '{name}': {message}"):
        models.create(name, **kwargs)
