"""Analog recurrent layers: ``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` with their matrices on tiles.

For every layer l and direction, the input-to-hidden matrix (``weight_ih_l{l}``, ``bias_ih``)
and the hidden-to-hidden matrix (``weight_hh_l{l}``, ``bias_hh``) are :class:`AnalogLinear`
children named ``ih_l{l}`` and ``hh_l{l}`` (``ih_l{l}_reverse``, ``hh_l{l}_reverse`` for the
backward direction; ``hr_l{l}`` for an LSTM's projection, ``weight_hr_l{l}``). Programming,
drift and training methods find them as they find any analog layer. The gate arithmetic is
digital, as torch computes it::

    lstm = AnalogLSTM(16, 32, num_layers=2, bidirectional=True, chip="pcm")   # like nn.LSTM

The input-to-hidden products of a whole sequence go through their tile in one call; a tile
draws its noise per input vector and per read, so that is the physics of one call per step.
The hidden-to-hidden product runs once per step. The layers work on batch-major rows inside,
(B, T, features), so that with K programmed chip instances folded into the batch,
instance-major (:func:`analogsim.instances_folded`), rows k·B … (k+1)·B − 1 go through chip k
whichever ``batch_first`` the layer has.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from analogsim.cards import Chip, load_chip
from analogsim.errors import ArgumentTypeError, ShapeError
from analogsim.tiles.layers import AnalogLinear

State = tuple[torch.Tensor, ...]  # (h,) or, for an LSTM, (h, c); each (B, size)


class AnalogRNNBase(nn.Module, abc.ABC):
    """Base of the analog recurrent layers: the layer/direction loop, shared by all three.

    A subclass gives the gate count, the state it carries and :meth:`step`, one time step of
    its cell; everything else (shapes, initial states, directions, layers, dropout, packed
    sequences, conversion) is here.

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
        device, dtype: as ``nn.RNNBase``.
        chip: the device card (a :class:`~analogsim.cards.Chip` or a card name/path).
        layer_index: the layer index of the first child; the others take the next ones, in
            module order (``ih_l0``, ``hh_l0``, ``ih_l0_reverse``, …).
        proj_size: the LSTM's projection size (0: none).
        nonlinearity: the vanilla RNN's ``"tanh"`` or ``"relu"``.

    Shape:
        As the torch counterpart. With K programmed instances in eval mode, the batch is K·B
        instance-major (dimension 0 with ``batch_first``, else dimension 1).
    """

    digital_class: ClassVar[type[nn.RNNBase]]
    gates: ClassVar[int]  # gate blocks stacked in the weight matrices: 4 (LSTM), 3 (GRU), 1
    state_names: ClassVar[tuple[str, ...]] = ("h_0",)
    #: constructor arguments, read back from a torch module's attributes of the same name
    options: ClassVar[tuple[str, ...]] = ("input_size", "hidden_size", "num_layers", "bias",
                                          "batch_first", "dropout", "bidirectional")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, chip: Chip | str, layer_index: int = 0,
                 device: Any = None, dtype: Any = None, proj_size: int = 0,
                 nonlinearity: str = "tanh") -> None:
        super().__init__()
        extra = {name: value for name, value in (("proj_size", proj_size),
                                                 ("nonlinearity", nonlinearity))
                 if name in self.options}
        # torch checks the arguments (and warns about dropout with one layer, as it does);
        # a meta module allocates nothing
        self.digital_class(input_size, hidden_size, num_layers, bias=bias, dropout=dropout,
                           **extra, device="meta")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        self.nonlinearity = nonlinearity
        self.output_size = proj_size or hidden_size  # h's features
        self.suffixes = ("", "_reverse") if bidirectional else ("",)
        # children built on the meta device draw nothing: reset_parameters then draws as torch
        real_device = torch.get_default_device() if device is None else device
        factory = {"chip": load_chip(chip), "device": "meta", "dtype": dtype}
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else self.output_size * len(self.suffixes)
            for suffix in self.suffixes:
                name = f"l{layer}{suffix}"
                matrices = [("ih", layer_input, self.gates * hidden_size, bias),
                            ("hh", self.output_size, self.gates * hidden_size, bias)]
                if proj_size:
                    matrices.append(("hr", hidden_size, proj_size, False))
                for kind, rows, out, has_bias in matrices:
                    self.add_module(f"{kind}_{name}", AnalogLinear(
                        rows, out, has_bias, layer_index=layer_index, **factory))
                    layer_index += 1
        self.to_empty(device=real_device)
        self.reset_parameters()

    # ------------------------------------------------------------------------ parameters

    def torch_parameter_names(self) -> Iterator[str]:
        """Names of the torch module's weights and biases, in ``nn.RNNBase``'s order."""
        for layer in range(self.num_layers):
            for suffix in self.suffixes:
                for kind in ("weight", "bias") if self.bias else ("weight",):
                    yield from (f"{kind}_{matrix}_l{layer}{suffix}" for matrix in ("ih", "hh"))
                if self.proj_size:
                    yield f"weight_hr_l{layer}{suffix}"

    @staticmethod
    def analog_parameter_name(torch_name: str) -> str:
        """Where a torch parameter lives here: ``weight_ih_l0_reverse`` is
        ``ih_l0_reverse.weight``."""
        kind, matrix, position = torch_name.split("_", 2)
        return f"{matrix}_{position}.{kind}"

    def reset_parameters(self) -> None:
        """Initialise as torch does: every weight and bias from U(−1/√hidden, 1/√hidden), drawn
        in torch's order (the same seed gives torch's numbers)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name in self.torch_parameter_names():
            nn.init.uniform_(self.get_parameter(self.analog_parameter_name(name)), -bound, bound)

    def parameter_pairs(self, module: nn.RNNBase) -> Iterator[tuple[nn.Parameter, nn.Parameter]]:
        """(parameter of the torch ``module``, the same parameter here), for each of them."""
        for name in self.torch_parameter_names():
            yield module.get_parameter(name), self.get_parameter(self.analog_parameter_name(name))

    @classmethod
    def from_digital(cls, module: nn.RNNBase, chip: Chip | str, layer_index: int = 0
                     ) -> AnalogRNNBase:
        """An analog copy of ``module`` with its weights; draws no random numbers."""
        weight = next(module.parameters())
        kwargs = {name: getattr(module, name) for name in cls.options}
        layer = nn.utils.skip_init(cls, **kwargs, chip=chip, layer_index=layer_index,
                                   device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            for digital, analog in layer.parameter_pairs(module):
                analog.copy_(digital)
        return layer

    def to_digital(self) -> nn.RNNBase:
        """The torch module with this layer's options and weights."""
        weight = next(self.parameters())
        kwargs = {name: getattr(self, name) for name in self.options}
        module = self.digital_class(**kwargs, device="meta", dtype=weight.dtype)
        module.to_empty(device=weight.device)  # allocated, not initialised: the copy fills it
        with torch.no_grad():
            for digital, analog in self.parameter_pairs(module):
                digital.copy_(analog)
        return module

    # ------------------------------------------------------------------------ forward

    @abc.abstractmethod
    def step(self, gates_x: torch.Tensor, state: State, hh: AnalogLinear,
             projection: AnalogLinear | None) -> State:
        """One time step of the cell.

        Args:
            gates_x: (B, gates·hidden) input-to-hidden product of this step, bias included.
            state: the state after the previous step.
            hh: the hidden-to-hidden layer.
            projection: the LSTM's ``hr`` layer, or None.

        Returns:
            The new state; its first tensor is the output h, (B, output_size).
        """

    def state_sizes(self) -> tuple[int, ...]:
        """Features of each state tensor: (h,) or, for an LSTM, (h, c)."""
        return (self.output_size, self.hidden_size)[:len(self.state_names)]

    def layer_name(self) -> str:
        """How an error names this layer: its name in the model (from its children's names,
        which ``convert`` sets) or its first layer index, and its type."""
        first = self.get_submodule("ih_l0")
        parent = first.model_name.rpartition(".")[0]
        where = repr(parent) if parent else f"#{first.tile.layer_index}"
        return f"layer {where} ({type(self).__name__})"

    def batch_major(self, x: torch.Tensor | PackedSequence
                    ) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
        """The input as (B, T, input_size), a packed sequence's lengths (B,) (else None), and
        whether the input is batched."""
        if isinstance(x, PackedSequence):
            data, what = x.data, "packed input data"
        elif isinstance(x, torch.Tensor):
            data, what = x, "input"
            if x.dim() not in (2, 3):
                raise ShapeError(f"{self.layer_name()}: input of shape {tuple(x.shape)} has "
                                 f"{x.dim()} dimensions; expected 3 (batched) or 2 (unbatched)")
        else:
            raise ArgumentTypeError(f"{self.layer_name()}: input must be a tensor or a "
                                    f"PackedSequence; got {type(x).__name__}")
        if data.shape[-1] != self.input_size:
            raise ShapeError(f"{self.layer_name()}: {what} of shape {tuple(data.shape)} has "
                             f"{data.shape[-1]} features in its last dimension; expected "
                             f"input_size = {self.input_size}")
        if isinstance(x, PackedSequence):
            padded, lengths = pad_packed_sequence(x, batch_first=True)  # in the original order
            return padded, lengths.to(padded.device), True
        if x.dim() == 2:
            return x.unsqueeze(0), None, False
        return (x if self.batch_first else x.transpose(0, 1)), None, True

    def initial_state(self, hx: Any, x: torch.Tensor, batched: bool) -> list[torch.Tensor]:
        """The initial states, each (layers·directions, B, size): ``hx`` checked, or zeros."""
        count, batch = self.num_layers * len(self.suffixes), x.shape[0]
        if hx is None:
            return [x.new_zeros(count, batch, size) for size in self.state_sizes()]
        given = (hx,) if len(self.state_names) == 1 and isinstance(hx, torch.Tensor) else hx
        if not (isinstance(given, tuple | list) and len(given) == len(self.state_names)
                and all(isinstance(s, torch.Tensor) for s in given)):
            expected = ("a tensor h_0" if len(self.state_names) == 1
                        else "a tuple of tensors (h_0, c_0)")
            raise ArgumentTypeError(f"{self.layer_name()}: the initial state must be "
                                    f"{expected}; got {type(hx).__name__}")
        states = []
        for name, state, size in zip(self.state_names, given, self.state_sizes(), strict=True):
            expected = (count, batch, size) if batched else (count, size)
            if tuple(state.shape) != expected:
                axes = "layers·directions, batch, features" if batched else (
                    "layers·directions, features; the input is unbatched")
                raise ShapeError(f"{self.layer_name()}: {name} of shape {tuple(state.shape)}; "
                                 f"expected ({axes}) = {expected}")
            states.append(state if batched else state.unsqueeze(1))
        return states

    def run_direction(self, x: torch.Tensor, name: str, state: State,
                      lengths: torch.Tensor | None) -> tuple[torch.Tensor, State]:
        """One layer in one direction: (B, T, in) → outputs (B, T, output_size), final state.

        With ``lengths``, a row's state stops changing past its length (and, reversed, starts
        changing at its last element), as for a packed sequence.
        """
        hh = self.get_submodule(f"hh_{name}")
        projection = self.get_submodule(f"hr_{name}") if self.proj_size else None
        gates_x = self.get_submodule(f"ih_{name}")(x)  # (B, T, gates·hidden): T·B reads at once
        steps = range(x.shape[1] - 1, -1, -1) if name.endswith("_reverse") else range(x.shape[1])
        outputs = []
        for t in steps:
            new = self.step(gates_x[:, t], state, hh, projection)
            if lengths is not None:
                valid = (t < lengths).unsqueeze(1)  # (B, 1)
                new = tuple(torch.where(valid, n, s) for n, s in zip(new, state, strict=True))
            outputs.append(new[0])
            state = new
        if name.endswith("_reverse"):
            outputs.reverse()
        return torch.stack(outputs, dim=1), state

    def forward(self, input: torch.Tensor | PackedSequence, hx: Any = None) -> tuple[Any, Any]:
        """The sequence through every layer and direction.

        Args:
            input: (T, B, input_size), (B, T, input_size) with ``batch_first``, (T, input_size)
                unbatched, or a PackedSequence.
            hx: h_0 (or, for an LSTM, (h_0, c_0)), each (layers·directions, B, size), or
                (layers·directions, size) unbatched; zeros when None.

        Returns:
            (output, h_n) or, for an LSTM, (output, (h_n, c_n)), shaped as torch's.
        """
        x, lengths, batched = self.batch_major(input)
        initial = self.initial_state(hx, x, batched)
        finals: list[State] = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
            outputs = []
            for suffix in self.suffixes:
                i = layer * len(self.suffixes) + len(outputs)
                out, final = self.run_direction(x, f"l{layer}{suffix}",
                                                tuple(s[i] for s in initial), lengths)
                outputs.append(out)
                finals.append(final)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        states = [torch.stack(s, dim=0) for s in zip(*finals, strict=True)]
        if isinstance(input, PackedSequence):  # back to its layout: time-major, longest first
            order = input.sorted_indices
            order = torch.arange(x.shape[0], device=x.device) if order is None else order
            data = torch.cat([x[order[:n], t] for t, n in enumerate(input.batch_sizes.tolist())])
            output: Any = PackedSequence(data, input.batch_sizes, input.sorted_indices,
                                         input.unsorted_indices)
        elif not batched:
            output, states = x.squeeze(0), [s.squeeze(1) for s in states]
        else:
            output = x if self.batch_first else x.transpose(0, 1)
        return output, states[0] if len(states) == 1 else tuple(states)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        defaults = {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
                    "bidirectional": False, "proj_size": 0, "nonlinearity": "tanh"}
        return text + "".join(f", {name}={getattr(self, name)!r}" for name in self.options[2:]
                              if getattr(self, name) != defaults[name])


class AnalogLSTM(AnalogRNNBase):
    """``nn.LSTM`` on analog tiles: gates i, f, g, o; h = W_hr(o ⊙ tanh(c)) with ``proj_size``.

    Args:
        As ``nn.LSTM``, plus ``chip`` and ``layer_index`` (see :class:`AnalogRNNBase`).
    """

    digital_class = nn.LSTM
    gates = 4
    state_names = ("h_0", "c_0")
    options = (*AnalogRNNBase.options, "proj_size")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, *, chip: Chip | str,
                 layer_index: int = 0, device: Any = None, dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, chip=chip, layer_index=layer_index, device=device,
                         dtype=dtype, proj_size=proj_size)

    def step(self, gates_x: torch.Tensor, state: State, hh: AnalogLinear,
             projection: AnalogLinear | None) -> State:
        h, c = state
        i, f, g, o = (gates_x + hh(h)).chunk(4, dim=1)  # each (B, hidden)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return (h if projection is None else projection(h), c)


