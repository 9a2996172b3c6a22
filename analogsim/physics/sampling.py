"""Random draws for one or for K chip instances at once.

A physics function that draws takes ``generators``: one ``torch.Generator``, or a sequence of
K of them for a tensor whose leading dimension holds K equal instance-major blocks (K chip
instances, or K·B rows of K instances). Block k is drawn from ``generators[k]`` only, so an
instance's numbers do not depend on how many others are drawn beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from analogsim.errors import ShapeError

Generators = torch.Generator | Sequence[torch.Generator]


def _fill(tensor: torch.Tensor, generators: Generators, fill: str, *args: float) -> torch.Tensor:
    if isinstance(generators, torch.Generator):
        return getattr(tensor, fill)(*args, generator=generators)
    if tensor.shape[0] % len(generators):
        raise ShapeError(f"a tensor drawn with {len(generators)} generators needs a leading "
                         f"dimension divisible by {len(generators)} (one block per instance); "
                         f"got shape {tuple(tensor.shape)}")
    for block, generator in zip(tensor.chunk(len(generators)), generators, strict=True):
        getattr(block, fill)(*args, generator=generator)
    return tensor


def standard_normal(shape: Sequence[int], generators: Generators,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """N(0, 1) of ``shape``, block k of the leading dimension from ``generators[k]``."""
    return _fill(torch.empty(tuple(shape), dtype=dtype), generators, "normal_")


def normal(shape: Sequence[int], std: float, generators: Generators,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """N(0, std²) of ``shape``, block k of the leading dimension from ``generators[k]``.

    The std is applied inside the draw, saving a pass over the result; for blocks of 16 or
    more numbers the values equal ``standard_normal(...) * std`` bit for bit.
    """
    return _fill(torch.empty(tuple(shape), dtype=dtype), generators, "normal_", 0.0, std)


def uniform(shape: Sequence[int], generators: Generators,
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """U[0, 1) of ``shape``, block k of the leading dimension from ``generators[k]``."""
    return _fill(torch.empty(tuple(shape), dtype=dtype), generators, "uniform_")
