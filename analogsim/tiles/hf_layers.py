"""Analog layers for HuggingFace ``transformers`` modules: GPT-2's ``Conv1D``.

``transformers.pytorch_utils.Conv1D(nf, nx)`` is a fully connected layer whose weight is
stored transposed, (in, out) = (nx, nf), and whose forward is ``x @ W + b``. Its analog
counterpart :class:`AnalogHFConv1D` keeps that layout for its trainable weight (so ties and
checkpoints see the same tensor) and gives the tile ``W.T``, (out, in).

transformers is optional and slow to import, so nothing here imports it until a layer is
turned back into a digital one: conversion recognises these classes by the qualified name of
a class in the module's MRO (:data:`NAMED_LAYERS`, :func:`named_analog_class`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from analogsim.cards import Chip, load_chip
from analogsim.errors import MissingExtraError, ShapeError
from analogsim.tiles.layers import AnalogLayer, copy_parameters
from analogsim.tiles.mvm_ops import LinearOps
from analogsim.tiles.tile import AnalogTile

#: the qualified name of transformers' Conv1D class
HF_CONV1D = "transformers.pytorch_utils.Conv1D"


def hf_conv1d_class() -> type[nn.Module]:
    """``transformers.pytorch_utils.Conv1D``, imported on first use.

    Raises:
        MissingExtraError: transformers is not installed.
    """
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError as error:
        raise MissingExtraError(
            "turning an AnalogHFConv1D back into transformers' Conv1D needs the transformers "
            "package; install it with `pip install transformers`") from error
    return Conv1D


class _DigitalClass:
    """``AnalogHFConv1D.digital_class``: the Conv1D class, resolved when first read."""

    def __get__(self, instance: object, owner: type) -> type[nn.Module]:
        return hf_conv1d_class()


class AnalogHFConv1D(AnalogLayer):
    """transformers' ``Conv1D`` (GPT, GPT-2) on an analog tile: ``y = x W + b``.

    Args:
        nf: output features (as ``Conv1D``).
        nx: input features (as ``Conv1D``).
        chip: the device card (a :class:`~analogsim.cards.Chip` or a card name/path).
        layer_index: position in the model, for seed derivation.
        device, dtype: of the weight and bias.

    Shape:
        Input (N, *, nx); output (N, *, nf). With K programmed instances in eval mode,
        N = K·B instance-major.

    Attributes:
        weight: (nx, nf), transposed as in ``Conv1D``; the tile sees ``weight.T``, (nf, nx).
        bias: (nf,); Conv1D always has one.
    """

    digital_class = _DigitalClass()  # type: ignore[assignment]

    def __init__(self, nf: int, nx: int, *, chip: Chip | str, layer_index: int = 0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.nf, self.nx = nf, nx
        self.in_features, self.out_features = nx, nf
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(nx, nf, **factory))
        self.bias = nn.Parameter(torch.empty(nf, **factory))
        self.tile = AnalogTile(load_chip(chip), nf, nx, 1, layer_index)
        self.ops = LinearOps()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as ``Conv1D`` does: weight ~ N(0, 0.02²), bias 0."""
        nn.init.normal_(self.weight, std=0.02)
        nn.init.zeros_(self.bias)

    @classmethod
    def from_digital(cls, module: nn.Module, chip: Chip | str, layer_index: int = 0
                     ) -> AnalogHFConv1D:
        layer = nn.utils.skip_init(cls, module.nf, module.nx, chip=chip,
                                   layer_index=layer_index, device=module.weight.device,
                                   dtype=module.weight.dtype)
        return copy_parameters(module, layer)

    def to_digital(self) -> nn.Module:
        """A ``Conv1D`` with this layer's weight and bias (copies; no random draws)."""
        with torch.device("meta"):  # allocates nothing, draws nothing
            module = hf_conv1d_class()(self.nf, self.nx)
        module.weight = nn.Parameter(self.weight.detach().clone(),
                                     requires_grad=self.weight.requires_grad)
        module.bias = nn.Parameter(self.bias.detach().clone(),
                                   requires_grad=self.bias.requires_grad)
        return module

    def weight_matrix(self) -> torch.Tensor:
        """The weight as the tile sees it: (nf, nx), a transposed view."""
        return self.weight.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 0 or x.shape[-1] != self.nx:  # a noisy tile would slice, not fail
            raise ShapeError(f"{self.layer_name()}: input of shape {tuple(x.shape)} has "
                             f"{x.shape[-1] if x.dim() else 0} features in its last "
                             f"dimension; expected nx = {self.nx}")
        return self.tile(x, self.weight_matrix(), self.ops, self.bias)

    def extra_repr(self) -> str:
        return f"nf={self.nf}, nx={self.nx}"


NAMED_LAYERS: dict[str, type[AnalogLayer]] = {HF_CONV1D: AnalogHFConv1D}
"""Qualified name of a digital layer class of an optional package → its analog counterpart
(subclasses convert too). Matched by name, so the package is never imported to check."""


def named_analog_class(module_class: type) -> tuple[type, type[AnalogLayer]] | None:
    """(the matching base class in the MRO, its analog class) of a class that
    :data:`NAMED_LAYERS` names, or None."""
    for base in module_class.__mro__:
        analog = NAMED_LAYERS.get(f"{base.__module__}.{base.__qualname__}")
        if analog is not None:
            return base, analog
    return None