class AnalogGRU(AnalogRNNBase):
    """``nn.GRU`` on analog tiles: gates r, z, n, the reset gate applied to (W_hn h + b_hn).

    Args:
        As ``nn.GRU``, plus ``chip`` and ``layer_index`` (see :class:`AnalogRNNBase`).
    """

    digital_class = nn.GRU
    gates = 3

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, chip: Chip | str, layer_index: int = 0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, chip=chip, layer_index=layer_index, device=device,
                         dtype=dtype)

    def step(self, gates_x: torch.Tensor, state: State, hh: AnalogLinear,
             projection: AnalogLinear | None) -> State:
        h = state[0]
        x_r, x_z, x_n = gates_x.chunk(3, dim=1)  # each (B, hidden)
        h_r, h_z, h_n = hh(h).chunk(3, dim=1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return ((1 - z) * n + z * h,)


class AnalogRNN(AnalogRNNBase):
    """``nn.RNN`` on analog tiles: h = tanh or relu of (W_ih x + b_ih + W_hh h + b_hh).

    Args:
        As ``nn.RNN``, plus ``chip`` and ``layer_index`` (see :class:`AnalogRNNBase`).
    """

    digital_class = nn.RNN
    gates = 1
    options = (*AnalogRNNBase.options, "nonlinearity")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *, chip: Chip | str,
                 layer_index: int = 0, device: Any = None, dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, chip=chip, layer_index=layer_index, device=device,
                         dtype=dtype, nonlinearity=nonlinearity)

    def step(self, gates_x: torch.Tensor, state: State, hh: AnalogLinear,
             projection: AnalogLinear | None) -> State:
        activation = torch.tanh if self.nonlinearity == "tanh" else torch.relu
        return (activation(gates_x + hh(state[0])),)
