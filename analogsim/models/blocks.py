"""What the model families share: argument checks naming the model, and the optional
BatchNorm spliced into an ``nn.Sequential``."""

from collections.abc import Sequence

from torch import nn

from analogsim.errors import SpecError


def check_positive(model: str, **values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise SpecError(f"model {model!r}: {name}={value!r}; expected a positive integer")


def check_image_shape(model: str, input_shape: Sequence[int]) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise SpecError(
            f"model {model!r}: input_shape={tuple(input_shape)!r}; expected (channels, height, "
            "width)"
        )
    channels, height, width = input_shape
    check_positive(model, channels=channels, height=height, width=width)
    return channels, height, width


def maybe_batch_norm(enabled: bool, features: int, dims: int) -> list[nn.Module]:
    """[BatchNorm{dims}d(features)] if enabled, else []: to splice into an nn.Sequential."""
    if not enabled:
        return []
    return [nn.BatchNorm2d(features) if dims == 2 else nn.BatchNorm1d(features)]
