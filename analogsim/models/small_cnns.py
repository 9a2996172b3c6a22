"""The small CNNs of Walking Noise: LeNet-5 (models_noisy/lenet.py) and CNN-S for keyword
spotting (models_noisy/cnn_HE.py), each with and without BatchNorm."""

from collections.abc import Sequence

from torch import nn

from analogsim.errors import SpecError
from analogsim.models.blocks import check_image_shape, check_positive, maybe_batch_norm


def _lenet(
    model: str, input_shape: Sequence[int], num_classes: int, *, batch_norm: bool
) -> nn.Sequential:
    channels, height, width = check_image_shape(model, input_shape)
    check_positive(model, num_classes=num_classes)
    # Two (5×5 valid convolution, 2×2 max-pool) stages: 28 → 24 → 12 → 8 → 4, 32 → … → 5.
    out_height, out_width = ((height - 4) // 2 - 4) // 2, ((width - 4) // 2 - 4) // 2
    if out_height < 1 or out_width < 1:
        raise SpecError(
            f"model {model!r}: input_shape={tuple(input_shape)!r} is too small; expected height "
            "and width ≥ 16 (two 5×5 convolutions and two 2×2 pools)"
        )

    return nn.Sequential(
        nn.Conv2d(channels, 6, kernel_size=5),
        *maybe_batch_norm(batch_norm, 6, 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5),
        *maybe_batch_norm(batch_norm, 16, 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * out_height * out_width, 120),
        *maybe_batch_norm(batch_norm, 120, 1),
        nn.ReLU(),
        nn.Linear(120, 84),
        *maybe_batch_norm(batch_norm, 84, 1),
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
    channels, height, width = check_image_shape(model, input_shape)
    check_positive(model, num_classes=num_classes)
    # Unpadded (4, 10) kernels, the first with stride (1, 2): (10, 49) → (7, 20) → (4, 11).
    out_height, out_width = height - 3 - 3, (width - 10) // 2 + 1 - 9
    if out_height < 1 or out_width < 1:
        raise SpecError(
            f"model {model!r}: input_shape={tuple(input_shape)!r} is too small; expected height "
            "≥ 7 and width ≥ 28 (two unpadded (4, 10) convolutions, the first of stride (1, 2))"
        )

    return nn.Sequential(
        nn.Conv2d(channels, 28, kernel_size=(4, 10), stride=(1, 2)),
        *maybe_batch_norm(batch_norm, 28, 2),
        nn.ReLU(),
        nn.Conv2d(28, 30, kernel_size=(4, 10)),
        *maybe_batch_norm(batch_norm, 30, 2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(30 * out_height * out_width, 128),
        *maybe_batch_norm(batch_norm, 128, 1),
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
