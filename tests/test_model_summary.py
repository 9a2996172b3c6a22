"""asim.summary and the DigitalRemainderWarning: what sits on tiles, what stays digital, why."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import analogsim as asim
from analogsim.errors import DigitalRemainderWarning
from analogsim.tiles import AnalogConv2d, AnalogLinear


class OwnMatrix(nn.Module):
    """Multiplies by its own Parameter with F.linear: no analog layer knows it."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(features, features) / features**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.w)


class TinyLM(nn.Module):
    """Token embedding, a converted body, a custom product, an excluded layer, a tied head."""

    def __init__(self, vocab: int = 50, width: int = 16) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.body = nn.Linear(width, width)
        self.custom = OwnMatrix(width)
        self.excluded = nn.Linear(width, width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.tok.weight  # tied, as GPT-2 and LLaMA may do

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.excluded(self.custom(torch.relu(self.body(self.tok(ids))))))


def convert_recording(model: nn.Module, chip: str = "ideal", **kwargs):
    """(converted model, the DigitalRemainderWarnings convert emitted)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        analog = asim.convert(model, chip, **kwargs)
    return analog, [w for w in caught if issubclass(w.category, DigitalRemainderWarning)]


def test_the_warning_names_exactly_the_digital_products_with_reasons():
    torch.manual_seed(0)
    model = TinyLM().eval()
    analog, caught = convert_recording(model, exclude=["excluded"])
    assert len(caught) == 1  # once, for all of them
    warning = caught[0].message
    assert warning.layers == ("custom", "excluded", "lm_head")  # module order; no embedding
    text = str(warning)
    assert "'custom' (OwnMatrix, 16×16): OwnMatrix holds its own weight matrix 'w'" in text
    assert "'excluded' (Linear, 16×16): excluded by the user" in text
    assert "'lm_head' (Linear, 50×16): weight tied to embedding 'tok'" in text
    assert "lookups, not products) stay digital too: ['tok']" in text
    assert caught[0].filename == __file__  # points at the caller of convert
    assert isinstance(analog.body, AnalogLinear) and type(analog.lm_head) is nn.Linear
    assert analog.lm_head.weight is analog.tok.weight  # still tied
    ids = torch.randint(0, 50, (3, 7))
    assert torch.allclose(analog.eval()(ids), model(ids), atol=1e-5)


def test_no_warning_when_only_embeddings_stay_digital():
    model = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DigitalRemainderWarning)
        analog = asim.convert(model, "pcm")
    report = asim.summary(analog)
    assert [(d.name, d.lookup) for d in report.digital] == [("0", True)]
    assert report.analog_share == 1.0 and report.lookup_weights == 80
    assert report.digital_weights == 0


def test_summary_of_an_unconverted_model_lists_everything_as_digital():
    torch.manual_seed(0)
    report = asim.summary(TinyLM())
    assert report.rows == () and report.analog_weights == 0 and report.analog_share == 0.0
    reasons = {d.name: d.reason for d in report.digital}
    assert reasons["body"] == reasons["excluded"] == "not converted"
    assert reasons["lm_head"] == "weight tied to embedding 'tok'"
    assert reasons["tok"].startswith("embedding")
    # body and excluded (16·16 + 16·16), custom (16·16), the tied head (50·16)
    assert report.digital_weights == 3 * 256 + 800 and report.lookup_weights == 800
    assert "no analog layer" in str(report)


def test_summary_rows_carry_tiles_card_and_devices():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 20))
    chip = asim.load_chip("pcm", tile_rows=16, tile_cols=8)
    analog, caught = convert_recording(model, chip, per_layer={"2": {"pair": "single"}})
    assert caught == []
    report = asim.summary(analog)
    conv, linear = report.rows
    assert (conv.name, conv.kind, conv.shape) == ("0", "AnalogConv2d", (8, 27))
    # a 3×3 kernel is 9 rows: one input channel per 16-row tile → 3 chunks; 8 outputs → 1
    assert (conv.row_chunks, conv.column_groups, conv.tiles) == (3, 1, 3)
    assert (linear.row_chunks, linear.column_groups) == (8, 3)  # ⌈128/16⌉ × ⌈20/8⌉
    assert (conv.card, conv.devices_per_weight, conv.mapping) == ("pcm", 2.0,
                                                                  "differential pair")
    assert (linear.devices_per_weight, linear.mapping) == (1.0, "single device")
    assert report.tiles == 27 and report.analog_weights == 8 * 27 + 20 * 128
    assert report.digital == () and report.analog_share == 1.0
    text = str(report)
    assert "AnalogConv2d" in text and "3×1" in text and "8×3" in text
    assert "2 (differential pair)" in text and "100.0 %) on tiles" in text


def test_redundancy_coding_counts_cells_once_programmed():
    torch.manual_seed(0)
    chip = asim.load_chip("pcm", coding_scheme="sign+redundancy", coding_threshold=0.5)
    analog = asim.convert(nn.Sequential(nn.Linear(32, 8)), chip)
    before = asim.summary(analog).rows[0]
    assert before.devices_per_weight is None and "1–10 cells per weight" in before.mapping
    asim.program(analog, seed=0)
    after = asim.summary(analog).rows[0]
    cost = analog[0].tile.coding_cost()
    assert after.devices_per_weight == pytest.approx(2 * cost.cells / cost.weights)
    assert 2 < after.devices_per_weight < 20


def test_two_layers_sharing_a_weight_both_convert_and_stay_tied():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    model[2].weight = model[0].weight
    analog, caught = convert_recording(model, "pcm")
    assert caught == []
    assert isinstance(analog[2], AnalogLinear) and analog[2].weight is analog[0].weight
    assert analog[2].tile is not analog[0].tile  # two physical copies of the matrix
    assert analog[2].bias is not analog[0].bias
    report = asim.summary(analog)
    assert len(report.rows) == 2 and report.analog_weights == 64  # the shared weight once
    back = asim.to_digital(analog)
    assert type(back[2]) is nn.Linear and back[2].weight is back[0].weight
    assert torch.equal(back[0].weight, model[0].weight)


def test_children_of_an_excluded_composite_module_are_listed():
    class Attending(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.head = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.attn(x, x, x)[0])

    analog, caught = convert_recording(Attending(), "pcm", exclude=["attn"])
    assert isinstance(analog.head, AnalogLinear)
    assert caught[0].message.layers == ("attn", "attn.out_proj")
    reasons = {d.name: d.reason for d in asim.summary(analog).digital}
    assert reasons == {"attn": "excluded by the user",
                       "attn.out_proj": "part of 'attn' (MultiheadAttention), excluded by the "
                                        "user"}


def test_summary_of_a_single_converted_layer():
    layer = asim.convert(nn.Conv2d(2, 4, 3), "ideal")
    assert isinstance(layer, AnalogConv2d)
    (row,) = asim.summary(layer).rows
    assert row.name == "(model)" and row.shape == (4, 18)
