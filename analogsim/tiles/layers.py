"""Analog layers: the public base :class:`AnalogLayer`, ``AnalogLinear`` and ``AnalogConv1d/2d/3d``.

Each layer holds the digital weight (the trainable parameter), a digital bias, and an
:class:`~analogsim.tiles.tile.AnalogTile`; ``forward`` is the tile's MVM plus the bias.
Constructors take their torch counterpart's arguments plus the chip, and initialise the weight
and bias as torch does::

    layer = AnalogConv2d(3, 16, 3, padding=1, chip="pcm")   # like nn.Conv2d(3, 16, 3, padding=1)

``from_digital`` copies an existing torch layer; ``to_digital`` gives one back.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from analogsim.cards import Chip, load_chip
from analogsim.errors import ShapeError
from analogsim.tiles.mvm_ops import ConvGeometry, ConvOps, LinearOps, MvmOps
from analogsim.tiles.tile import AnalogTile


class AnalogLayer(nn.Module, abc.ABC):
    """Base of every analog layer: a digital weight and bias, and the tile that multiplies.

    Conversion, programming, training methods and the experiment engine find analog layers
    by this class.

    Attributes:
        weight: the digital weight, trainable; the tile sees it as a matrix (out, rows).
        bias: the digital bias, added after the ADCs, or None.
        tile: the analog state and MVM.
    """

    #: the torch layer this one stands for
    digital_class: ClassVar[type[nn.Module]]
    weight: nn.Parameter
    bias: nn.Parameter | None
    tile: AnalogTile
    ops: MvmOps
    #: the layer's name in the converted model ("" when built directly), for messages
    model_name: str = ""

    @property
    def chip(self) -> Chip:
        """The device card of this layer's tile."""
        return self.tile.chip

    def reset_parameters(self) -> None:
        """Initialise weight and bias as the torch counterpart does."""
        self.digital_class.reset_parameters(self)

    @classmethod
    @abc.abstractmethod
    def from_digital(cls, module: nn.Module, chip: Chip | str, layer_index: int = 0
                     ) -> AnalogLayer:
        """An analog copy of ``module`` with the same weight, bias and geometry."""

    @abc.abstractmethod
    def to_digital(self) -> nn.Module:
        """The torch layer with this layer's weight, bias and geometry."""

    @abc.abstractmethod
    def weight_matrix(self) -> torch.Tensor:
        """The weight as the tile sees it: (out, rows)."""

    def layer_name(self) -> str:
        """How an error names this layer: its name in the model (set by ``convert``) or its
        position, and its type."""
        where = repr(self.model_name) if self.model_name else f"#{self.tile.layer_index}"
        return f"layer {where} ({type(self).__name__})"


def copy_parameters(source: nn.Module, target: nn.Module) -> nn.Module:
    """Copy weight and bias from ``source`` into ``target``, on ``source``'s device."""
    with torch.no_grad():
        target.weight.copy_(source.weight.reshape(target.weight.shape))
        if source.bias is not None:
            target.bias.copy_(source.bias)
    return target.to(source.weight.device)


def _uninitialised(cls: type[AnalogLayer], module: nn.Module, *args: Any, **kwargs: Any
                   ) -> AnalogLayer:
    """``cls(*args, **kwargs)`` with the parameters of ``module``, drawing no random numbers."""
    layer = nn.utils.skip_init(cls, *args, device=module.weight.device,
                               dtype=module.weight.dtype, **kwargs)
    return copy_parameters(module, layer)


