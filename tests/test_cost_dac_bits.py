"""[cost]'s forms that follow dac.bits: a capacitive DAC (dac_step_energy_J · 2^bits) and
pulse-width-coded inputs (read_step_time_s · (2^(bits−1) − 1)), against hand calculations;
the fixed forms unchanged; a card giving both or neither key of a pair refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import analogsim as asim
from analogsim.cards import chip_from_toml
from analogsim.cost import CostReport
from analogsim.errors import CardError
from analogsim.physics import energy
from analogsim.tiles.cost import input_drive

# tiles of 4 rows × 3 columns, 4-bit ADC, g_max = 10 µS (as tests/test_cost.py)
COST = {"source": "round numbers for hand calculations", "read_voltage_V": 0.5,
        "read_time_s": 1e-6, "dac_energy_J": 1e-12, "adc_fom_J": 1e-14,
        "adc_conversion_time_s": 1e-8, "columns_per_adc": 2, "cell_area_um2": 2.0,
        "adc_area_um2": 50.0, "digital_energy_per_output_J": 3e-12,
        "digital_mac_energy_J": 5e-13}
#: the step forms, in place of read_time_s and dac_energy_J
STEPS = {"cost.read_time_s": None, "cost.read_step_time_s": 1e-8,
         "cost.dac_energy_J": None, "cost.dac_step_energy_J": 1e-15}
V, T_STEP, E_UNIT, T_CONV = 0.5, 1e-8, 1e-15, 1e-8


def card(**changes: object) -> asim.Chip:
    settings = {"g_max_uS": 10.0, "mapping.tile_rows": 4, "mapping.tile_cols": 3,
                "adc.bits": 4, "dac.bits": 5, **{f"cost.{k}": v for k, v in COST.items()},
                **changes}
    return asim.load_chip("ideal", **settings)


def weight() -> torch.Tensor:
    """(5, 6) weights of magnitude 1 or 0.5; every tile holds a 1, so its max|W| is 1."""
    i, j = torch.meshgrid(torch.arange(5), torch.arange(6), indexing="ij")
    return torch.where((i + j) % 3 == 0, 1.0, 0.5) * (-1.0) ** (i + j)


def tile_of(chip: asim.Chip):
    layer = nn.Linear(6, 5, bias=False)
    with torch.no_grad():
        layer.weight.copy_(weight())
    return asim.cost(asim.convert(nn.Sequential(layer), chip), torch.randn(1, 6)).layers[0].tile


def test_the_formulas_against_a_hand_calculation() -> None:
    assert energy.capacitive_dac_energy(1e-15, 6) == pytest.approx(64e-15)
    assert energy.pulse_width_read_time(1e-9, 127) == pytest.approx(127e-9)
    assert energy.pulse_width_read_time(1e-9, 127) == 127e-9  # HERMES's 127 ns, to the bit


@pytest.mark.parametrize("bits", [3, 5, 8], ids=["3-bit", "5-bit", "8-bit"])
def test_step_forms_follow_dac_bits(bits: int) -> None:
    tile = tile_of(card(**STEPS, **{"dac.bits": bits}))
    g_uS = 10.0 * float(weight().abs().sum())  # one device of a pair at |w|·g_max
    read = (2 ** (bits - 1) - 1) * T_STEP  # a full-scale pulse: 2^(b−1) − 1 steps
    assert tile.dac_J == pytest.approx(6 * 2 * E_UNIT * 2**bits)  # 6 rows into 2 groups
    assert tile.array_J == pytest.approx(g_uS * 1e-6 * V**2 * read)
    # ⌈3/2⌉ = 2 ADCs a tile: the 3-column group converts in 2 rounds after the read
    assert tile.mvm_time_s == pytest.approx(read + 2 * T_CONV)
    assert tile.adc_J == pytest.approx(5 * 2 * 1e-14 * 2**4)  # the ADC does not change


def test_each_step_form_alone() -> None:
    fixed = tile_of(card())
    dac_only = tile_of(card(**{"cost.dac_energy_J": None, "cost.dac_step_energy_J": E_UNIT}))
    read_only = tile_of(card(**{"cost.read_time_s": None, "cost.read_step_time_s": T_STEP}))
    assert (dac_only.array_J, dac_only.mvm_time_s) == (fixed.array_J, fixed.mvm_time_s)
    assert dac_only.dac_J == pytest.approx(12 * E_UNIT * 2**5)
    assert read_only.dac_J == fixed.dac_J
    assert read_only.array_J == pytest.approx(fixed.array_J * 15 * T_STEP / 1e-6)


def test_fixed_forms_ignore_dac_bits_as_before() -> None:
    """The fixed forms price every dac.bits alike, to the bit (the cards written before the
    step forms keep their numbers)."""
    tiles = [tile_of(card(**{"dac.bits": bits})) for bits in (3, 8)]
    assert tiles[0] == tiles[1]
    assert tiles[0].dac_J == 6 * 2 * 1 * 1 * 1e-12


def test_the_hermes_card_reads_a_pulse_that_follows_dac_bits() -> None:
    """pcm_hermes: sign + 7-bit pulse width at 1 GHz (127 ns at 8 bits), one word-line charge
    per pulse whatever its width."""
    hermes = asim.load_chip("pcm_hermes")
    assert (hermes.cost.read_step_time_s, hermes.cost.dac_energy_J) == (1e-9, 0.1e-12)
    assert (hermes.cost.read_time_s, hermes.cost.dac_step_energy_J) == (None, None)
    assert hermes.dac.bits == 8
    assert input_drive(hermes, hermes.cost) == (127 * 1e-9, 0.1e-12)
    six = asim.load_chip("pcm_hermes", **{"dac.bits": 6})
    assert input_drive(six, six.cost) == (31 * 1e-9, 0.1e-12)


def test_input_slicing_prices_a_cycle_at_its_slice() -> None:
    """5-bit DAC, 2 magnitude bits per cycle: n = 2 cycles, each a sign and a 2-bit digit
    (a 3-bit slice DAC, a pulse of 2^2 − 1 = 3 steps)."""
    plain = tile_of(card(**STEPS))
    sliced = tile_of(card(**STEPS, **{"slicing.input_bits_per_slice": 2}))
    g_uS = 10.0 * float(weight().abs().sum())
    assert sliced.dac_J == pytest.approx(2 * 12 * E_UNIT * 2**3)
    assert sliced.array_J == pytest.approx(2 * g_uS * 1e-6 * V**2 * 3 * T_STEP)
    assert sliced.mvm_time_s == pytest.approx(2 * (3 * T_STEP + 2 * T_CONV))
    assert plain.mvm_time_s == pytest.approx(15 * T_STEP + 2 * T_CONV)


@pytest.mark.parametrize(("changes", "message"), [
    ({"cost.dac_step_energy_J": 1e-15},
     r"\[cost\] gives the DAC energy as cost\.dac_energy_J \(fixed\) or "
     r"cost\.dac_step_energy_J \(following dac\.bits\): give exactly one, got both "
     r"\(cost\.dac_energy_J = 1e-12, cost\.dac_step_energy_J = 1e-15\)"),
    ({"cost.dac_energy_J": None},
     r"\[cost\] gives the DAC energy as cost\.dac_energy_J \(fixed\) or "
     r"cost\.dac_step_energy_J \(following dac\.bits\): give exactly one, got neither"),
    ({"cost.read_step_time_s": 1e-9},
     r"\[cost\] gives the read time as cost\.read_time_s \(fixed\) or cost\.read_step_time_s "
     r"\(following dac\.bits\): give exactly one, got both \(cost\.read_time_s = 1e-06, "
     r"cost\.read_step_time_s = 1e-09\)"),
    ({"cost.read_time_s": None}, r"the read time .* got neither"),
    ({**STEPS, "dac.bits": None},
     r"cost\.read_step_time_s \(1e-08\) scales with dac\.bits, but the card has an ideal DAC "
     r"\(dac\.bits absent\): give dac\.bits or use cost\.read_time_s"),
], ids=["dac-both", "dac-neither", "read-both", "read-neither", "ideal-dac"])
def test_a_card_giving_both_or_neither_key_is_refused(changes: dict, message: str) -> None:
    with pytest.raises(CardError, match=message):
        card(**changes)


def test_step_forms_round_trip_through_toml() -> None:
    chip = card(**STEPS)
    text = chip.to_toml()
    assert "read_step_time_s" in text and "dac_energy_J" not in text
    assert chip_from_toml(text) == chip


def test_hermes_with_pulse_width_steps_matches_at_8_bits_and_shortens_below() -> None:
    """pcm_hermes's 127-ns read is 127 steps of 1 ns (sign + 7-bit pulse width at 1 GHz):
    the step form gives the same numbers at 8 bits, and a 6-bit input a 31-ns read."""
    generator = torch.Generator().manual_seed(0)
    w = torch.rand(256, 256, generator=generator) * 2 - 1
    pwm = {"cost.read_time_s": None, "cost.read_step_time_s": 1e-9}

    def report(**changes: object) -> CostReport:
        layer = nn.Linear(256, 256, bias=False)
        with torch.no_grad():
            layer.weight.copy_(w)
        chip = asim.load_chip("pcm_hermes", **changes)
        return asim.cost(asim.convert(nn.Sequential(layer), chip), torch.ones(1, 256))

    fixed, stepped, six = report(), report(**pwm), report(**pwm, **{"dac.bits": 6})
    assert stepped.as_dict() == fixed.as_dict()
    assert six.energy_parts["array"] == pytest.approx(fixed.energy_parts["array"] * 31 / 127)
    assert six.latency_s == pytest.approx(31e-9 + 6e-9)
    assert six.energy_parts["dac"] == fixed.energy_parts["dac"]  # one word line charge
