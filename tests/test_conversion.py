"""convert / to_digital / program / drift / evaluate on real module structures."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import analogsim as asim
from analogsim.conversion import analog_layers
from analogsim.errors import ConversionError, ShapeError, StateError
from analogsim.tiles import AnalogConv1d, AnalogConv2d, AnalogLinear


class ViewNet(nn.Module):
    """Uses x.view(x.size(0), -1) and calls one Linear twice (a shared module)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3, padding=1, padding_mode="reflect")
        self.shared = nn.Linear(32, 32)
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = x.view(x.size(0), -1)
        return self.head(self.shared(F.relu(self.shared(x))))


class MyLinear(nn.Linear):
    """A subclass with the base forward."""


class AttentionNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = MyLinear(16, 3)

    def forward(self, x):
        y, _ = self.attention(x, x, x)
        return self.head(y.mean(dim=1))


def test_convert_leaves_the_input_untouched(mlp):
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    analog = asim.convert(mlp, "pcm")
    assert all(isinstance(m, nn.Linear) for m in (mlp[0], mlp[2]))
    assert isinstance(analog[0], AnalogLinear)
    assert all(torch.equal(before[k], v) for k, v in mlp.state_dict().items())


def test_ideal_card_reproduces_views_shared_modules_and_reflect_padding():
    torch.manual_seed(0)
    model = ViewNet().eval()
    analog = asim.convert(model, "ideal").eval()
    assert isinstance(analog.conv, AnalogConv1d)
    assert len(list(analog_layers(analog))) == 3  # the shared Linear stays one layer
    x = torch.randn(6, 2, 8)
    assert torch.allclose(analog(x), model(x), atol=1e-5)
    asim.program(analog, seed=1, instances=2)
    with asim.instances_folded(analog):
        assert torch.allclose(analog(x.repeat(2, 1, 1)), model(x).repeat(2, 1), atol=1e-5)


def test_multihead_attention_and_linear_subclass():
    torch.manual_seed(0)
    model = AttentionNet().eval()
    analog = asim.convert(model, "ideal").eval()
    assert isinstance(analog.head, AnalogLinear)
    attention = analog.attention
    assert isinstance(attention, asim.tiles.AnalogMultiheadAttention)
    projections = (attention.q_proj, attention.k_proj, attention.v_proj, attention.out_proj)
    assert all(isinstance(p, AnalogLinear) for p in projections)  # every projection is analog
    assert [name for name, _ in analog_layers(analog)] == [
        "attention.q_proj", "attention.k_proj", "attention.v_proj", "attention.out_proj", "head"]
    assert [layer.tile.layer_index for _, layer in analog_layers(analog)] == [0, 1, 2, 3, 4]
    x = torch.randn(4, 5, 16)
    assert torch.allclose(analog(x), model(x), atol=1e-5)


def test_a_single_layer_converts(cnn):
    layer = asim.convert(cnn[0], "ideal")
    assert isinstance(layer, AnalogConv2d)


@pytest.mark.filterwarnings("ignore::analogsim.errors.DigitalRemainderWarning")
def test_exclude_and_per_layer(mlp):
    analog = asim.convert(mlp, "pcm", exclude=["2"])
    assert isinstance(analog[0], AnalogLinear) and isinstance(analog[2], nn.Linear)
    analog = asim.convert(mlp, "pcm", per_layer={"2": {"adc_bits": 4}, "0": "rram"})
    assert analog[2].tile.chip.adc.bits == 4 and analog[0].tile.chip.name == "rram"
    analog = asim.convert(mlp, "pcm", exclude=lambda module, name: module.out_features == 10)
    assert isinstance(analog[2], nn.Linear)


def test_to_digital_restores_plain_layers(cnn):
    analog = asim.convert(cnn, "pcm")
    back = asim.to_digital(analog)
    assert type(back[2]) is nn.Conv2d and back[2].groups == 2 and back[2].dilation == (2, 2)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(back.eval()(x), cnn.eval()(x))


