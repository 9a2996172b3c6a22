"""The network architectures of the reproduced papers, in plain ``torch.nn``, by name.

:func:`create` builds one from :func:`list_models`. Each model takes a batch of any size, so the
simulator can fold chip instances into the batch dimension, and flattens images by itself.
Weights keep PyTorch's default initialisation. The Walking Noise models keep a bias in every
layer, as the original does; the ResNets' convolutions have none (BatchNorm follows each).

The small models are ``nn.Sequential`` whose modules run in the order they are listed, so a
module's position among the non-``Flatten`` modules, plus one for the input, is its Walking Noise
operator index (METHODS.md §10): e.g. ``lenet5_bn`` has 16 operators, 0 input, 1 C6, 2 BN, ….

- ``mlp``: the demo MLP for digits/MNIST (default 64-64-64-10).
- ``rl_tfc``, ``rl_tfc_bn``: Walking Noise RL_TFC, three hidden layers of 64 (models_noisy/mlp.py).
- ``lenet5``, ``lenet5_bn``: Walking Noise LeNet-5 (models_noisy/lenet.py).
- ``cnn_s``, ``cnn_s_bn``: Walking Noise CNN-S for keyword spotting (models_noisy/cnn_HE.py).
- ``resnet20``: the CIFAR ResNet-20 of He et al. 2016 §4.2 (S0).
- ``resnet18_cifar``: the CIFAR ResNet-18 (S3).
"""

import inspect
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from analogsim.errors import SpecError

__all__ = [
    "CifarResNet",
    "cnn_s",
    "cnn_s_bn",
    "create",
    "lenet5",
    "lenet5_bn",
    "list_models",
    "mlp",
    "resnet18_cifar",
    "resnet20",
    "rl_tfc",
    "rl_tfc_bn",
]


def _check_positive(model: str, **values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise SpecError(f"model {model!r}: {name}={value!r}; expected a positive integer")


def _check_image_shape(model: str, input_shape: Sequence[int]) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise SpecError(
            f"model {model!r}: input_shape={tuple(input_shape)!r}; expected (channels, height, "
            "width)"
        )
    channels, height, width = input_shape
    _check_positive(model, channels=channels, height=height, width=width)
    return channels, height, width


def _maybe_batch_norm(enabled: bool, features: int, dims: int) -> list[nn.Module]:
    """[BatchNorm{dims}d(features)] if enabled, else []: to splice into an nn.Sequential."""
    if not enabled:
        return []
    return [nn.BatchNorm2d(features) if dims == 2 else nn.BatchNorm1d(features)]


# ------------------------------------------------------------------ multi-layer perceptrons


def _fully_connected(
    in_features: int, hidden: Sequence[int], num_classes: int, *, batch_norm: bool
) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for width in hidden:
        layers += [
            nn.Linear(in_features, width),
            *_maybe_batch_norm(batch_norm, width, 1),
            nn.ReLU(),
        ]
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)


def mlp(
    *, in_features: int = 64, hidden: Sequence[int] = (64, 64), num_classes: int = 10
) -> nn.Sequential:
    """A plain MLP: Flatten, then (Linear, ReLU) per hidden layer, then Linear.

    Args:
        in_features: inputs per sample (64 for digits, 784 for MNIST).
        hidden: the widths of the hidden layers.
        num_classes: outputs (logits).

    Shape:
        input: (B, in_features) or any (B, …) with in_features elements per sample;
        output: (B, num_classes).
    """
    _check_positive("mlp", in_features=in_features, num_classes=num_classes)
    _check_positive("mlp", **{f"hidden[{i}]": width for i, width in enumerate(hidden)})
    return _fully_connected(in_features, hidden, num_classes, batch_norm=False)


