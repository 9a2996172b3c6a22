"""Normalisation, training augmentations and batching, on whole batch tensors.

The augmentations are those of torchvision's ``RandomCrop(size, padding=4)`` and
``RandomHorizontalFlip()`` (the recipes of METHODS.md §2, §10 and §13), written as vectorised
torch on a batch (N, C, H, W): one draw per image from an explicit ``torch.Generator``, no Python
loop over images. They take data that is already normalised; pad with
:attr:`Normalization.black` to match torchvision, which pads the raw image with black before
normalising.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from analogsim.errors import ShapeError, UsageError

__all__ = ["Normalization", "batches", "random_crop", "random_flip"]


@dataclass(frozen=True)
class Normalization:
    """Per-channel standardisation ``(x - mean) / std`` of images with pixels in [0, 1].

    Attributes:
        mean: per-channel mean, in pixel units ([0, 1]).
        std: per-channel standard deviation, in pixel units; each > 0.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean:
            raise UsageError(
                f"Normalization needs one mean and one std per channel; got {len(self.mean)} "
                f"means and {len(self.std)} stds"
            )
        if any(s <= 0 for s in self.std):
            raise UsageError(f"Normalization std must be > 0 in every channel; got {self.std}")

    @property
    def black(self) -> tuple[float, ...]:
        """The value a black pixel (0) takes after normalisation, per channel."""
        return tuple(-m / s for m, s in zip(self.mean, self.std, strict=True))

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """Return ``(images - mean) / std``, channel-wise.

        Shape:
            images: (N, C, H, W) with C = len(mean), pixels in [0, 1]; the output has the same
            shape and dtype.
        """
        channels = len(self.mean)
        if images.ndim != 4 or images.shape[1] != channels:
            raise ShapeError(
                f"Normalization with {channels} channel(s) needs images of shape "
                f"(N, {channels}, H, W); got {tuple(images.shape)}"
            )
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device)
        return (images - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def _check_images(images: torch.Tensor, caller: str) -> None:
    if images.ndim != 4:
        raise ShapeError(
            f"{caller} needs a batch of images of shape (N, C, H, W); got {tuple(images.shape)}. "
            "Load the data set with flatten=False."
        )


def random_crop(
    images: torch.Tensor,
    *,
    generator: torch.Generator,
    padding: int = 4,
    fill: float | Sequence[float] = 0.0,
) -> torch.Tensor:
    """Pad each image by ``padding`` on all four sides and cut a random window of the original size.

    As torchvision's ``RandomCrop(H, padding=padding)``: image n gets a top offset ``i[n]`` and a
    left offset ``j[n]``, each uniform on {0, …, 2·padding}, drawn as
    ``torch.randint(0, 2 * padding + 1, (2, N), generator=generator)`` (row 0 is i, row 1 is j).
    Offset ``padding`` leaves the image where it was.

    Args:
        images: the batch to augment.
        generator: the source of the offsets (on any device; offsets move to ``images.device``).
        padding: pixels added on each side, ≥ 0.
        fill: the value of the padding, one number or one per channel (for normalised data use
            :attr:`Normalization.black`).

    Shape:
        images: (N, C, H, W); output: (N, C, H, W), a new tensor.
    """
    _check_images(images, "random_crop")
    if padding < 0:
        raise UsageError(f"random_crop padding must be ≥ 0; got {padding!r}")
    n, c, h, w = images.shape
    device = images.device
    fill_values = torch.as_tensor(fill, dtype=images.dtype, device=device).reshape(-1, 1, 1)
    if fill_values.shape[0] not in (1, c):
        raise ShapeError(
            f"random_crop fill needs 1 or {c} values (one per channel); got {fill_values.shape[0]}"
        )
    padded = images.new_empty((n, c, h + 2 * padding, w + 2 * padding))
    padded[:] = fill_values
    padded[:, :, padding : padding + h, padding : padding + w] = images

    offsets = torch.randint(
        0, 2 * padding + 1, (2, n), generator=generator, device=generator.device
    ).to(device)
    rows = offsets[0, :, None] + torch.arange(h, device=device)  # (N, H)
    cols = offsets[1, :, None] + torch.arange(w, device=device)  # (N, W)
    batch_index = torch.arange(n, device=device).view(n, 1, 1, 1)
    channel_index = torch.arange(c, device=device).view(1, c, 1, 1)
    return padded[batch_index, channel_index, rows[:, None, :, None], cols[:, None, None, :]]


def random_flip(
    images: torch.Tensor, *, generator: torch.Generator, p: float = 0.5
) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``.

    Image n is flipped iff ``u[n] < p`` with ``u = torch.rand(N, generator=generator)``, as
    torchvision's ``RandomHorizontalFlip(p)`` decides per image.

    Args:
        images: the batch to augment.
        generator: the source of the decisions (on any device).
        p: the probability of a flip, in [0, 1].

    Shape:
        images: (N, C, H, W); output: (N, C, H, W), a new tensor.
    """
    _check_images(images, "random_flip")
    if not 0.0 <= p <= 1.0:
        raise UsageError(f"random_flip p must be in [0, 1]; got {p!r}")
    draws = torch.rand(images.shape[0], generator=generator, device=generator.device)
    flip = (draws < p).to(images.device).view(-1, 1, 1, 1)
    return torch.where(flip, images.flip(-1), images)


def batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x_batch, y_batch)`` pairs that cover the data set once (one epoch).

    The data stay where they are (no worker processes, no copies beyond the batch itself), which
    for these in-memory data sets is faster than a ``DataLoader``. With ``shuffle`` the order is
    ``torch.randperm(N, generator=generator)``; without it, the stored order.

    Args:
        x: the inputs, first dimension N.
        y: the labels, first dimension N.
        batch_size: samples per batch, ≥ 1; the last batch may be smaller.
        shuffle: draw a new random order (needs ``generator``).
        generator: the source of the order; unused when ``shuffle`` is False.
        drop_last: skip a last batch smaller than ``batch_size`` (BatchNorm cannot train on a
            batch of one).

    Shape:
        x: (N, ...), y: (N,); each yield: (B, ...), (B,) with B ≤ batch_size.
    """
    n = x.shape[0]
    if y.shape[0] != n:
        raise ShapeError(f"batches needs as many labels as inputs; got {n} inputs, {y.shape[0]}")
    if batch_size < 1:
        raise UsageError(f"batches batch_size must be ≥ 1; got {batch_size!r}")
    order = None
    if shuffle:
        if generator is None:
            raise UsageError("batches with shuffle=True needs a torch.Generator (generator=...); "
                             "got generator=None")
        order = torch.randperm(n, generator=generator, device=generator.device).to(x.device)
    stop_at = n - n % batch_size if drop_last else n
    for start in range(0, stop_at, batch_size):
        if order is None:
            yield x[start : start + batch_size], y[start : start + batch_size]
        else:
            index = order[start : start + batch_size]
            yield x[index], y[index.to(y.device)]