@pytest.mark.parametrize(("model", "kwargs", "message"), [
    (nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)), {}, "has no nn.Linear or nn.Conv1d/2d/3d"),
    (nn.Sequential(nn.Linear(3, 3)), {"exclude": ["0"]}, "all were excluded"),
    (nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3)), {"exclude": ["fc*"]},
     "the pattern 'fc\\*' matches no convertible layer"),
    (nn.Sequential(nn.Linear(3, 3)), {"per_layer": {"1": {"adc_bits": 4}}},
     "the pattern '1' matches no convertible layer"),
], ids=["nothing", "all-excluded", "exclude-typo", "per-layer-typo"])
def test_conversion_errors(model, kwargs, message):
    with pytest.raises(ConversionError, match=message):
        asim.convert(model, "pcm", **kwargs)


def test_nan_weights_are_refused(mlp):
    with torch.no_grad():
        mlp[2].weight[0, 0] = float("nan")
    with pytest.raises(ConversionError, match="layer '2' has NaN or infinite values in 'weight'"):
        asim.convert(mlp, "pcm")


def test_drift_before_program_and_unfolded_batches(mlp):
    analog = asim.convert(mlp, "pcm")
    with pytest.raises(StateError, match=r"call analogsim\.program first"):
        asim.drift(analog, 10.0)
    with pytest.raises(ConversionError, match=r"call analogsim\.convert"):
        asim.program(mlp)
    asim.program(analog, instances=4)
    with pytest.raises(ShapeError, match="not a multiple of 4"), asim.instances_folded(analog):
        analog.eval()(torch.randn(6, 64))
    with pytest.raises(ShapeError, match="3 inputs, 2 labels"):
        asim.evaluate(analog, (torch.randn(3, 64), torch.zeros(2, dtype=torch.long)))


def test_training_a_converted_model_reaches_the_digital_weight(mlp):
    analog = asim.convert(mlp, "pcm").train()
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
    F.cross_entropy(analog(x), y).backward()
    for layer in (analog[0], analog[2]):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_state_dict_round_trip_through_torch_save(mlp, tmp_path):
    analog = asim.convert(mlp, asim.load_chip("generic", per_read_noise_multiplicative_std=0.01))
    asim.program(analog, seed=3, instances=5)
    asim.drift(analog, 3600.0)
    path = tmp_path / "analog.pt"
    torch.save(analog.state_dict(), path)
    restored = asim.convert(mlp, "ideal")  # the saved state carries its own card
    restored.load_state_dict(torch.load(path, weights_only=True))
    for (_, a), (_, b) in zip(analog_layers(analog), analog_layers(restored), strict=True):
        assert b.tile.chip == a.tile.chip
        for name in ("g_programmed", "drift_exponents", "faults", "w_effective", "q_effective",
                     "t_inference", "instance_ids"):
            assert torch.equal(getattr(a.tile, name), getattr(b.tile, name)), name
    x, y = torch.randn(40, 64), torch.randint(0, 10, (40,))
    first = asim.evaluate(analog, (x, y), seed=7).accuracy
    second = asim.evaluate(restored, (x, y), seed=7).accuracy
    assert (first == second).all()
    buffer = io.BytesIO()
    torch.save(restored.state_dict(), buffer)
    assert buffer.tell() > 0


def test_same_seed_same_numbers_and_lone_instance(mlp):
    x, y = torch.randn(64, 64), torch.randint(0, 10, (64,))
    chip = asim.load_chip("generic")

    def accuracies(instances, seed=0):
        analog = asim.convert(mlp, chip)
        asim.program(analog, seed=seed, instances=instances)
        asim.drift(analog, 60.0)
        return asim.evaluate(analog, (x, y), batch_size=16, seed=1).accuracy

    full = accuracies(6)
    assert (full == accuracies(6)).all()
    assert (accuracies([4]) == full[4]).all()
    assert not (accuracies(6, seed=1) == full).all()


