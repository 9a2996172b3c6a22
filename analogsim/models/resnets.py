"""The CIFAR ResNets: ResNet-20 of He et al. 2016 §4.2 (S0) and ResNet-18 (S3)."""

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from analogsim.errors import SpecError
from analogsim.models.blocks import check_positive

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
    check_positive("resnet20", num_classes=num_classes, in_channels=in_channels)
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
    check_positive("resnet18_cifar", num_classes=num_classes, in_channels=in_channels)
    return CifarResNet(
        (64, 128, 256, 512),
        (2, 2, 2, 2),
        shortcut="B",
        in_channels=in_channels,
        num_classes=num_classes,
    )
