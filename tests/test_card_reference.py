"""docs/cards.md is generated from the card dataclasses' metadata; it must not go stale."""

from __future__ import annotations

import dataclasses

import pytest

from analogsim.cards.chip import Chip
from analogsim.cards.laws import LAWS
from analogsim.cards.reference import REFERENCE_PATH, REGENERATE, card_reference
from analogsim.cards.validation import section_class, type_hints

SECTIONS = [
    cls
    for f in dataclasses.fields(Chip)
    for cls in (LAWS[f.name].values() if f.name in LAWS
                else [section_class(type_hints(Chip)[f.name])])
]


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda cls: cls.__name__)
def test_every_card_field_has_a_description(cls):
    undocumented = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("doc")]
    assert not undocumented, f"{cls.__name__}: give {undocumented} a doc in their metadata"


def test_the_committed_card_reference_is_up_to_date():
    committed = REFERENCE_PATH.read_text(encoding="utf-8") if REFERENCE_PATH.is_file() else ""
    assert committed == card_reference(), (
        f"{REFERENCE_PATH} is stale: the card dataclasses or the shipped cards changed. "
        f"Regenerate it with `{REGENERATE}` and commit the result."
    )
