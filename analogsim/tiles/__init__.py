"""Tiles: the analog state of one layer and its MVM through the periphery (DESIGN step 4–5).

A layer's tile is built from stages, one module each, wired by :class:`AnalogTile`:

- :mod:`.layout`: row chunks × column groups, which tile holds which row and output;
- :mod:`.converters`: DAC, input scaling, ADC;
- :mod:`.device_model` and :mod:`.programmed`: the card's physics applied at programming and
  drift, and the read-out of conductances into the weights the MVM sees;
- :mod:`.coding`: analog weight coding (encode before programming, decode after reading);
- :mod:`.wires`: wire resistance (IR drop): the conductances each crossbar's MVM sees;
- :mod:`.compensation`: the drift-compensation read-out;
- :mod:`.noise`: noise drawn at every read, sampled in output space;
- :mod:`.forward` with :mod:`.mvm_ops` and :mod:`.integer_mvm`: the forward itself;
- :mod:`.streams`: the tile's random streams.

:mod:`.layers` holds the public layer family on top: :class:`AnalogLayer` and its subclasses;
:mod:`.hf_layers` those for HuggingFace transformers' layers, recognised by class name.
:mod:`.cost` prices one input vector through a layer's tiles (the card's ``[cost]``).
"""

import torch

from analogsim.tiles.attention import AnalogMultiheadAttention as AnalogMultiheadAttention
from analogsim.tiles.hf_layers import NAMED_LAYERS as NAMED_LAYERS
from analogsim.tiles.hf_layers import AnalogHFConv1D as AnalogHFConv1D
from analogsim.tiles.hf_layers import named_analog_class as named_analog_class
from analogsim.tiles.layers import ANALOG_LAYERS as ANALOG_LAYERS
from analogsim.tiles.layers import AnalogConv1d as AnalogConv1d
from analogsim.tiles.layers import AnalogConv2d as AnalogConv2d
from analogsim.tiles.layers import AnalogConv3d as AnalogConv3d
from analogsim.tiles.layers import AnalogConvNd as AnalogConvNd
from analogsim.tiles.layers import AnalogLayer as AnalogLayer
from analogsim.tiles.layers import AnalogLinear as AnalogLinear
from analogsim.tiles.recurrent import AnalogGRU as AnalogGRU
from analogsim.tiles.recurrent import AnalogLSTM as AnalogLSTM
from analogsim.tiles.recurrent import AnalogRNN as AnalogRNN
from analogsim.tiles.tile import AnalogTile as AnalogTile

#: Digital modules that multiply by their own weight matrices in their own code → their
#: composite analog module, whose projections are analog layers. Each has
#: ``from_digital(module, chip, layer_index)`` (its tiles take consecutive layer indices from
#: ``layer_index``) and ``to_digital()``. Checked before :data:`ANALOG_LAYERS`.
COMPOSITE_LAYERS = {
    torch.nn.MultiheadAttention: AnalogMultiheadAttention,
    torch.nn.LSTM: AnalogLSTM,
    torch.nn.GRU: AnalogGRU,
    torch.nn.RNN: AnalogRNN,
}
