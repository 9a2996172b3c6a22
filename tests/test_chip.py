"""Device cards: every shipped card loads and round-trips; bad cards fail with clear errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

import analogsim as asim
from analogsim.cards import Chip, chip_from_toml, chip_to_dict
from analogsim.cards.validation import section_class, type_hints
from analogsim.errors import CardError, UnknownChipError


@pytest.mark.parametrize("name", asim.list_chips())
def test_every_shipped_card_loads_and_round_trips(name):
    chip = asim.load_chip(name)
    assert chip.name == name
    assert chip_from_toml(chip.to_toml()) == chip


def test_shipped_cards_are_the_four_of_the_design():
    assert set(asim.list_chips()) >= {"ideal", "pcm", "rram", "generic"}


@pytest.mark.parametrize("name", asim.list_chips())
def test_every_card_cites_a_source(name):
    assert asim.load_chip(name).card.source.strip()


def test_pcm_card_holds_the_aihwkit_numbers():
    chip = asim.load_chip("pcm")
    assert chip.conductance.g_max_uS == 25.0
    assert chip.programming.coefficients_uS == (0.26348, 1.9650, -1.1731)
    assert (chip.drift.mean_slope, chip.drift.mean_offset) == (-0.0155, 0.0244)
    assert (chip.drift.std_slope, chip.drift.std_offset) == (-0.0125, -0.0059)
    assert chip.read_noise.q_coefficient == 0.0088 and chip.read_noise.t_read_s == 250e-9
    assert (chip.dac.bits, chip.adc.bits, chip.adc.bound) == (7, 9, 12.0)
    assert chip.output_noise.std == 0.06
    assert chip.drift_compensation.method == "global"


def test_every_field_has_a_description():
    for section in dataclasses.fields(Chip):
        chip = asim.load_chip("pcm_hermes")  # a card with every section, [cost] included
        value = getattr(chip, section.name)  # None: an optional section the card leaves out
        owner = section_class(type_hints(Chip)[section.name]) if value is None else value
        for f in dataclasses.fields(owner):
            if f.name != "law":
                assert f.metadata.get("doc"), f"{section.name}.{f.name} has no description"


@pytest.mark.parametrize(("overrides", "section", "field", "value"), [
    ({"read_noise_scale": 2.0}, "read_noise", "scale", 2.0),
    ({"adc.bits": 6}, "adc", "bits", 6),
    ({"adc_bits": None}, "adc", "bits", None),
    ({"g_max_uS": 30.0}, "conductance", "g_max_uS", 30.0),
    ({"prog_noise_scale": 0.5}, "programming", "scale", 0.5),
], ids=["flat", "dotted", "remove-optional", "bare-field", "aihwkit-alias"])
def test_overrides(overrides, section, field, value):
    chip = asim.load_chip("pcm", **overrides)
    assert getattr(getattr(chip, section), field) == value
    assert asim.load_chip("pcm").replace(**overrides) == chip


def test_changing_a_law_starts_from_its_defaults():
    chip = asim.load_chip("pcm", drift_law="none")
    assert chip.drift.law == "none"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"adc_bits": 1.5}, r"adc\.bits must be an integer, got 1\.5"),
    ({"read_noise_scale": -1.0}, r"read_noise\.scale must be ≥ 0"),
    ({"output_noise_std": float("nan")}, r"output_noise\.std must be a finite number"),
    ({"g_max_uS": 1e30}, r"conductance\.g_max_uS must be ≤"),
    ({"dac_input_scaling": "rms"},
     r"dac\.input_scaling must be one of \['abs_max', 'calibrated', 'none'\]"),
    ({"drift_law": "linear"}, r"drift\.law must be one of"),
    ({"colour": 1}, r"override 'colour' names no card field"),
    ({"g_min_uS": 30.0}, r"g_min_uS \(30\.0\) must be below conductance\.g_max_uS"),
    ({"faults_stuck_low_fraction": 0.7, "faults_stuck_high_fraction": 0.7}, r"must be ≤ 1"),
], ids=["int-type", "negative", "nan", "huge", "choice", "law", "unknown", "range", "faults"])
def test_bad_overrides_name_key_value_and_expectation(overrides, message):
    with pytest.raises(CardError, match=message):
        asim.load_chip("pcm", **overrides)


def _write_card(tmp_path, text):
    path = tmp_path / "card.toml"
    path.write_text(text)
    return path


def test_unknown_key_in_a_card_file(tmp_path):
    data = chip_to_dict(asim.load_chip("generic"))
    text = asim.load_chip("generic").to_toml().replace("[adc]\n", "[adc]\nresolution = 3\n")
    assert data["adc"]["bits"] == 8
    with pytest.raises(CardError, match=r"unknown key adc\.resolution; \[adc\] accepts"):
        asim.load_chip(_write_card(tmp_path, text))


def test_missing_required_section(tmp_path):
    with pytest.raises(CardError, match=r"the section \[conductance\] is missing"):
        asim.load_chip(_write_card(tmp_path, '[card]\nname = "x"\n'))


def test_wrong_type_in_a_card_file(tmp_path):
    text = '[card]\nname = "x"\n[conductance]\ng_max_uS = "25 uS"\n'
    with pytest.raises(CardError, match=r"conductance\.g_max_uS must be a number, got '25 uS'"):
        asim.load_chip(_write_card(tmp_path, text))


def test_not_toml(tmp_path):
    with pytest.raises(CardError, match="not valid TOML"):
        asim.load_chip(_write_card(tmp_path, "[card\nname="))


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(UnknownChipError, match=r"unknown device card 'pcn'.*generic, ideal, pcm"):
        asim.load_chip("pcn")


def test_user_card_copied_and_changed_loads_by_path(tmp_path):
    text = asim.load_chip("pcm").to_toml().replace('name = "pcm"', 'name = "my_pcm"')
    chip = asim.load_chip(_write_card(tmp_path, text), read_noise_scale=3.0)
    assert chip.name == "my_pcm" and chip.read_noise.scale == 3.0


def test_card_format_version_is_checked(tmp_path):
    text = asim.load_chip("ideal").to_toml().replace("format_version = 1", "format_version = 9")
    with pytest.raises(CardError, match="format_version 9 is not supported"):
        asim.load_chip(_write_card(tmp_path, text))


def test_devices_cli_lists_every_card():
    out = subprocess.run([sys.executable, "-m", "analogsim.cli", "devices"], capture_output=True,
                         text=True, check=True).stdout
    for name in asim.list_chips():
        assert name in out
    assert "pcm_power_law" in out
