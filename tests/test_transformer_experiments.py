"""Transformers on tiles (issue 18): ``vit_tiny`` and ``causal_lm_tiny``, the ``stdlib_text``
corpus, perplexity through ``evaluate``, and the reproduction specs run reduced end to end."""

from __future__ import annotations

import importlib.util
import socket
import sys
import sysconfig
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
import torch
import torch.nn.functional as F
from torch import nn

import analogsim as asim
from analogsim import datasets, models
from analogsim.claims import FAILS, HOLDS, NO_DATA, UNRESOLVED
from analogsim.datasets import text
from analogsim.errors import DataError, ShapeError
from analogsim.experiments.run import run_spec
from analogsim.experiments.spec import load_spec
from analogsim.model_summary import analog_layers

TESTS = Path(__file__).resolve().parent
REPRODUCE = TESTS.parent / "benchmarks" / "reproduce"
#: The issue-18 specs: (file stem, kind).
SPECS = {"tx_vit_mnist5k": "methods", "tx_lm_stdlib": "methods",
         "tx_vit_mnist5k_layers": "budget", "tx_lm_stdlib_layers": "budget"}
TINY_LM = {"vocab_size": 98, "context": 16, "dim": 16, "depth": 1, "heads": 2, "mlp_hidden": 32}


def reproduce_module(name: str):
    spec = importlib.util.spec_from_file_location(f"tx_reproduce_{name}",
                                                  REPRODUCE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def claims_reduced():
    """``reduced`` of tests/test_claims.py, which the reduced runs here reuse."""
    sys.path.insert(0, str(TESTS))
    try:
        from test_claims import reduced
    finally:
        sys.path.remove(str(TESTS))
    return reduced


# ----------------------------------------------------------------------------------- models


@pytest.mark.parametrize(("name", "x", "shape"), [
    ("vit_tiny", torch.rand(3, 1, 28, 28), (3, 10)),
    ("vit_tiny", torch.rand(3, 784), (3, 10)),  # flat images, as mnist5k can be
    ("causal_lm_tiny", torch.randint(0, 98, (3, 64)), (3, 64, 98)),
    ("causal_lm_tiny", torch.randint(0, 98, (3, 5)), (3, 5, 98)),  # shorter than the context
], ids=["vit-images", "vit-flat", "lm-context", "lm-short"])
def test_shapes(name, x, shape):
    torch.manual_seed(0)
    assert models.create(name)(x).shape == shape


def test_a_future_token_changes_no_earlier_logit():
    torch.manual_seed(0)
    model = models.create("causal_lm_tiny", **TINY_LM).eval()
    tokens = torch.randint(0, 98, (2, 16))
    changed = tokens.clone()
    changed[:, 9] = (changed[:, 9] + 1) % 98
    with torch.no_grad():
        before, after = model(tokens), model(changed)
    torch.testing.assert_close(before[:, :9], after[:, :9], rtol=0, atol=0)
    assert not torch.allclose(before[:, 9:], after[:, 9:])


def test_a_vit_sees_every_patch():
    torch.manual_seed(0)
    model = models.create("vit_tiny").eval()
    x = torch.rand(1, 1, 28, 28)
    changed = x.clone()
    changed[..., 27, 27] += 1.0  # the last pixel of the last patch
    with torch.no_grad():
        assert not torch.allclose(model(x), model(changed))


@pytest.mark.parametrize(("name", "linears"), [("vit_tiny", 14), ("causal_lm_tiny", 13)])
def test_every_projection_goes_on_tiles_and_the_embedding_stays_digital(name, linears):
    torch.manual_seed(0)
    model = models.create(name)
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == linears
    analog = asim.convert(model, "pcm")
    assert len(list(analog_layers(analog))) == linears
    embeddings = [m for m in analog.modules() if isinstance(m, nn.Embedding)]
    assert len(embeddings) == (2 if name == "causal_lm_tiny" else 0)


def test_language_model_refuses_float_or_too_long_inputs():
    model = models.create("causal_lm_tiny", **TINY_LM)
    with pytest.raises(ShapeError, match=r"expected \(B, T ≤ 16\) token ids"):
        model(torch.randint(0, 98, (1, 17)))
    with pytest.raises(ShapeError, match=r"token ids"):
        model(torch.rand(1, 8))


# ------------------------------------------------------------------------------- text data


def test_the_corpus_is_the_interpreters_stdlib_read_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("stdlib_text opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    text._read_corpus.cache_clear()
    corpus = text.read_corpus()
    assert corpus.root == Path(sysconfig.get_paths()["stdlib"])
    files = corpus.train_files + corpus.test_files
    assert "os.py" in files and not any("site-packages/" in f or f.startswith("test/")
                                        for f in files)
    assert set(corpus.train_files).isdisjoint(corpus.test_files)
    assert all(text.is_test_file(f) for f in corpus.test_files)
    assert 0.03 < len(corpus.test_files) / len(files) < 0.2  # about one file in ten
    assert corpus.train.size == sum(
        (corpus.root / f).stat().st_size for f in corpus.train_files)


def test_the_same_seed_gives_the_same_sequences_and_batches():
    first = datasets.load("stdlib_text", seed=3, train_sequences=64, test_sequences=8)
    again = datasets.load("stdlib_text", seed=3, train_sequences=64, test_sequences=8)
    other = datasets.load("stdlib_text", seed=4, train_sequences=64, test_sequences=8)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        torch.testing.assert_close(getattr(first, name), getattr(again, name))
    assert not torch.equal(first.x_train, other.x_train)
    torch.testing.assert_close(first.x_test, other.x_test)  # test windows: fixed
    order = [datasets.batches(d.x_train, d.y_train, 16, shuffle=True,
                              generator=torch.Generator().manual_seed(0)) for d in (first, again)]
    for (x1, y1), (x2, y2) in zip(*order, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert first.task == "language_model" and first.num_classes == len(text.VOCABULARY) + 1
    assert first.x_train.shape == (64, 64) and first.x_train.dtype == torch.int64
    torch.testing.assert_close(first.y_train[:, :-1], first.x_train[:, 1:])  # next tokens
    assert "standard library" in first.source


def test_tokens_round_trip_and_unknown_bytes():
    unknown = "\N{REPLACEMENT CHARACTER}"
    tokens = text.encode("def f():\n\treturn 'é'\r")  # é: two UTF-8 bytes; \r: not kept
    assert text.decode(tokens) == f"def f():\n\treturn '{unknown * 2}'{unknown}"
    assert tokens.dtype == np.uint8 and tokens.max() < len(text.VOCABULARY) + 1


@pytest.mark.parametrize(("options", "message"), [
    ({"sequence_length": 0}, r"sequence_length=0; expected a positive integer"),
    ({"context": 8}, r"unknown option 'context'"),
    ({"test_size": 10}, r"test_size=10, but stdlib_text is token sequences"),
])
def test_bad_text_options_are_named(options, message):
    with pytest.raises(DataError, match=message):
        datasets.load("stdlib_text", **options)


def test_image_sets_take_no_text_options():
    with pytest.raises(DataError, match=r"unknown option 'sequence_length'"):
        datasets.load("digits", sequence_length=8)


# ------------------------------------------------------------------------------ perplexity


@pytest.fixture
def tiny_lm() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    model = models.create("causal_lm_tiny", **TINY_LM).eval()
    tokens = torch.randint(0, 98, (10, 17))
    return model, (tokens[:, :-1], tokens[:, 1:])


def test_perplexity_is_exp_of_the_mean_nll_per_token(tiny_lm):
    model, (x, y) = tiny_lm
    with torch.no_grad():
        log_p = torch.log_softmax(model(x).double(), dim=-1)  # (10, 16, 98)
    nll = -log_p.gather(-1, y.unsqueeze(-1)).mean()
    token_accuracy = (log_p.argmax(-1) == y).double().mean()
    result = asim.evaluate(model, (x, y), batch_size=3)  # batches of 3, 3, 3, 1 sequences
    np.testing.assert_allclose(result.perplexity, [float(torch.exp(nll))], rtol=1e-5)
    np.testing.assert_allclose(result.accuracy, [float(token_accuracy)])
    assert result.samples == 10 and result.predictions == 160
    assert "perplexity" in str(result)


def test_classification_keeps_accuracy_and_gains_the_cross_entropy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 4))
    x, y = torch.randn(20, 8), torch.randint(0, 4, (20,))
    result = asim.evaluate(model, (x, y), batch_size=7)
    with torch.no_grad():
        logits = model(x)
    assert result.accuracy[0] == (logits.argmax(1) == y).double().mean().item()
    np.testing.assert_allclose(result.nll, [F.cross_entropy(logits, y).item()], rtol=1e-6)
    assert result.predictions == result.samples == 20


def test_an_ideal_chip_gives_the_digital_perplexity(tiny_lm):
    model, test = tiny_lm
    digital = asim.evaluate(model, test)
    analog = asim.convert(model, "ideal")
    asim.program(analog, seed=0, instances=3)
    on_chip = asim.evaluate(analog, test)
    np.testing.assert_allclose(on_chip.perplexity, np.repeat(digital.perplexity, 3), rtol=1e-5)
    np.testing.assert_array_equal(on_chip.accuracy, np.repeat(digital.accuracy, 3))


def test_logits_per_position_must_match_the_labels(tiny_lm):
    model, (x, y) = tiny_lm
    with pytest.raises(ShapeError, match=r"one per position"):
        asim.evaluate(model, (x, y[:, :8]))


# ------------------------------------------------------------------- specs, run reduced


def shrunk(data: dict, kind: str) -> dict:
    """A spec cut to seconds here: ``reduced`` of test_claims for a methods spec (one epoch,
    two seeds, its claims' attack σ), then two chips, two drift times kept by the claims,
    tiny models and data."""
    if kind == "methods":
        data = claims_reduced()(data)
        named = {q["at"]["time"] for c in data["claims"] for q in (c.get("a", {}), c.get("b", {}))
                 if q.get("run") == "chip" and "time" in q.get("at", {})}
        data["evaluation"].update(chip_instances=2, chip_times_s=sorted(named))
    else:
        data["training"].update(epochs=1)
        knob = data["budget"]["knobs"][0]
        data["budget"].update(instances=2, seeds=[0], knobs=[knob], grids={knob: [1, 32]})
    options = data["model"].setdefault("options", {})
    options.update(dim=16, mlp_hidden=32, depth=1, heads=2)
    data_options = data["data"].setdefault("options", {})
    if data["data"]["dataset"] == "stdlib_text":
        data_options.update(train_sequences=48, test_sequences=8)
    else:
        data_options.update(test_size=100)
    return data


@pytest.mark.parametrize(("stem", "kind"), SPECS.items(), ids=list(SPECS))
def test_each_spec_runs_reduced_and_summarises(stem, kind, tmp_path):
    path = REPRODUCE / f"{stem}.toml"
    data = shrunk(tomllib.loads(path.read_text(encoding="utf-8")), kind)
    spec_path = tmp_path / path.name
    spec_path.write_text(tomli_w.dumps(data), encoding="utf-8")
    results_path = run_spec(load_spec(spec_path), tmp_path / f"{stem}.h5")
    results = asim.load_results(results_path)
    language = data["data"]["dataset"] == "stdlib_text"
    if kind == "budget":
        budget = results.runs["budget"]
        assert budget.attrs["most_sensitive_layer"] in budget.axes["layer"]
        return
    chip = results.runs["chip"]
    assert ("perplexity" in chip.data) == language
    if language:
        assert chip.units["perplexity"] == "exp(nats/token)"
        assert np.isfinite(chip.data["perplexity"]).all() and (chip.data["perplexity"] > 1).all()
        assert chip.attrs["task"] == "language_model"
    summary = reproduce_module("summarize").summarize(results_path)
    assert len(summary["claims"]) == len(data["claims"]) > 0
    assert {c["verdict"] for c in summary["claims"]} <= {HOLDS, FAILS, UNRESOLVED, NO_DATA}


LM_SWEEP = """
[experiment]
name = "lm_sweep"
kind = "sweep"

[data]
dataset = "stdlib_text"
options = { sequence_length = 16, train_sequences = 64, test_sequences = 8 }

[model]
name = "causal_lm_tiny"
options = { context = 16, dim = 16, depth = 1, heads = 2, mlp_hidden = 32 }

[training]
epochs = 1
batch_size = 16
optimizer = "adam"
learning_rate = 0.01
seeds = [0, 1]

[chip]
card = "pcm"

[sweep]
instances = 2
times_s = [1, 31536000]

[[sweep.axes]]
field = "read_noise.scale"
values = [1, 8]
mode = "scale"
"""


def test_a_sweep_of_a_language_model_records_perplexity_per_chip(tmp_path):
    spec = tmp_path / "lm_sweep.toml"
    spec.write_text(LM_SWEEP, encoding="utf-8")
    results = asim.load_results(run_spec(load_spec(spec), tmp_path / "lm_sweep.h5"))
    sweep = results.runs["sweep"]
    assert sweep.data["perplexity"].shape == sweep.data["accuracy"].shape == (2, 2, 4)
    assert sweep.dims["perplexity"] == sweep.dims["accuracy"] and sweep.done.all()
    assert (sweep.data["perplexity"] > 1).all() and sweep.units["perplexity"]
    assert len(sweep.attrs["digital_perplexity_per_seed"]) == 2
    history = results.runs["train_model_seed0"]
    assert 0 < history.data["train_accuracy"][0] < 1  # per token, not per sequence