def rl_tfc(*, in_features: int = 64, num_classes: int = 10) -> nn.Sequential:
    """Walking Noise RL_TFC-noBN: three hidden (Linear 64, ReLU), then Linear (8 operators).

    Args:
        in_features: inputs per sample (64 digits, 784 MNIST, 3072 CIFAR-10).
        num_classes: outputs (logits).

    Shape:
        input: (B, …) with in_features elements per sample; output: (B, num_classes).
    """
    _check_positive("rl_tfc", in_features=in_features, num_classes=num_classes)
    return _fully_connected(in_features, (64, 64, 64), num_classes, batch_norm=False)


def rl_tfc_bn(*, in_features: int = 64, num_classes: int = 10) -> nn.Sequential:
    """Walking Noise RL_TFC: three hidden (Linear 64, BatchNorm1d, ReLU), then Linear (11 ops).

    Args:
        in_features: inputs per sample (64 digits, 784 MNIST, 3072 CIFAR-10).
        num_classes: outputs (logits).

    Shape:
        input: (B, …) with in_features elements per sample; output: (B, num_classes).
    """
    _check_positive("rl_tfc_bn", in_features=in_features, num_classes=num_classes)
    return _fully_connected(in_features, (64, 64, 64), num_classes, batch_norm=True)


# ------------------------------------------------------------------ small CNNs (Walking Noise)