class AnalogLinear(AnalogLayer):
    """``nn.Linear`` on an analog tile.

    Args:
        in_features, out_features, bias, device, dtype: as ``nn.Linear``.
        chip: the device card (a :class:`~analogsim.cards.Chip` or a card name/path).
        layer_index: position in the model, for seed derivation.

    Shape:
        Input (N, *, in_features); output (N, *, out_features). With K programmed instances in
        eval mode, N = K·B instance-major.
    """

    digital_class = nn.Linear

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 chip: Chip | str, layer_index: int = 0, device: Any = None, dtype: Any = None
                 ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.tile = AnalogTile(load_chip(chip), out_features, in_features, 1, layer_index)
        self.ops = LinearOps()
        self.reset_parameters()

    @classmethod
    def from_digital(cls, module: nn.Module, chip: Chip | str, layer_index: int = 0
                     ) -> AnalogLinear:
        return _uninitialised(cls, module, module.in_features, module.out_features,
                              module.bias is not None, chip=chip, layer_index=layer_index)

    def to_digital(self) -> nn.Linear:
        module = nn.Linear(self.in_features, self.out_features, self.bias is not None,
                           dtype=self.weight.dtype)
        return copy_parameters(self, module)

    def weight_matrix(self) -> torch.Tensor:
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 0 or x.shape[-1] != self.in_features:  # a noisy tile would slice, not fail
            raise ShapeError(f"{self.layer_name()}: input of shape {tuple(x.shape)} has "
                             f"{x.shape[-1] if x.dim() else 0} features in its last "
                             f"dimension; expected in_features = {self.in_features}")
        return self.tile(x, self.weight, self.ops, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


def explicit_padding(padding: tuple[int, ...] | str, kernel_size: tuple[int, ...],
                     dilation: tuple[int, ...]) -> tuple[int, ...]:
    """``F.pad`` widths (last dimension first, before and after) of a convolution's padding."""
    if padding == "valid":
        return (0,) * (2 * len(kernel_size))
    if padding == "same":
        widths: list[int] = []
        for k, d in zip(reversed(kernel_size), reversed(dilation), strict=True):
            total = d * (k - 1)
            widths += [total // 2, total - total // 2]
        return tuple(widths)
    return tuple(p for side in reversed(padding) for p in (side, side))


class AnalogConvNd(AnalogLayer):
    """Base of the analog convolutions; non-zero padding modes pad before a padding-free
    convolution, as ``nn.ConvNd`` does.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
        padding_mode, device, dtype: as ``nn.Conv1d/2d/3d``.
        chip: the device card (a :class:`~analogsim.cards.Chip` or a card name/path).
        layer_index: position in the model, for seed derivation.
    """

    spatial_dims: ClassVar[int]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, ...],
                 stride: int | tuple[int, ...] = 1, padding: int | tuple[int, ...] | str = 0,
                 dilation: int | tuple[int, ...] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, chip: Chip | str, layer_index: int = 0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        # torch normalises and checks the geometry; a meta module allocates nothing
        shape = self.digital_class(in_channels, out_channels, kernel_size, stride, padding,
                                   dilation, groups, bias, padding_mode, device="meta")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = tuple(shape.kernel_size), tuple(shape.stride)
        self.padding, self.dilation = shape.padding, tuple(shape.dilation)
        self.groups, self.padding_mode = groups, padding_mode
        self.pad_widths = explicit_padding(shape.padding, self.kernel_size, self.dilation)
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(shape.weight.shape, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        geometry = ConvGeometry(in_channels, out_channels, self.kernel_size, self.stride,
                                self.padding if padding_mode == "zeros" else 0, self.dilation,
                                groups)
        self.tile = AnalogTile(load_chip(chip), out_channels, in_channels // groups,
                               geometry.kernel_elements, layer_index)
        self.ops = ConvOps(geometry)
        self.reset_parameters()

    @classmethod
    def from_digital(cls, module: nn.Module, chip: Chip | str, layer_index: int = 0
                     ) -> AnalogConvNd:
        return _uninitialised(cls, module, module.in_channels, module.out_channels,
                              module.kernel_size, module.stride, module.padding,
                              module.dilation, module.groups, module.bias is not None,
                              module.padding_mode, chip=chip, layer_index=layer_index)

    def to_digital(self) -> nn.Module:
        module = self.digital_class(
            self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
            self.dilation, self.groups, self.bias is not None, self.padding_mode,
            dtype=self.weight.dtype)
        return copy_parameters(self, module)

    def weight_matrix(self) -> torch.Tensor:
        """The weight as the tile sees it: (out, in/groups · kernel elements)."""
        return self.weight.reshape(self.out_channels, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            found = (f"{x.shape[1]} channels" if x.dim() == self.spatial_dims + 2
                     else f"{x.dim()} dimensions")
            raise ShapeError(f"{self.layer_name()}: input of shape {tuple(x.shape)} has "
                             f"{found}; expected (batch, in_channels = {self.in_channels}, "
                             f"{self.spatial_dims} spatial dimensions)")
        if self.padding_mode != "zeros":
            x = F.pad(x, self.pad_widths, mode=self.padding_mode)
        bias = None if self.bias is None else self.bias.reshape(-1, *([1] * self.spatial_dims))
        return self.tile(x, self.weight_matrix(), self.ops, bias)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={self.bias is not None}")


class AnalogConv1d(AnalogConvNd):
    """``nn.Conv1d`` on an analog tile (see :class:`AnalogLinear` for the instance folding)."""

    spatial_dims = 1
    digital_class = nn.Conv1d


class AnalogConv2d(AnalogConvNd):
    """``nn.Conv2d`` on an analog tile (see :class:`AnalogLinear` for the instance folding)."""

    spatial_dims = 2
    digital_class = nn.Conv2d


class AnalogConv3d(AnalogConvNd):
    """``nn.Conv3d`` on an analog tile (see :class:`AnalogLinear` for the instance folding)."""

    spatial_dims = 3
    digital_class = nn.Conv3d


ANALOG_LAYERS: dict[type[nn.Module], type[AnalogLayer]] = {
    nn.Linear: AnalogLinear,
    nn.Conv1d: AnalogConv1d,
    nn.Conv2d: AnalogConv2d,
    nn.Conv3d: AnalogConv3d,
}
"""Digital layer type → its analog counterpart (subclasses of the keys convert too)."""