def test_evaluate_accepts_a_dataloader_and_reports_a_ci(mlp):
    data = torch.utils.data.TensorDataset(torch.randn(50, 64), torch.randint(0, 10, (50,)))
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    analog = asim.convert(mlp, "pcm")
    asim.program(analog, instances=8)
    result = asim.evaluate(analog, loader)
    low, high = result.ci95
    assert result.samples == 50 and result.accuracy.shape == (8,)
    assert low <= result.mean <= high
    assert mlp.training  # evaluate restores the mode of what it was given


def test_inplace_converts_the_model_itself(cnn):
    weights = [cnn[0].weight, cnn[6].weight]
    x = torch.randn(2, 3, 8, 8)
    expected = cnn.eval()(x)
    analog = asim.convert(cnn, "ideal", inplace=True)
    assert analog is cnn
    assert not [m for m in cnn.modules() if type(m) in (nn.Linear, nn.Conv2d)]
    assert cnn[0].weight is weights[0] and cnn[6].weight is weights[1]  # taken over, no copy
    assert torch.allclose(cnn(x), expected, atol=1e-5)


def test_inplace_leaves_the_model_as_it_was_when_conversion_fails(mlp):
    with torch.no_grad():
        mlp[2].weight[0, 0] = float("inf")
    with pytest.raises(ConversionError, match="layer '2' has NaN or infinite values"):
        asim.convert(mlp, "pcm", inplace=True)
    with pytest.raises(ConversionError, match="the pattern 'nope' matches no convertible layer"):
        asim.convert(mlp, "pcm", exclude=["2", "nope"], inplace=True)  # after layer 0
    assert type(mlp[0]) is nn.Linear and type(mlp[2]) is nn.Linear


def test_the_copy_gets_its_own_parameters(mlp):
    analog = asim.convert(mlp, "pcm")
    assert analog[0].weight is not mlp[0].weight
    assert torch.equal(analog[0].weight, mlp[0].weight)
    layer = asim.convert(mlp[0], "pcm")
    assert layer.weight is not mlp[0].weight and torch.equal(layer.weight, mlp[0].weight)
    assert asim.convert(mlp[0], "pcm", inplace=True).weight is mlp[0].weight


def test_no_module_imports_transformers_at_import_time():
    """transformers is optional and slow to import: only functions may import it."""
    import ast
    from pathlib import Path

    offenders = []
    for path in Path(asim.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_functions = {id(node) for function in ast.walk(tree)
                        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
                        for node in ast.walk(function)}
        offenders += [f"{path.name}:{node.lineno}" for node in ast.walk(tree)
                      if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in
                      in_functions and any(name.split(".")[0] == "transformers" for name in (
                          [a.name for a in node.names] if isinstance(node, ast.Import)
                          else [node.module or ""]))]
    assert not offenders, offenders


def test_a_layer_tied_to_an_embedding_stays_digital():
    model = nn.Sequential(nn.Embedding(20, 8), nn.Linear(8, 8), nn.Linear(8, 20))
    model[2].weight = model[0].weight
    with pytest.warns(asim.errors.DigitalRemainderWarning, match="'2' .*weight tied to "
                                                                 "embedding '0'"):
        analog = asim.convert(model, "pcm")
    assert isinstance(analog[1], AnalogLinear) and type(analog[2]) is nn.Linear
    assert analog[2].weight is analog[0].weight
    with pytest.raises(ConversionError, match=r"no nn.Linear .*'1': weight tied to embedding '0'"):
        asim.convert(nn.Sequential(model[0], model[2]), "pcm")


@pytest.mark.parametrize("layer", [nn.Linear(3, 2), nn.Conv1d(2, 3, 3), nn.LSTM(3, 4),
                                   nn.MultiheadAttention(4, 2)], ids=lambda m: type(m).__name__)
def test_a_model_that_is_one_layer_converts_and_comes_back(layer):
    analog = asim.convert(layer, "ideal")
    assert analog is not layer and type(analog).__name__.startswith("Analog")
    digital = asim.to_digital(analog)
    assert type(digital) is type(layer)
    for (name, before), (_, after) in zip(layer.state_dict().items(),
                                          digital.state_dict().items(), strict=True):
        assert torch.equal(before, after), name