def _lenet(
    model: str, input_shape: Sequence[int], num_classes: int, *, batch_norm: bool
) -> nn.Sequential:
    channels, height, width = _check_image_shape(model, input_shape)
    _check_positive(model, num_classes=num_classes)
    # Two (5×5 valid convolution, 2×2 max-pool) stages: 28 → 24 → 12 → 8 → 4, 32 → … → 5.
    out_height, out_width = ((height - 4) // 2 - 4) // 2, ((width - 4) // 2 - 4) // 2
    if out_height < 1 or out_width < 1:
        raise SpecError(
            f"model {model!r}: input_shape={tuple(input_shape)!r} is too small; expected height "
            "and width ≥ 16 (two 5×5 convolutions and two 2×2 pools)"
        )

    return nn.Sequential(
        nn.Conv2d(channels, 6, kernel_size=5),
        *_maybe_batch_norm(batch_norm, 6, 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5),
        *_maybe_batch_norm(batch_norm, 16, 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * out_height * out_width, 120),
        *_maybe_batch_norm(batch_norm, 120, 1),
        nn.ReLU(),
        nn.Linear(120, 84),
        *_maybe_batch_norm(batch_norm, 84, 1),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )


def lenet5(*, input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10) -> nn.Sequential:
    """Walking Noise LeNet-5: C6@5, ReLU, MP2, C16@5, ReLU, MP2, FC120, ReLU, FC84, ReLU, FC.

    The convolutions are unpadded, as in Walking Noise, whose ``LazyLinear`` then takes
    16·4·4 = 256 features for MNIST (1, 28, 28) and 16·5·5 = 400 for CIFAR-10 (3, 32, 32); the
    first Linear here is sized from ``input_shape`` to the same effect. 12 operators.

    Args:
        input_shape: (channels, height, width) of one image, height and width ≥ 16.
        num_classes: outputs (logits).

    Shape:
        input: (B, *input_shape); output: (B, num_classes).
    """
    return _lenet("lenet5", input_shape, num_classes, batch_norm=False)


def lenet5_bn(*, input_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10) -> nn.Sequential:
    """Walking Noise LeNet5-BN: :func:`lenet5` with a BatchNorm after every layer but the last.

    Order per block: convolution or Linear, BatchNorm, ReLU (then MaxPool). 16 operators.

    Args:
        input_shape: (channels, height, width) of one image, height and width ≥ 16.
        num_classes: outputs (logits).

    Shape:
        input: (B, *input_shape); output: (B, num_classes).
    """
    return _lenet("lenet5_bn", input_shape, num_classes, batch_norm=True)


def _cnn_s(
    model: str, input_shape: Sequence[int], num_classes: int, *, batch_norm: bool
) -> nn.Sequential:
    channels, height, width = _check_image_shape(model, input_shape)
    _check_positive(model, num_classes=num_classes)
    # Unpadded (4, 10) kernels, the first with stride (1, 2): (10, 49) → (7, 20) → (4, 11).
    out_height, out_width = height - 3 - 3, (width - 10) // 2 + 1 - 9
    if out_height < 1 or out_width < 1:
        raise SpecError(
            f"model {model!r}: input_shape={tuple(input_shape)!r} is too small; expected height "
            "≥ 7 and width ≥ 28 (two unpadded (4, 10) convolutions, the first of stride (1, 2))"
        )

    return nn.Sequential(
        nn.Conv2d(channels, 28, kernel_size=(4, 10), stride=(1, 2)),
        *_maybe_batch_norm(batch_norm, 28, 2),
        nn.ReLU(),
        nn.Conv2d(28, 30, kernel_size=(4, 10)),
        *_maybe_batch_norm(batch_norm, 30, 2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(30 * out_height * out_width, 128),
        *_maybe_batch_norm(batch_norm, 128, 1),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def cnn_s(*, input_shape: Sequence[int] = (1, 10, 49), num_classes: int = 12) -> nn.Sequential:
    """Walking Noise CNN-S (keyword spotting): C28, ReLU, C30, ReLU, FC128, ReLU, FC.

    Both convolutions have (4, 10) kernels and no padding; the first has stride (1, 2). The input
    is 10 MFCC coefficients × 49 frames of a 1 s Google Speech Commands clip, 12 classes
    (10 words, silence, unknown). 8 operators.

    Args:
        input_shape: (channels, coefficients, frames) of one clip.
        num_classes: outputs (logits).

    Shape:
        input: (B, *input_shape); output: (B, num_classes).
    """
    return _cnn_s("cnn_s", input_shape, num_classes, batch_norm=False)


def cnn_s_bn(*, input_shape: Sequence[int] = (1, 10, 49), num_classes: int = 12) -> nn.Sequential:
    """Walking Noise CNN-S-BN: :func:`cnn_s` with a BatchNorm after every layer but the last.

    Order per block: convolution or Linear, BatchNorm, ReLU. 11 operators.

    Args:
        input_shape: (channels, coefficients, frames) of one clip.
        num_classes: outputs (logits).

    Shape:
        input: (B, *input_shape); output: (B, num_classes).
    """
    return _cnn_s("cnn_s_bn", input_shape, num_classes, batch_norm=True)


# ------------------------------------------------------------------ CIFAR ResNets

Shortcut = Literal["A", "B"]


class _ZeroPadShortcut(nn.Module):
    """He et al.'s option A: subsample by 2 and append zero channels; no parameters."""

    def __init__(self, extra_channels: int) -> None:
        super().__init__()
        self.extra_channels = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.extra_channels // 2
        # (B, C, H, W) → (B, C + extra, H/2, W/2), zeros split before and after
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, half, self.extra_channels - half))

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra_channels}"


