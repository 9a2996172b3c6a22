"""Multi-layer perceptrons: the demo ``mlp`` and the Walking Noise RL_TFC with and without
BatchNorm (models_noisy/mlp.py)."""

from collections.abc import Sequence

from torch import nn

from analogsim.models.blocks import check_positive, maybe_batch_norm


def _fully_connected(
    in_features: int, hidden: Sequence[int], num_classes: int, *, batch_norm: bool
) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for width in hidden:
        layers += [
            nn.Linear(in_features, width),
            *maybe_batch_norm(batch_norm, width, 1),
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
    check_positive("mlp", in_features=in_features, num_classes=num_classes)
    check_positive("mlp", **{f"hidden[{i}]": width for i, width in enumerate(hidden)})
    return _fully_connected(in_features, hidden, num_classes, batch_norm=False)


def rl_tfc(*, in_features: int = 64, num_classes: int = 10) -> nn.Sequential:
    """Walking Noise RL_TFC-noBN: three hidden (Linear 64, ReLU), then Linear (8 operators).

    Args:
        in_features: inputs per sample (64 digits, 784 MNIST, 3072 CIFAR-10).
        num_classes: outputs (logits).

    Shape:
        input: (B, …) with in_features elements per sample; output: (B, num_classes).
    """
    check_positive("rl_tfc", in_features=in_features, num_classes=num_classes)
    return _fully_connected(in_features, (64, 64, 64), num_classes, batch_norm=False)


def rl_tfc_bn(*, in_features: int = 64, num_classes: int = 10) -> nn.Sequential:
    """Walking Noise RL_TFC: three hidden (Linear 64, BatchNorm1d, ReLU), then Linear (11 ops).

    Args:
        in_features: inputs per sample (64 digits, 784 MNIST, 3072 CIFAR-10).
        num_classes: outputs (logits).

    Shape:
        input: (B, …) with in_features elements per sample; output: (B, num_classes).
    """
    check_positive("rl_tfc_bn", in_features=in_features, num_classes=num_classes)
    return _fully_connected(in_features, (64, 64, 64), num_classes, batch_norm=True)
