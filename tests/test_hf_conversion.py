"""HuggingFace transformers models (GPT-2, BERT, LLaMA, ViT) convert with no code of the user's.

Each model is built from a tiny config with random weights (nothing is downloaded).
"""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from torch import nn

import analogsim as asim
from analogsim.conversion import analog_layers
from analogsim.errors import DigitalRemainderWarning, ShapeError
from analogsim.tiles import AnalogHFConv1D, AnalogLinear

transformers = pytest.importorskip("transformers")
Conv1D = pytest.importorskip("transformers.pytorch_utils").Conv1D

TINY = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2,
        "intermediate_size": 64, "attn_implementation": "eager"}
TEXT = {"vocab_size": 100, "max_position_embeddings": 64, "bos_token_id": 0, "eos_token_id": 0,
        "pad_token_id": 0}


def build(name: str) -> tuple[nn.Module, torch.Tensor]:
    """(a tiny model in eval mode, an input for it)."""
    torch.manual_seed(0)
    if name == "gpt2":  # Conv1D layers; lm_head tied to the token embedding
        config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64,
                                         attn_implementation="eager", **{
                                             k: v for k, v in TEXT.items()
                                             if k != "max_position_embeddings"})
        model = transformers.GPT2LMHeadModel(config)
    elif name == "bert":
        model = transformers.BertForSequenceClassification(
            transformers.BertConfig(num_labels=3, **TINY, **TEXT))
    elif name == "llama":
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
            num_key_value_heads=1, tie_word_embeddings=False, **TINY, **TEXT))
    else:
        model = transformers.ViTForImageClassification(transformers.ViTConfig(
            image_size=16, patch_size=4, num_labels=5, **TINY))
        return model.eval(), torch.randn(2, 3, 16, 16)
    return model.eval(), torch.randint(1, 100, (2, 9))


MODELS = ["gpt2", "bert", "llama", "vit"]
#: what each model leaves digital besides its embeddings
DIGITAL = {"gpt2": {"lm_head": "weight tied to embedding 'transformer.wte'"},
           "bert": {}, "llama": {}, "vit": {}}
#: (1, …) tensors added to a batch, not multiplied
ADDED = {"vit.embeddings.cls_token", "vit.embeddings.position_embeddings"}


@pytest.fixture(scope="module", params=MODELS, ids=MODELS)
def pair(request):
    """(name, digital model, input, analog model on the ideal card, its warnings)."""
    model, x = build(request.param)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        analog = asim.convert(model, "ideal").eval()
    caught = [w for w in caught if issubclass(w.category, DigitalRemainderWarning)]
    return request.param, model, x, analog, caught


def logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).logits


def product_weights(model: nn.Module) -> dict[str, tuple[str, int]]:
    """Parameter name → (owning module, elements) of every weight used in a product, counted
    independently of analogsim: ≥ 2-D parameters, tied names included, embedding tables and
    tensors added to a batch left out."""
    found = {}
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Embedding):
            continue
        for name, parameter in module.named_parameters(prefix=module_name, recurse=False):
            if parameter.dim() >= 2 and name not in ADDED:
                found[name] = (module_name, parameter.numel())
    return found


def test_every_product_weight_is_on_a_tile_or_listed_with_its_reason(pair):
    name, model, _, analog, caught = pair
    report = asim.summary(analog)
    on_tiles = {row.name for row in report.rows}
    listed = {d.name: d.reason for d in report.digital if not d.lookup}
    assert listed == DIGITAL[name]
    weights = product_weights(model)
    assert {owner for owner, _ in weights.values()} == on_tiles | set(listed)
    assert report.analog_weights == sum(n for owner, n in weights.values() if owner in on_tiles)
    assert report.digital_weights == sum(n for owner, n in weights.values() if owner in listed)
    assert report.analog_share == pytest.approx(
        report.analog_weights / (report.analog_weights + report.digital_weights))
    assert [w.message.layers for w in caught] == ([tuple(listed)] if listed else [])
    assert all(d.reason.startswith("embedding") for d in report.digital if d.lookup)


def test_ideal_card_reproduces_the_digital_logits(pair):
    _, model, x, analog, _ = pair
    expected = logits(model, x)
    difference = (logits(analog, x) - expected).abs().max() / expected.abs().max()
    assert difference <= 1e-5


def test_to_digital_gives_back_the_classes_and_weights(pair):
    name, model, x, analog, _ = pair
    back = asim.to_digital(analog)
    assert [(n, type(m)) for n, m in back.named_modules()] == [
        (n, type(m)) for n, m in model.named_modules()]
    original = model.state_dict()
    restored = back.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    if name == "gpt2":
        assert back.lm_head.weight is back.transformer.wte.weight
        assert isinstance(back.transformer.h[0].attn.c_attn, Conv1D)
    assert torch.equal(logits(back, x), logits(model, x))


def test_state_dict_round_trip(tmp_path):
    model, x = build("gpt2")  # Conv1D layers and a tied head
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DigitalRemainderWarning)
        analog = asim.convert(model, "generic").eval()
        asim.program(analog, seed=3)
        torch.save(analog.state_dict(), tmp_path / "analog.pt")
        restored = asim.convert(model, "ideal").eval()
    restored.load_state_dict(torch.load(tmp_path / "analog.pt", weights_only=True))
    for (_, a), (_, b) in zip(analog_layers(analog), analog_layers(restored), strict=True):
        assert b.tile.chip == a.tile.chip and torch.equal(a.tile.w_effective, b.tile.w_effective)
    assert torch.equal(logits(restored, x), logits(analog, x))


def test_inplace_converts_the_model_itself():
    model, x = build("bert")
    expected = logits(model, x)
    classifier = model.classifier.weight
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    analog = asim.convert(model, "ideal", inplace=True)
    assert analog is model
    assert not [n for n, m in model.named_modules() if type(m) is nn.Linear]
    assert model.classifier.weight is classifier  # the optimizer still holds the weights
    assert any(p is classifier for group in optimizer.param_groups for p in group["params"])
    assert torch.allclose(logits(model, x), expected, atol=1e-5)


def test_gpt2_conv1d_layer_on_its_own():
    torch.manual_seed(0)
    digital = Conv1D(6, 4)
    layer = asim.convert(digital, "ideal")
    assert isinstance(layer, AnalogHFConv1D) and not isinstance(layer, AnalogLinear)
    assert layer.weight.shape == (4, 6) and layer.weight_matrix().shape == (6, 4)
    x = torch.randn(3, 5, 4)
    assert torch.allclose(layer(x), x @ digital.weight + digital.bias, atol=1e-6)
    built = AnalogHFConv1D(6, 4, chip="pcm")
    assert built.weight.shape == (4, 6) and torch.equal(built.bias, torch.zeros(6))
    with pytest.raises(ShapeError, match="expected nx = 4"):
        layer(torch.randn(3, 5))
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    assert type(layer.to_digital()) is Conv1D