class _BasicBlock(nn.Module):
    """Two 3×3 convolutions with BatchNorm and a residual connection (He et al. 2016, Fig. 2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: Shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        elif shortcut == "A":
            self.shortcut = _ZeroPadShortcut(out_channels - in_channels)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """A ResNet for 32×32 images: 3×3 stem, no max-pool, stages of basic blocks, global pool, FC.

    Each stage after the first halves the resolution in its first block.

    Args:
        widths: the channels of each stage (also the stem's output: ``widths[0]``).
        blocks: basic blocks per stage.
        shortcut: ``"A"`` zero-padding identity or ``"B"`` 1×1 convolution + BatchNorm, where a
            block changes shape.
        in_channels: input image channels.
        num_classes: outputs (logits).

    Shape:
        input: (B, in_channels, H, W), 32 × 32 for CIFAR; output: (B, num_classes).
    """

    def __init__(
        self,
        widths: Sequence[int],
        blocks: Sequence[int],
        *,
        shortcut: Shortcut,
        in_channels: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        )
        stages = []
        channels = widths[0]
        for index, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            stride = 1 if index == 0 else 2
            stage = []
            for block in range(count):
                stage.append(_BasicBlock(channels, width, stride if block == 0 else 1, shortcut))
                channels = width
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.stages(self.stem(x)))  # (B, channels, 1, 1)
        return self.fc(self.flatten(features))


def _check_shortcut(model: str, shortcut: str) -> None:
    if shortcut not in ("A", "B"):
        raise SpecError(
            f"model {model!r}: shortcut={shortcut!r}; expected 'A' (zero padding) or 'B' (1×1 "
            "convolution)"
        )


def resnet20(
    *, num_classes: int = 10, in_channels: int = 3, shortcut: Shortcut = "A"
) -> CifarResNet:
    """ResNet-20 for CIFAR-10 (He et al. 2016 §4.2): 3 stages of 3 blocks, 16/32/64 channels.

    The default option-A shortcut (zero padding, as the paper uses on CIFAR) gives 269,722
    parameters (0.27 M); option B adds two 1×1 convolutions with BatchNorm (272,474).

    Args:
        num_classes: outputs (logits).
        in_channels: input image channels.
        shortcut: ``"A"`` or ``"B"``, see :class:`CifarResNet`.

    Shape:
        input: (B, in_channels, 32, 32) (any H, W divisible by 4); output: (B, num_classes).
    """
    _check_positive("resnet20", num_classes=num_classes, in_channels=in_channels)
    _check_shortcut("resnet20", shortcut)
    return CifarResNet(
        (16, 32, 64),
        (3, 3, 3),
        shortcut=shortcut,
        in_channels=in_channels,
        num_classes=num_classes,
    )


def resnet18_cifar(*, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-18, CIFAR variant: 3×3 stem of 64, no max-pool, 4 stages of 2 blocks, 64-512.

    Shortcuts that change shape are 1×1 convolutions with BatchNorm. With 10 classes the
    convolution and Linear weights number 11,164,352 (METHODS.md §0, S3).

    Args:
        num_classes: outputs (logits).
        in_channels: input image channels.

    Shape:
        input: (B, in_channels, 32, 32) (any H, W divisible by 8); output: (B, num_classes).
    """
    _check_positive("resnet18_cifar", num_classes=num_classes, in_channels=in_channels)
    return CifarResNet(
        (64, 128, 256, 512),
        (2, 2, 2, 2),
        shortcut="B",
        in_channels=in_channels,
        num_classes=num_classes,
    )


# ------------------------------------------------------------------ registry

_MODELS: dict[str, Callable[..., nn.Module]] = {
    "cnn_s": cnn_s,
    "cnn_s_bn": cnn_s_bn,
    "lenet5": lenet5,
    "lenet5_bn": lenet5_bn,
    "mlp": mlp,
    "resnet18_cifar": resnet18_cifar,
    "resnet20": resnet20,
    "rl_tfc": rl_tfc,
    "rl_tfc_bn": rl_tfc_bn,
}


def list_models() -> list[str]:
    """The names :func:`create` accepts, sorted."""
    return sorted(_MODELS)


def create(name: str, **kwargs: object) -> nn.Module:
    """Build the model called ``name`` (in training mode, freshly initialised).

    Args:
        name: one of :func:`list_models`.
        **kwargs: the keyword arguments of that model's function in this module (e.g.
            ``in_features`` for ``mlp``, ``input_shape`` for ``lenet5``).

    Raises:
        SpecError: an unknown name, an argument the model does not take, or a bad value.
    """
    if name not in _MODELS:
        raise SpecError(f"unknown model {name!r}; expected one of {', '.join(list_models())}")
    builder = _MODELS[name]
    accepted = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise SpecError(
            f"model {name!r} takes no argument {', '.join(map(repr, unknown))}; expected some of "
            f"{', '.join(accepted)}"
        )
    return builder(**kwargs)
