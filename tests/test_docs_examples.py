"""Output shown in the docs is what the code prints: docs/models.md's summary of GPT-2."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

import analogsim as asim

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_summary_shown_in_models_md_is_what_summary_prints():
    transformers = pytest.importorskip("transformers")
    text = (DOCS / "models.md").read_text(encoding="utf-8")
    shown = re.search(r"```text\n(.*?)```", text, re.S).group(1).splitlines()
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100,
                                     n_positions=64, bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", asim.errors.DigitalRemainderWarning)
        printed = str(asim.summary(asim.convert(model, "pcm"))).splitlines()
    for line in shown:
        if line != "...":
            assert line in printed, f"docs/models.md shows {line!r}, which summary does not print"
