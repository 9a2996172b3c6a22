"""``summary(model)``: which layers of a model sit on analog tiles, on how many, and which
weight matrices stay digital and why.

The inventory :func:`analogsim.convert` relies on lives here too: which modules convert
(:func:`convertible`), which are analog (:func:`is_analog`, :func:`analog_layers`), and what
stays digital with its reason (:func:`digital_remainder`).

:func:`summary` works on a converted model and on an unconverted one (then everything is
digital, "not converted"). The returned :class:`ModelSummary` prints as a table and holds the
same numbers as data::

    s = asim.summary(amodel)
    print(s)                          # one row per analog layer, then the digital ones
    s.analog_share                    # fraction of the matrix weights on tiles
    [row.name for row in s.rows]

With cards that have a ``[cost]`` section the table adds, per layer, the energy of one input
vector through its tiles and their area; :func:`analogsim.cost` prices a whole inference.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from analogsim.tiles import ANALOG_LAYERS, COMPOSITE_LAYERS, AnalogLayer, named_analog_class
from analogsim.tiles.coding import scheme_parts
from analogsim.tiles.cost import TileCost, tile_cost
from analogsim.tiles.slicing import weight_slice_count

#: lookup tables: their weight is indexed, not multiplied
EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)


def convertible(module: nn.Module) -> tuple[type, type[nn.Module]] | None:
    """(the digital class ``module`` is recognised as, the analog class it converts to): a
    composite first (an attention layer holds Linear children), then a layer, then a layer of
    an optional package recognised by class name; None when it does not convert."""
    for digital, analog in (*COMPOSITE_LAYERS.items(), *ANALOG_LAYERS.items()):
        if isinstance(module, digital):
            return digital, analog
    return named_analog_class(type(module))


def is_analog(module: nn.Module) -> bool:
    """Whether ``module`` is an analog layer or a composite analog module."""
    return isinstance(module, (AnalogLayer, *COMPOSITE_LAYERS.values()))


def is_weight_matrix(parameter: torch.Tensor) -> bool:
    """Whether a parameter counts as a weight matrix: ≥ 2 dimensions, except a (1, …) tensor
    of ≥ 3 dimensions, which is added to a batch, not multiplied (ViT's ``cls_token`` and
    ``position_embeddings``)."""
    return parameter.dim() >= 2 and not (parameter.dim() >= 3 and parameter.shape[0] == 1)


def embedding_weights(model: nn.Module) -> dict[int, str]:
    """id of each embedding's weight → the embedding's qualified name (the first, if shared)."""
    found: dict[int, str] = {}
    for name, module in model.named_modules():
        if isinstance(module, EMBEDDINGS):
            found.setdefault(id(module.weight), name)
    return found


def tied_embedding(module: nn.Module, embeddings: dict[int, str]) -> str | None:
    weight = getattr(module, "weight", None)
    return embeddings.get(id(weight)) if isinstance(weight, torch.Tensor) else None


def analog_layers(model: nn.Module) -> Iterator[tuple[str, AnalogLayer]]:
    """(qualified name, layer) for each distinct analog layer of ``model``, in module order."""
    seen: set[int] = set()
    for name, module in model.named_modules():
        if isinstance(module, AnalogLayer) and id(module) not in seen:
            seen.add(id(module))
            yield name, module


@dataclass(frozen=True)
class DigitalLayer:
    """A module that holds a weight matrix and stays digital.

    Attributes:
        name: qualified name in the model.
        kind: its class name.
        shape: shape of its (first) weight matrix as stored (a Conv1D's is (in, out)).
        weights: elements of its weight matrices (count).
        reason: why it is digital.
        lookup: an embedding (a table lookup, not a product).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    weights: int
    reason: str
    lookup: bool = False


@dataclass(frozen=True)
class DigitalRemainder:
    """What of a model stays digital.

    Attributes:
        layers: the digital modules with their reasons, in module order.
        product_weights: distinct weight elements multiplied digitally (count).
        lookup_weights: distinct embedding-table elements (count).
    """

    layers: tuple[DigitalLayer, ...]
    product_weights: int
    lookup_weights: int

    @property
    def products(self) -> tuple[DigitalLayer, ...]:
        """The layers that multiply by their weight matrices (embeddings left out)."""
        return tuple(layer for layer in self.layers if not layer.lookup)


def digital_remainder(model: nn.Module) -> DigitalRemainder:
    """Every module of ``model`` that holds a weight matrix and is digital, with its reason.

    Reasons: an embedding (a lookup); a layer tied to an embedding; a layer excluded by the
    user (in a model with analog layers) or not converted (in one without); part of a
    composite module that stays digital; a module of a class analogsim has no analog layer
    for that holds its own weight matrix (:func:`is_weight_matrix`), e.g. one calling
    ``F.linear`` on its own Parameter. A module that reads a *child's* weight in its own code
    is not detected.
    """
    converted = any(is_analog(module) for module in model.modules())
    not_analog = "excluded by the user" if converted else "not converted"
    embeddings = embedding_weights(model)
    found: list[DigitalLayer] = []
    skip: set[int] = set()
    part_of: dict[int, str] = {}  # id of a module inside a digital composite → its reason
    products: dict[int, int] = {}  # id → elements, of distinct weights multiplied digitally
    lookups: dict[int, int] = {}
    for name, module in model.named_modules():
        if id(module) in skip:
            continue
        kind = type(module).__name__
        match = convertible(module)
        composite = match is not None and match[1] in COMPOSITE_LAYERS.values()
        if is_analog(module) or (match is not None and not composite):
            skip |= {id(child) for child in module.modules()}  # a layer's children are its own
        if is_analog(module):
            continue
        weight = getattr(module, "weight", None)
        matrices = ([("weight", weight)] if match is not None and not composite
                    and isinstance(weight, torch.Tensor)
                    else [(n, p) for n, p in module.named_parameters(recurse=False)
                          if is_weight_matrix(p)])
        tied = tied_embedding(module, embeddings)
        lookup = isinstance(module, EMBEDDINGS)
        if lookup:
            reason = "embedding: a table lookup, not a product"
        elif id(module) in part_of:
            reason = part_of[id(module)]
        elif match is None:
            names = ", ".join(repr(n) for n, _ in matrices)
            reason = (f"{kind} holds its own weight matrix {names}, and analogsim has no analog "
                      f"layer for {kind}")
        elif tied is not None:
            reason = f"weight tied to embedding {tied!r}"
        else:
            reason = not_analog
        if composite:
            part_of |= {id(child): f"part of {name!r} ({kind}), {reason}"
                        for child in module.modules() if child is not module}
        if not matrices:
            continue
        for _, parameter in matrices:
            (lookups if lookup else products)[id(parameter)] = parameter.numel()
        found.append(DigitalLayer(name, kind, tuple(matrices[0][1].shape),
                                  sum(p.numel() for _, p in matrices), reason, lookup))
    return DigitalRemainder(tuple(found), sum(products.values()), sum(lookups.values()))


@dataclass(frozen=True)
class LayerRow:
    """One analog layer of a model.

    Attributes:
        name: qualified name in the model.
        kind: the analog layer's class name.
        shape: the weight matrix as the tile sees it, (out, rows).
        weights: elements of the weight matrix (count).
        row_chunks: physical tiles along the inputs.
        column_groups: physical tiles along the outputs.
        card: the device card's name.
        devices_per_weight: devices that store one weight: 2 for a differential pair, 1 for a
            single device, times the weight slices (bit slicing) or the mean cells per weight
            of a programmed coded tile (every slice's cells, when both); None
            for a tile with redundancy coding not yet programmed (it depends on the weights).
        mapping: how a weight is stored, in words.
        cost: one input vector through the layer's tiles, priced by the card's ``[cost]``
            (:mod:`analogsim.tiles.cost`); None without one, or for an unprogrammed tile
            coded with ``coding.scope = "global"`` (its cells depend on the whole model).
    """

    name: str
    kind: str
    shape: tuple[int, int]
    weights: int
    row_chunks: int
    column_groups: int
    card: str
    devices_per_weight: float | None
    mapping: str
    cost: TileCost | None = None

    @property
    def tiles(self) -> int:
        """Physical tiles the layer occupies: row chunks × column groups."""
        return self.row_chunks * self.column_groups


def _devices(layer: AnalogLayer) -> tuple[float | None, str]:
    """(devices per weight, how a weight is stored) of a layer's tile."""
    tile, chip = layer.tile, layer.tile.chip
    per_cell = 2 if chip.conductance.pair == "differential" else 1
    mapping = "differential pair" if per_cell == 2 else "single device"
    if (slices := weight_slice_count(chip)) > 1:  # weight slicing: one pair per slice
        mapping = f"{slices} differential pairs of {chip.slicing.bits_per_weight_slice} bits"
    parts = scheme_parts(chip.coding.scheme) if tile.coded else set()
    if parts:
        mapping += f", coding {chip.coding.scheme}"
    if "redundancy" not in parts:
        return float(per_cell * slices), mapping
    if not tile.is_programmed:
        return None, mapping + (f", {chip.coding.r_small}–{chip.coding.r_large} cells per "
                                + ("slice" if slices > 1 else "weight"))
    cost = tile.coding_cost()  # with weight slicing, r_avg counts every slice's cells
    return per_cell * cost.r_avg, mapping


def _row(name: str, layer: AnalogLayer) -> LayerRow:
    matrix = layer.weight_matrix()
    devices, mapping = _devices(layer)
    tile = layer.tile
    layout = tile.layout
    global_coding = tile.coded and tile.chip.coding.scope == "global" and not tile.is_programmed
    cost = (tile_cost(tile, matrix, f"layer {name!r}")
            if tile.chip.cost is not None and not global_coding else None)
    return LayerRow(name, type(layer).__name__, (matrix.shape[0], matrix.shape[1]),
                    matrix.numel(), len(layout.row_chunks), len(layout.column_groups),
                    tile.chip.name, devices, mapping, cost)


@dataclass(frozen=True)
class ModelSummary:
    """Analog and digital weight matrices of a model.

    Attributes:
        rows: the analog layers, in module order.
        digital: the modules holding weight matrices that stay digital, with their reasons
            (embeddings included, marked ``lookup``).
        analog_weights: distinct weight elements on tiles (count; a weight shared by two
            layers counts once).
        digital_weights: distinct weight elements multiplied digitally (count; embedding
            tables are lookups and count in ``lookup_weights`` instead, but an lm_head tied
            to one multiplies by it, so that table counts here too).
        lookup_weights: distinct embedding-table elements (count).
    """

    rows: tuple[LayerRow, ...]
    digital: tuple[DigitalLayer, ...]
    analog_weights: int
    digital_weights: int
    lookup_weights: int

    @property
    def analog_share(self) -> float:
        """Fraction of the weights used in matrix products that sit on tiles (0 to 1)."""
        total = self.analog_weights + self.digital_weights
        return self.analog_weights / total if total else 0.0

    @property
    def tiles(self) -> int:
        """Physical tiles of all analog layers."""
        return sum(row.tiles for row in self.rows)

    def __str__(self) -> str:
        header = ("layer", "kind", "weight (out×rows)", "tiles", "card", "devices/weight")
        table = [(row.name, row.kind, "×".join(map(str, row.shape)),
                  f"{row.row_chunks}×{row.column_groups}", row.card,
                  (f"{row.devices_per_weight:g}" if row.devices_per_weight is not None
                   else "?") + f" ({row.mapping})")
                 for row in self.rows]
        if any(row.cost is not None for row in self.rows):  # cards with [cost]
            header += ("energy/vector", "area")
            table = [(*line, *cost_cells(row.cost)) for line, row in zip(table, self.rows,
                                                                         strict=True)]
        widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                 for line in [header, *table]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if not self.rows:
            lines = ["no analog layer (convert the model with analogsim.convert)"]
        total = self.analog_weights + self.digital_weights
        lines += ["", f"{len(self.rows)} analog layers on {self.tiles} tiles: "
                      f"{self.analog_weights:,} of {total:,} matrix weights "
                      f"({100 * self.analog_share:.1f} %) on tiles"]
        if self.digital:
            lines.append("digital:")
            lines += [f"  {layer.name or '(model)'} ({layer.kind}, "
                      f"{'×'.join(map(str, layer.shape))}): {layer.reason}"
                      for layer in self.digital]
        return "\n".join(lines)


def cost_cells(cost: TileCost | None) -> tuple[str, str]:
    """(energy of one input vector through the layer's tiles, area) as table cells."""
    if cost is None:
        return "?", "?"
    energy = "?" if cost.energy_J is None else f"{cost.energy_J * 1e9:.3g} nJ"
    return energy, f"{cost.area_um2 / 1e6:.3g} mm²"


def summary(model: nn.Module) -> ModelSummary:
    """What of ``model`` sits on analog tiles and what stays digital, and why.

    Args:
        model: a model converted by :func:`analogsim.convert`, or any ``nn.Module``.

    Returns:
        A :class:`ModelSummary`; ``print`` it for the table.
    """
    layers = list(analog_layers(model))
    rows = tuple(_row(name or layer.model_name or "(model)", layer) for name, layer in layers)
    analog = {id(layer.weight): row.weights for (_, layer), row in zip(layers, rows,
                                                                        strict=True)}
    remainder = digital_remainder(model)
    return ModelSummary(rows, remainder.layers, sum(analog.values()),
                        remainder.product_weights, remainder.lookup_weights)
