"""Analog layers: ``AnalogLinear`` and ``AnalogConv1d/2d/3d``.

Each holds the digital weight (the trainable parameter), a digital bias, and an
:class:`~analogsim.tile.AnalogTile`; ``forward`` is the tile's MVM plus the bias. The classes
here only say how their layer type multiplies a batch by a tile matrix (:class:`LinearOps`,
:class:`ConvOps`), including with K chip instances folded into the batch.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from analogsim import integer_mvm
from analogsim.chip import Chip
from analogsim.tile import AnalogTile


def _fused_conv_clamp(x: torch.Tensor, w: torch.Tensor, padding: list[int], stride: list[int],
                      dilation: list[int], groups: int, clip: float) -> torch.Tensor:
    """conv(x, w) clamped to ±clip in the convolution's epilogue (oneDNN, inference only)."""
    return torch.ops.mkldnn._convolution_pointwise(
        x, w, None, padding, stride, dilation, groups, "hardtanh", [-clip, clip], None)


@functools.cache
def _has_fused_conv_clamp() -> bool:
    """Whether this torch has the kernel and it computes clamp(conv): checked once, on a tiny
    convolution, as the kernel belongs to torch's private mkldnn backend."""
    if not (torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_convolution_pointwise")):
        return False
    x = torch.arange(50.0).reshape(1, 2, 5, 5) - 25.0
    w = torch.ones(3, 2, 3, 3)
    try:
        with torch.no_grad():
            fused = _fused_conv_clamp(x, w, [1, 1], [1, 1], [1, 1], 1, 30.0)
    except (RuntimeError, TypeError):
        return False
    return torch.equal(fused, F.conv2d(x, w, padding=1).clamp(-30.0, 30.0))


def _copy_parameters(source: nn.Module, target: nn.Module) -> nn.Module:
    """Copy weight and bias from ``source`` into ``target``, on ``source``'s device."""
    with torch.no_grad():
        target.weight.copy_(source.weight.reshape(target.weight.shape))
        if source.bias is not None:
            target.bias.copy_(source.bias)
    return target.to(source.weight.device)


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
        integer_codes: bool = False,
    ) -> torch.Tensor:
        k_count, out = w.shape[:2]
        if integer_codes and bias is None and integer_mvm.applies(x, w):
            y = integer_mvm.matmul(x, w)
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

    def scale_outputs(self, y: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        k_count, out = factor.shape
        if k_count == 1:
            return y * factor[0]
        return (y.reshape(k_count, -1, out) * factor.unsqueeze(1)).reshape(y.shape)


class ConvOps:
    """MVM operations of an N-d convolution on inputs (N, C, *spatial).

    K instances: instance k's slice of the batch (K·B, C, ...) is convolved with its own
    weights.
    """

    batches_instances = False  # the tile runs K instances in turn: activations stay in cache

    def __init__(self, layer: _AnalogConvNd) -> None:
        self.layer = layer
        self.conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[layer.spatial_dims]
        padding = layer.conv_padding  # a tuple, 0 (explicit padding modes) or "same"/"valid"
        self._fused_padding = (
            None if isinstance(padding, str) or not _has_fused_conv_clamp()
            else [padding] * layer.spatial_dims if isinstance(padding, int) else list(padding))

    def _convolve(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        groups: int,
        bias: torch.Tensor | None = None,
        clip: float | None = None,
    ) -> torch.Tensor:
        layer = self.layer
        fused = (clip is not None and bias is None and self._fused_padding is not None
                 and x.dtype == torch.float32 and x.device.type == "cpu")
        if fused:  # one pass less over the output
            return _fused_conv_clamp(x, w, self._fused_padding, list(layer.stride),
                                     list(layer.dilation), groups, clip)
        y = self.conv(x, w, bias, layer.stride, layer.conv_padding, layer.dilation, groups)
        return y if clip is None else y.clamp_(-clip, clip)

    def input_chunk(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        layer = self.layer
        per_group = layer.in_channels // layer.groups
        if start == 0 and stop == per_group:
            return x
        if layer.groups == 1:
            return x[:, start:stop]
        grouped = x.reshape(x.shape[0], layer.groups, per_group, *x.shape[2:])
        return grouped[:, :, start:stop].reshape(x.shape[0], -1, *x.shape[2:])

    def vector_dims(self, x: torch.Tensor) -> tuple[int, ...]:
        return tuple(range(1, x.dim()))

    def mvm(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        bias: torch.Tensor | None = None,
        clip: float | None = None,
        integer_codes: bool = False,  # convolutions multiply in float32 only
    ) -> torch.Tensor:
        layer = self.layer
        k_count, out, rows = w.shape
        kernels = w.reshape(k_count, out, rows // layer.kernel_elements, *layer.kernel_size)
        flat_bias = None if bias is None else bias.reshape(-1)
        if k_count == 1:
            return self._convolve(x, kernels[0], layer.groups, flat_bias, clip)
        # One convolution per instance beats one K-fold grouped convolution on CPU.
        inputs = x.reshape(k_count, -1, *x.shape[1:])
        return torch.cat([self._convolve(inputs[k], kernels[k], layer.groups, flat_bias, clip)
                          for k in range(k_count)])

    def square_sum(self, x_squared: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        layer = self.layer
        ones = x_squared.new_ones(layer.groups, stop - start, *layer.kernel_size)
        sums = self._convolve(x_squared, ones, layer.groups)  # (N, groups, ...)
        if layer.groups == 1:
            return sums
        return sums.repeat_interleave(layer.out_channels // layer.groups, dim=1)

    def scale_outputs(self, y: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        k_count, out = factor.shape
        view = (k_count, -1, out) + (1,) * (y.dim() - 2)
        return (y.reshape(k_count, -1, *y.shape[1:]) * factor.reshape(view)).reshape(y.shape)


class AnalogLinear(nn.Module):
    """A fully connected layer computed on an analog tile.

    Args:
        in_features, out_features: as ``nn.Linear``.
        chip: the device card.
        bias: whether to add a (digital) bias.
        layer_index: position in the model, for seed derivation.

    Shape:
        Input (N, *, in_features); output (N, *, out_features). With K programmed instances in
        eval mode, N = K·B instance-major.

    Attributes:
        weight: the digital weight (out_features, in_features), trainable.
        bias: the digital bias (out_features) or None.
        tile: the analog state.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        chip: Chip,
        bias: bool = True,
        layer_index: int = 0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.tile = AnalogTile(chip, out_features, in_features, 1, layer_index)
        self._ops = LinearOps()
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @classmethod
    def from_digital(cls, module: nn.Linear, chip: Chip, layer_index: int) -> AnalogLinear:
        """An analog copy of ``module`` with the same weight and bias."""
        layer = cls(
            module.in_features, module.out_features, chip, module.bias is not None, layer_index
        )
        return _copy_parameters(module, layer)

    def to_digital(self) -> nn.Linear:
        """An ``nn.Linear`` with this layer's digital weight and bias."""
        module = nn.Linear(self.in_features, self.out_features, self.bias is not None)
        return _copy_parameters(self, module)

    def weight_matrix(self) -> torch.Tensor:
        """The weight as the tile sees it: (out, rows)."""
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tile(x, self.weight, self._ops, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class _AnalogConvNd(nn.Module):
    """Shared body of the analog convolutions (zeros padding applied inside the conv)."""

    spatial_dims: int
    digital_class: type[nn.modules.conv._ConvNd]

    def __init__(self, source: nn.modules.conv._ConvNd, chip: Chip, layer_index: int) -> None:
        super().__init__()
        self.in_channels = source.in_channels
        self.out_channels = source.out_channels
        self.kernel_size = tuple(source.kernel_size)
        self.stride = tuple(source.stride)
        self.dilation = tuple(source.dilation)
        self.groups = source.groups
        self.padding = source.padding
        self.padding_mode = source.padding_mode
        # Non-zero padding modes pad explicitly before a padding-free conv, as nn.ConvNd does.
        self.conv_padding = source.padding if source.padding_mode == "zeros" else 0
        self._reversed_padding = source._reversed_padding_repeated_twice
        self.kernel_elements = math.prod(self.kernel_size)
        self.weight = nn.Parameter(source.weight.detach().clone())
        self.bias = nn.Parameter(source.bias.detach().clone()) if source.bias is not None else None
        self.tile = AnalogTile(
            chip,
            self.out_channels,
            self.in_channels // self.groups,
            self.kernel_elements,
            layer_index,
        )
        self._ops = ConvOps(self)

    @classmethod
    def from_digital(
        cls, module: nn.modules.conv._ConvNd, chip: Chip, layer_index: int
    ) -> _AnalogConvNd:
        """An analog copy of ``module`` with the same weight, bias and geometry."""
        return cls(module, chip, layer_index)

    def to_digital(self) -> nn.modules.conv._ConvNd:
        """The digital convolution with this layer's weight, bias and geometry."""
        module = self.digital_class(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.bias is not None,
            self.padding_mode,
        )
        return _copy_parameters(self, module)

    def weight_matrix(self) -> torch.Tensor:
        """The weight as the tile sees it: (out, in/groups · kernel elements)."""
        return self.weight.reshape(self.out_channels, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding, mode=self.padding_mode)
        bias = None if self.bias is None else self.bias.reshape(-1, *([1] * self.spatial_dims))
        return self.tile(x, self.weight_matrix(), self._ops, bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, bias={self.bias is not None}"
        )


class AnalogConv1d(_AnalogConvNd):
    """``nn.Conv1d`` on an analog tile (see :class:`AnalogLinear` for the instance folding)."""

    spatial_dims = 1
    digital_class = nn.Conv1d


class AnalogConv2d(_AnalogConvNd):
    """``nn.Conv2d`` on an analog tile (see :class:`AnalogLinear` for the instance folding)."""

    spatial_dims = 2
    digital_class = nn.Conv2d


class AnalogConv3d(_AnalogConvNd):
    """``nn.Conv3d`` on an analog tile (see :class:`AnalogLinear` for the instance folding)."""

    spatial_dims = 3
    digital_class = nn.Conv3d


ANALOG_LAYERS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: AnalogLinear,
    nn.Conv1d: AnalogConv1d,
    nn.Conv2d: AnalogConv2d,
    nn.Conv3d: AnalogConv3d,
}
"""Digital layer type → its analog counterpart (subclasses of the keys convert too)."""

AnalogLayer = AnalogLinear | _AnalogConvNd
