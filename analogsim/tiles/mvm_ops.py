"""How each layer type multiplies a batch by a tile matrix, with K chip instances folded in.

A tile's forward is the same for every layer type; what differs is the product itself: a
(batched) matmul for a fully connected layer, a convolution for a convolutional one.
:class:`LinearOps` and :class:`ConvOps` implement the :class:`MvmOps` protocol the tile calls.
Inputs of K programmed instances are folded into the batch, instance-major: (K·B, ...).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from analogsim.tiles import integer_mvm

#: Computes (or returns the cached) digit planes of each instance of a tile matrix.
DigitPlanesSource = Callable[[], list[integer_mvm.DigitPlanes]]


class MvmOps(Protocol):
    """How a layer type multiplies inputs by a tile's matrix."""

    #: whether one call on K instances beats K calls of one (a batched matmul does; K
    #: convolutions in turn keep each instance's activations in cache)
    batches_instances: bool

    def input_chunk(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """The inputs feeding rows [start·k, stop·k) (k = kernel elements), in channel units."""

    def vector_dims(self, x: torch.Tensor) -> tuple[int, ...]:
        """Dimensions spanned by one DAC input vector."""

    def mvm(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        bias: torch.Tensor | None = None,
        clip: float | None = None,
        digit_planes: DigitPlanesSource | None = None,
    ) -> torch.Tensor:
        """y = W x (+ bias) for instance-folded x (K·B, ...) and w (K, out, rows).

        Only passed when no gradient is needed: with ``clip``, y is clamped to ±clip, in the
        MVM's own kernel where the backend has one; ``digit_planes`` says x holds integer codes
        in [−127, 127] and gives w's int8 digit planes, so exact integer products may be used
        (:mod:`analogsim.tiles.integer_mvm`).
        """

    def square_sum(self, x_squared: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Σ_j x_j² of each input vector, broadcastable to the output."""

    def scale_outputs(self, y: torch.Tensor, factor: torch.Tensor, in_place: bool = False
                      ) -> torch.Tensor:
        """y multiplied by a per-instance, per-output factor (K, out); overwriting y when
        ``in_place`` (y contiguous, needing no gradient)."""


class LinearOps:
    """MVM operations of a fully connected layer on inputs (N, ..., in)."""

    batches_instances = True  # one bmm over K instances

    def input_chunk(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        if start == 0 and stop == x.shape[-1]:
            return x
        return x[..., start:stop]

    def vector_dims(self, x: torch.Tensor) -> tuple[int, ...]:
        return (-1,)

    def mvm(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        bias: torch.Tensor | None = None,
        clip: float | None = None,
        digit_planes: DigitPlanesSource | None = None,
    ) -> torch.Tensor:
        k_count, out = w.shape[:2]
        if digit_planes is not None and bias is None and integer_mvm.applies(x, w):
            y = integer_mvm.matmul(x, digit_planes())
        elif k_count == 1:
            y = F.linear(x, w[0], bias)
        else:
            x_by_instance = x.reshape(k_count, -1, x.shape[-1])  # (K, B·..., in)
            if bias is None:
                y = torch.bmm(x_by_instance, w.transpose(1, 2))  # (K, B·..., out)
            else:
                y = torch.baddbmm(bias, x_by_instance, w.transpose(1, 2))
            y = y.reshape(*x.shape[:-1], out)
        return y if clip is None else y.clamp_(-clip, clip)

    def square_sum(self, x_squared: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        return x_squared.sum(dim=-1, keepdim=True)

    def scale_outputs(self, y: torch.Tensor, factor: torch.Tensor, in_place: bool = False
                      ) -> torch.Tensor:
        k_count, out = factor.shape
        if k_count == 1:
            return y.mul_(factor[0]) if in_place else y * factor[0]
        if in_place:
            y.view(k_count, -1, out).mul_(factor.unsqueeze(1))
            return y
        return (y.reshape(k_count, -1, out) * factor.unsqueeze(1)).reshape(y.shape)


@dataclass(frozen=True)
class ConvGeometry:
    """What a convolution's MVM needs of its layer (see ``nn.Conv2d`` for the meanings).

    ``padding`` is the padding applied inside the convolution: the layer's own with zeros
    padding, 0 when a non-zero padding mode pads explicitly before it.
    """

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...] | int | str
    dilation: tuple[int, ...]
    groups: int

    @property
    def spatial_dims(self) -> int:
        return len(self.kernel_size)

    @property
    def kernel_elements(self) -> int:
        return math.prod(self.kernel_size)


def fused_conv_clamp(x: torch.Tensor, w: torch.Tensor, padding: list[int], stride: list[int],
                     dilation: list[int], groups: int, clip: float) -> torch.Tensor:
    """conv(x, w) clamped to ±clip in the convolution's epilogue (oneDNN, inference only)."""
    return torch.ops.mkldnn._convolution_pointwise(
        x, w, None, padding, stride, dilation, groups, "hardtanh", [-clip, clip], None)


@functools.cache
def has_fused_conv_clamp() -> bool:
    """Whether this torch has the kernel and it computes clamp(conv): checked once, on a tiny
    convolution, as the kernel belongs to torch's private mkldnn backend."""
    if not (torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_convolution_pointwise")):
        return False
    x = torch.arange(50.0).reshape(1, 2, 5, 5) - 25.0
    w = torch.ones(3, 2, 3, 3)
    try:
        with torch.no_grad():
            fused = fused_conv_clamp(x, w, [1, 1], [1, 1], [1, 1], 1, 30.0)
    except (RuntimeError, TypeError):
        return False
    return torch.equal(fused, F.conv2d(x, w, padding=1).clamp(-30.0, 30.0))


class ConvOps:
    """MVM operations of an N-d convolution on inputs (N, C, *spatial).

    K instances: instance k's slice of the batch (K·B, C, ...) is convolved with its own
    weights.
    """

    batches_instances = False  # the tile runs K instances in turn: activations stay in cache

    def __init__(self, geometry: ConvGeometry) -> None:
        self.geometry = geometry
        self.conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[geometry.spatial_dims]
        padding = geometry.padding  # a tuple, 0 (explicit padding modes) or "same"/"valid"
        self.fused_padding = (
            None if isinstance(padding, str) or not has_fused_conv_clamp()
            else [padding] * geometry.spatial_dims if isinstance(padding, int) else list(padding))

    def convolve(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        groups: int,
        bias: torch.Tensor | None = None,
        clip: float | None = None,
    ) -> torch.Tensor:
        """conv(x, w) (+ bias) with the layer's geometry, clamped to ±clip if given."""
        geometry = self.geometry
        fused = (clip is not None and bias is None and self.fused_padding is not None
                 and x.dtype == torch.float32 and x.device.type == "cpu")
        if fused:  # one pass less over the output
            return fused_conv_clamp(x, w, self.fused_padding, list(geometry.stride),
                                    list(geometry.dilation), groups, clip)
        y = self.conv(x, w, bias, geometry.stride, geometry.padding, geometry.dilation, groups)
        return y if clip is None else y.clamp_(-clip, clip)

    def input_chunk(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        geometry = self.geometry
        per_group = geometry.in_channels // geometry.groups
        if start == 0 and stop == per_group:
            return x
        if geometry.groups == 1:
            return x[:, start:stop]
        grouped = x.reshape(x.shape[0], geometry.groups, per_group, *x.shape[2:])
        return grouped[:, :, start:stop].reshape(x.shape[0], -1, *x.shape[2:])

    def vector_dims(self, x: torch.Tensor) -> tuple[int, ...]:
        return tuple(range(1, x.dim()))

    def mvm(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        bias: torch.Tensor | None = None,
        clip: float | None = None,
        digit_planes: DigitPlanesSource | None = None,  # convolutions multiply in float32 only
    ) -> torch.Tensor:
        geometry = self.geometry
        k_count, out, rows = w.shape
        kernels = w.reshape(k_count, out, rows // geometry.kernel_elements, *geometry.kernel_size)
        flat_bias = None if bias is None else bias.reshape(-1)
        if k_count == 1:
            return self.convolve(x, kernels[0], geometry.groups, flat_bias, clip)
        # One convolution per instance beats one K-fold grouped convolution on CPU.
        inputs = x.reshape(k_count, -1, *x.shape[1:])
        return torch.cat([self.convolve(inputs[k], kernels[k], geometry.groups, flat_bias, clip)
                          for k in range(k_count)])

    def square_sum(self, x_squared: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        geometry = self.geometry
        ones = x_squared.new_ones(geometry.groups, stop - start, *geometry.kernel_size)
        sums = self.convolve(x_squared, ones, geometry.groups)  # (N, groups, ...)
        if geometry.groups == 1:
            return sums
        return sums.repeat_interleave(geometry.out_channels // geometry.groups, dim=1)

    def scale_outputs(self, y: torch.Tensor, factor: torch.Tensor, in_place: bool = False
                      ) -> torch.Tensor:
        k_count, out = factor.shape
        view = (k_count, -1, out) + (1,) * (y.dim() - 2)
        if in_place:
            y.view(k_count, -1, *y.shape[1:]).mul_(factor.reshape(view))
            return y
        return (y.reshape(k_count, -1, *y.shape[1:]) * factor.reshape(view)).reshape(y.shape)
