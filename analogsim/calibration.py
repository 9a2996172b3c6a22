"""``calibrate``: one fixed DAC input range per analog layer, from calibration data.

A card with ``dac.input_scaling = "calibrated"`` makes each analog layer divide its inputs by a
fixed range r (then the DAC clips the result to ±``dac.bound`` and quantises it) and multiply
its outputs back by r, as real chips with one DAC range per layer do; ``abs_max`` instead
divides each input vector by its own max|x|. :func:`calibrate` sets r:

1. It runs the model on calibration data *digitally*: in eval mode (dropout off, batch norm on
   its running statistics), every analog tile multiplying exactly by its layer's digital weight,
   with no DAC, ADC, noise or programmed state. So r depends on the weights and the data only,
   is the same for every chip instance, and calibration needs no range to exist first.
2. A forward pre-hook on each analog layer's tile records |x| of every element of its input
   (the tile's input: for a convolution with a non-zero padding mode, after that padding).
3. r is the ``percentile``-th percentile of all those |x| of the layer, in the layer's input
   units, with numpy's default (``"linear"``) interpolation between order statistics.

The percentile is exact whenever it falls among the :data:`TAIL_SIZE` largest |x| of a layer
(at 99.99: up to 655 million input elements per layer), or the layer saw at most
:data:`SAMPLE_SIZE` elements. Otherwise it is the percentile of a uniform random sample of
:data:`SAMPLE_SIZE` elements (without replacement, drawn from a generator derived from
``seed``). Memory stays bounded: per layer the tail and the sample, plus one batch's |x|.

r is the buffer ``tile.input_range`` of each layer (a 0-d tensor; empty before calibration), so
it moves with ``.to()`` and is saved and loaded with the model's state dict. Layers whose card
uses another input scaling get a range too; they ignore it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from analogsim.backends.base import BackendModel
from analogsim.conversion import analog_layers
from analogsim.errors import ArgumentTypeError, ConversionError, UsageError
from analogsim.seeding import Purpose, make_generator
from analogsim.tiles import AnalogTile

log = logging.getLogger(__name__)

#: Largest |x| kept exactly per layer: percentiles among them are exact (2^16 values).
TAIL_SIZE = 1 << 16
#: Size of the uniform sample of |x| kept per layer for lower percentiles (2^18 values).
SAMPLE_SIZE = 1 << 18


class AbsoluteInputs:
    """|x| of every input element one layer received: its largest values and a uniform sample.

    Args:
        name: the layer's qualified name, for messages.
        generator: the CPU generator of the sample's random keys.
        tail_size: how many of the largest |x| are kept exactly.
        sample_size: how many |x| the uniform sample keeps.
    """

    def __init__(self, name: str, generator: torch.Generator, tail_size: int = TAIL_SIZE,
                 sample_size: int = SAMPLE_SIZE) -> None:
        self.name = name
        self.generator = generator
        self.tail_size = tail_size
        self.sample_size = sample_size
        self.count = 0
        self.tail = torch.empty(0)  # the largest |x| seen, unordered
        self.sample = torch.empty(0)
        self.keys = torch.empty(0)  # uniform keys: the sample holds the smallest ones

    def add(self, x: torch.Tensor) -> None:
        """Record |x| of every element of ``x`` (on the CPU, as float32)."""
        values = x.detach().reshape(-1).abs().float().cpu()
        if not bool(torch.isfinite(values).all()):
            raise UsageError(f"layer {self.name!r} received NaN or infinite inputs during "
                             "calibration; calibrate on finite data")
        self.count += values.numel()
        tail = torch.cat([self.tail, values])
        self.tail = tail if tail.numel() <= self.tail_size else tail.topk(self.tail_size).values
        keys = torch.cat([self.keys, torch.rand(values.numel(), generator=self.generator)])
        sample = torch.cat([self.sample, values])
        if sample.numel() > self.sample_size:
            kept = keys.topk(self.sample_size, largest=False).indices
            keys, sample = keys[kept], sample[kept]
        self.keys, self.sample = keys, sample

    @property
    def exact_everywhere(self) -> bool:
        """Whether every |x| seen is still held (in the sample)."""
        return self.count <= self.sample_size

    def percentile(self, percentile: float) -> float:
        """The ``percentile``-th percentile of the |x| seen (numpy's linear interpolation).

        Exact when both order statistics it interpolates are in the tail, or every value is
        held; else the percentile of the uniform sample.
        """
        q = percentile / 100.0
        position = q * (self.count - 1)  # 0-based, ascending (numpy "linear")
        low = math.floor(position)
        high = min(low + 1, self.count - 1)
        from_top = self.count - 1 - low  # rank of the lower order statistic from the top
        if from_top < self.tail.numel():
            ordered = self.tail.sort(descending=True).values.double()
            lower, upper = ordered[from_top], ordered[self.count - 1 - high]
        elif self.exact_everywhere:
            ordered = self.sample.sort().values.double()
            lower, upper = ordered[low], ordered[high]
        else:
            return float(torch.quantile(self.sample.double(), q))
        return float(lower + (position - low) * (upper - lower))


def _check_arguments(model: Any, percentile: Any, batches: Any, batch_size: Any) -> None:
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"calibrate() takes a torch nn.Module; got "
                                f"{type(model).__name__}")
    if isinstance(model, BackendModel) or any(isinstance(m, BackendModel)
                                              for m in model.modules()):
        raise ConversionError("calibrate() sets the input ranges of analogsim's native tiles; "
                              "the aihwkit backend has no calibrated input scaling (convert "
                              "with backend='native')")
    if (isinstance(percentile, bool) or not isinstance(percentile, int | float)
            or not 0 < percentile <= 100):
        raise UsageError(f"The 'percentile' parameter of calibrate must be a number in "
                         f"(0, 100]; got {percentile!r} instead.")
    for name, value in (("batches", batches), ("batch_size", batch_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise UsageError(f"The {name!r} parameter of calibrate must be an integer ≥ 1"
                             f"{' or None' if name == 'batches' else ''}; got {value!r} "
                             "instead.")


def calibration_inputs(data: Any, batch_size: int) -> Iterator[torch.Tensor]:
    """The input batches of ``data``: a tensor (cut into batches of ``batch_size`` samples),
    an (inputs, labels) pair of tensors (likewise), or an iterable of input batches or of
    (inputs, labels, ...) tuples such as a DataLoader's."""
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(d, torch.Tensor)
                                                          for d in data):
        data = data[0]
    if isinstance(data, torch.Tensor):
        if data.dim() == 0:
            raise UsageError("calibrate() needs a batch of inputs, (N, ...); got a 0-d tensor")
        yield from data.split(batch_size)
        return
    if not isinstance(data, Iterable):
        raise ArgumentTypeError(f"calibrate() takes a tensor or an iterable of batches as "
                                f"data; got {type(data).__name__}")
    for index, batch in enumerate(data):
        x = batch[0] if isinstance(batch, tuple | list) and batch else batch
        if not isinstance(x, torch.Tensor):
            raise ArgumentTypeError(f"calibrate(): batch {index} of the data is a "
                                    f"{type(x).__name__}; expected a tensor of inputs or an "
                                    "(inputs, labels) pair")
        yield x


@contextmanager
def digital_tiles(model: nn.Module) -> Iterator[None]:
    """Inside, every analog tile of ``model`` multiplies exactly by its digital weight."""
    tiles = [m for m in model.modules() if isinstance(m, AnalogTile)]
    previous = [tile.digital_forward for tile in tiles]
    for tile in tiles:
        tile.digital_forward = True
    try:
        yield
    finally:
        for tile, value in zip(tiles, previous, strict=True):
            tile.digital_forward = value


def calibrate(model: nn.Module, data: Any, percentile: float = 99.99,
              batches: int | None = None, *, batch_size: int = 256, seed: int = 0
              ) -> dict[str, float]:
    """Set each analog layer's fixed DAC input range from calibration data (in place).

    The model runs digitally in eval mode (training mode is restored afterwards); see the
    module docstring for what is recorded and how the percentile is computed. The ranges
    follow the weights of the moment: calibrate again after training.

    Args:
        model: a converted model (native analog layers), programmed or not.
        data: calibration inputs: a tensor (N, ...), an (inputs, labels) pair, or an iterable
            of input batches or of (inputs, labels) pairs (a DataLoader).
        percentile: which percentile of |x| becomes the range, in (0, 100]; 100 is the max.
        batches: use at most this many batches of ``data`` (None: all).
        batch_size: samples per batch when ``data`` is a tensor or a tensor pair.
        seed: seed of the uniform sample, used only where a layer saw more than
            :data:`SAMPLE_SIZE` input elements and the percentile lies below its tail.

    Returns:
        {qualified layer name: range r}, in the units of the layer's input.

    Raises:
        ConversionError: ``model`` has no native analog layers (or is an aihwkit model).
        UsageError: a percentile outside (0, 100], empty data, non-finite inputs, or a range
            of 0 where some inputs are not 0.
    """
    _check_arguments(model, percentile, batches, batch_size)
    layers = list(analog_layers(model))
    if not layers:
        raise ConversionError("calibrate() needs a model with analog layers: call "
                              "analogsim.convert(model, chip) first")
    recorded = {name: AbsoluteInputs(name, make_generator(seed, Purpose.CALIBRATION,
                                                          layer.tile.layer_index))
                for name, layer in layers}
    hooks = [layer.tile.register_forward_pre_hook(
        lambda _tile, args, inputs=recorded[name]: inputs.add(args[0]))
        for name, layer in layers]
    was_training = model.training
    used = 0
    try:
        model.eval()
        with torch.no_grad(), digital_tiles(model):
            for x in calibration_inputs(data, batch_size):
                if batches is not None and used == batches:
                    break
                model(x)
                used += 1
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if not any(inputs.count for inputs in recorded.values()):
        raise UsageError("calibrate() got no calibration inputs: the data is empty")
    ranges = {}
    for name, layer in layers:
        inputs = recorded[name]
        if inputs.count == 0:
            log.warning("analog layer %r received no inputs during calibration; its input "
                        "range stays unset", name)
            continue
        ranges[name] = _range(inputs, percentile)
        tile = layer.tile
        tile.input_range = torch.tensor(ranges[name], dtype=layer.weight.dtype,
                                        device=tile.input_range.device)
    log.info("calibrated the input ranges of %d analog layers at the %gth percentile of |x| "
             "over %d batches", len(ranges), percentile, used)
    return ranges


def _range(inputs: AbsoluteInputs, percentile: float) -> float:
    """The layer's range: the percentile of its |x|, refusing 0 unless every |x| is 0."""
    value = inputs.percentile(percentile)
    if value > 0:
        return value
    if inputs.percentile(100.0) > 0:
        raise UsageError(f"the {percentile:g}th percentile of |x| of layer {inputs.name!r} is "
                         f"0: more than {percentile:g} % of its calibration inputs are 0; "
                         "calibrate with a higher percentile")
    log.warning("every calibration input of layer %r is 0; its input range is set to 1",
                inputs.name)
    return 1.0
