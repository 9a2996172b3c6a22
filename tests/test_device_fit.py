"""Fitting a device card to measurements (analogsim.hardware), closing the loop on the simulator.

Measurements are drawn from the shipped cards with device_model.program_devices / age_devices
(explicit seeds), fitted, and the fitted laws compared with the generating card: σ_prog and μ_ν
within 5 % where the data constrain them (20,000 devices: their standard errors there are
1–2.5 %, so 5 % is ≥ 2 SE, and the draws are seeded). Bad files must raise DataError naming the
problem and its fix.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import h5py
import matplotlib.image
import numpy as np
import pytest
import torch

import analogsim
from analogsim.errors import DataError
from analogsim.hardware import (
    fit_device,
    load_measurements,
    simulate_measurements,
    write_fit_report,
    write_measurements,
)
from analogsim.hardware.fit_drift import fit_clipped_line
from analogsim.hardware.fit_programming import distinguishable_levels
from analogsim.hardware.fit_results import ClippedLine
from analogsim.physics import pcm

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "measurements"
TIMES_S = (60.0, 3600.0, 86400.0, 604800.0)
DEVICES = 20_000
TOLERANCE = 0.05


def _poly_std(card: str, g_uS: np.ndarray) -> np.ndarray:
    chip = analogsim.load_chip(card)
    law = chip.programming
    return np.polynomial.polynomial.polyval(g_uS / chip.conductance.g_max_uS,
                                            law.coefficients_uS)


@pytest.fixture(scope="module")
def pcm_fit():
    m = simulate_measurements("pcm", devices=DEVICES, times_s=TIMES_S, repeats=3, seed=0)
    return fit_device(m, base="pcm")


@pytest.fixture(scope="module")
def example_fits():
    return {"pcm": fit_device(EXAMPLES / "pcm_2000.h5", base="pcm"),
            "rram": fit_device(EXAMPLES / "rram_2000.csv", base="rram")}


# -------------------------------------------------------------------------- closing the loop


def test_pcm_fit_recovers_the_programming_noise_polynomial(pcm_fit):
    g = np.array([2.5, 5.0, 12.5, 20.0])  # µS; g_max = 25 µS
    fitted, true = pcm_fit.programming.std(g), _poly_std("pcm", g)
    np.testing.assert_allclose(fitted, true, rtol=TOLERANCE)
    assert pcm_fit.chip.programming.reference_g_max_uS == 25.0
    assert 0.5 < pcm_fit.programming.bins.reduced_chi2 < 2.0


def test_pcm_fit_recovers_the_drift_exponent_law(pcm_fit):
    g = np.array([2.5, 5.0, 12.5, 25.0])  # g_rel 0.1 … 1: the data's well-filled range
    d = analogsim.load_chip("pcm").drift
    mean, std = pcm.drift_exponent_moments(
        torch.tensor(g, dtype=torch.float64), 25.0, d.mean_slope, d.mean_offset,
        (d.mean_min, d.mean_max), d.std_slope, d.std_offset, (d.std_min, d.std_max), d.g_rel_min)
    law = pcm_fit.chip.drift
    fitted_mean, fitted_std = pcm.drift_exponent_moments(
        torch.tensor(g, dtype=torch.float64), 25.0, law.mean_slope, law.mean_offset,
        (law.mean_min, law.mean_max), law.std_slope, law.std_offset, (law.std_min, law.std_max),
        law.g_rel_min)
    np.testing.assert_allclose(fitted_mean.numpy(), mean.numpy(), rtol=TOLERANCE)
    np.testing.assert_allclose(fitted_std.numpy(), std.numpy(), rtol=2 * TOLERANCE)
    assert law.t0_s == 20.0 and law.scale == 1.0


def test_pcm_fit_recovers_the_read_noise_law(pcm_fit):
    law = pcm_fit.chip.read_noise
    assert law.law == "pcm_1_over_f"
    assert law.q_coefficient == pytest.approx(0.0088, rel=0.03)
    assert law.q_exponent == pytest.approx(0.65, rel=0.03)
    assert {"programming", "drift", "read_noise", "faults"} == set(pcm_fit.fitted_sections)


def test_rram_fit_recovers_the_programming_noise_polynomial():
    m = simulate_measurements("rram", devices=DEVICES, seed=0)
    fit = fit_device(m, base="rram")
    g = np.array([4.0, 10.0, 20.0, 30.0])  # µS; g_max = 40 µS
    np.testing.assert_allclose(fit.programming.std(g), _poly_std("rram", g), rtol=TOLERANCE)
    assert len(fit.chip.programming.coefficients_uS) == 5  # the base card's degree
    assert fit.chip.drift == analogsim.load_chip("rram").drift  # no reads: kept
    assert any("read-noise law 'none' kept" in note for note in fit.notes)


def test_stuck_fractions_are_recovered():
    chip = analogsim.load_chip("pcm", **{"faults.stuck_low_fraction": 0.02,
                                         "faults.stuck_high_fraction": 0.01})
    fit = fit_device(simulate_measurements(chip, devices=DEVICES, seed=1), base="pcm")
    for side, true in (("low", 0.02), ("high", 0.01)):
        eligible = fit.stuck.low_eligible if side == "low" else fit.stuck.high_eligible
        fraction, (low, high) = fit.stuck.fraction(side)
        assert abs(fraction - true) < 4 * np.sqrt(true * (1 - true) / eligible)
        assert low < fraction < high
        assert getattr(fit.chip.faults, f"stuck_{side}_fraction") == pytest.approx(fraction,
                                                                                   rel=1e-4)
    g = np.array([5.0, 12.5, 20.0])  # away from the rails, where stuck devices hide
    np.testing.assert_allclose(fit.programming.std(g), _poly_std("pcm", g), rtol=TOLERANCE)


def test_distinguishable_levels_are_spaced_by_two_sigma():
    coefficients = np.array([0.5, 1.0])  # σ(g) = 0.5 + g/10 µS, g_max = 10 µS
    levels = distinguishable_levels(coefficients, 0.0, 10.0)
    sigma = 0.5 + levels / 10
    np.testing.assert_allclose(np.diff(levels), sigma[:-1] + sigma[1:], rtol=1e-9)
    assert levels[0] == 0.0 and levels[-1] <= 10.0
    assert levels[-1] + (0.5 + levels[-1] / 10) * 2 > 10.0  # no room for one more


def test_clipped_line_keeps_only_clips_the_data_reach():
    x = np.linspace(-4.5, 0, 12)
    y = np.clip(-0.0155 * x + 0.0244, 0.049, 0.1)  # plateau at the right end only
    line = fit_clipped_line(x, y, np.full_like(x, 1e-4))
    assert isinstance(line, ClippedLine) and line.free == ("slope", "offset", "low")
    assert line.slope == pytest.approx(-0.0155, rel=1e-6)
    assert line.low == pytest.approx(0.049, rel=1e-6) and line.high == np.inf


# ------------------------------------------------------------------------------- card, files


def test_fitted_card_loads_back_with_its_uncertainties(pcm_fit, tmp_path):
    path = tmp_path / "fitted.toml"
    path.write_text(pcm_fit.toml(), encoding="utf-8")
    assert analogsim.load_chip(path) == pcm_fit.chip
    text = path.read_text()
    assert re.search(r"coefficients_uS = \[.*\]  # ± \[.*\], fitted", text)
    assert re.search(r"mean_slope = .*  # ± .*, fitted", text)
    assert "distinguishable levels" in text and "from the base card 'pcm'" in text


def test_shipped_examples_fit_and_record_their_source(example_fits, tmp_path):
    pcm_fit, rram_fit = example_fits["pcm"], example_fits["rram"]
    assert "pcm_2000.h5 (sha256 " in pcm_fit.chip.card.source
    assert pcm_fit.chip.name == "pcm_2000" and rram_fit.chip.name == "rram_2000"
    for fit, card, g in ((pcm_fit, "pcm", np.array([5.0, 12.5, 20.0])),
                         (rram_fit, "rram", np.array([10.0, 20.0, 30.0]))):
        error = fit.programming.std_error(g)
        assert np.all(np.abs(fit.programming.std(g) - _poly_std(card, g)) < 3 * error)
        path = tmp_path / f"{card}.toml"
        path.write_text(fit.toml(), encoding="utf-8")
        assert analogsim.load_chip(path) == fit.chip


def test_shipped_examples_are_what_the_script_makes(tmp_path):
    script = runpy.run_path(str(EXAMPLES / "make_examples.py"))
    for made in script["write_examples"](tmp_path):
        new, old = load_measurements(made), load_measurements(EXAMPLES / made.name)
        # The files keep 6 significant digits. float32 exp/log kernels may differ in the last
        # bit between CPUs (AVX2 or AVX-512 code paths), which can move a value across a
        # rounding edge of the sixth digit: one unit there is at most 1e-5 relative.
        for name in ("target_uS", "programmed_uS", "time_s", "conductance_uS"):
            np.testing.assert_allclose(getattr(new, name), getattr(old, name), rtol=1e-5)


@pytest.mark.parametrize("suffix", [".csv", ".h5"])
def test_measurements_round_trip(tmp_path, suffix):
    m = simulate_measurements("pcm", devices=50, times_s=(60.0, 3600.0), repeats=2, seed=4)
    back = load_measurements(write_measurements(m, tmp_path / f"m{suffix}", note="test"))
    assert list(back.device) == list(m.device)
    for name in ("target_uS", "programmed_uS"):
        np.testing.assert_allclose(getattr(back, name), getattr(m, name), rtol=1e-5)  # 6 digits
    reads = [np.lexsort((x.conductance_uS, x.time_s, x.read_device)) for x in (m, back)]
    for name in ("read_device", "time_s", "conductance_uS"):  # the file groups reads by device
        np.testing.assert_allclose(getattr(back, name)[reads[1]], getattr(m, name)[reads[0]],
                                   rtol=1e-5)


def test_a_device_without_later_reads_has_empty_read_cells(tmp_path):
    m = load_measurements(_write(tmp_path, HEADER + "a,10,9.5,60,9.1\na,10,9.5,60,9.2\n"
                                 "b,3.2,3.05,,\n"))
    assert list(m.device) == ["a", "b"] and m.devices == 2
    np.testing.assert_array_equal(m.read_device, [0, 0])
    np.testing.assert_array_equal(m.conductance_uS, [9.1, 9.2])


def test_fit_report_writes_a_page_whose_images_open(example_fits, tmp_path):
    index = write_fit_report(example_fits["pcm"], tmp_path / "report")
    page = index.read_text(encoding="utf-8")
    images = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(images) == ["drift.png", "programming.png", "read_noise.png"]
    for name in images:
        pixels = matplotlib.image.imread(index.parent / name)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400
    assert "pcm_2000.h5" in page and "q_coefficient" in page


# ----------------------------------------------------------------------------------- bad files

HEADER = "device,target_uS,programmed_uS,time_s,conductance_uS\n"


def _write(tmp_path: Path, text: str, name: str = "m.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("device,target_uS,time_s,conductance_uS\n0,1,60,1\n",
     r"m\.csv: missing the required column 'programmed_uS'"),
    ("target_uS,programmed_uS\n10,9.5\n12,-0.3\n",
     r"m\.csv: line 3, column 'programmed_uS': negative conductance -0\.3 µS"),
    ("target_uS,programmed_uS\n1e-5,1.1e-5\n2e-5,1.9e-5\n",
     r"column 'target_uS' tops out at 2e-05, which looks like siemens; multiply by 1e6"),
    ("target_uS,programmed_uS\n10,9.5\n12,12.1uS\n",
     r"line 3, column 'programmed_uS': '12.1uS' is not a number"),
    ("device,target_uS,programmed_uS,time_s\n0,1,1,60\n",
     r"column 'time_s' is given without 'conductance_uS'.*add 'conductance_uS'"),
    ("target_uS,programmed_uS,time_s,conductance_uS\n1,1,60,1\n",
     r"need a 'device' column"),
    ("target_uS,programmed_uS,temperature_K\n1,1,300\n",
     r"unknown column 'temperature_K'"),
    (HEADER + "0,10,9.5,60,9\n0,11,9.5,3600,9\n",
     r"device '0' has target_uS 10 on line 2 but 11 on line 3"),
    (HEADER + "0,10,9.5,-60,9\n", r"'time_s': -60 s is negative"),
    (HEADER + "0,10,9.5,60,\n", r"line 2: time_s and conductance_uS must be both given"),
])
def test_bad_measurement_files_are_refused(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        load_measurements(_write(tmp_path, text))


def test_too_few_devices_say_how_many_are_needed(tmp_path):
    rows = "".join(f"{g},{g}\n" for g in np.linspace(1, 20, 50))
    with pytest.raises(DataError, match=r"m\.csv: the programming-noise polynomial of degree 2 "
                                        r"needs ≥ 4 target bins .* \(≥ 120 devices"):
        fit_device(_write(tmp_path, "target_uS,programmed_uS\n" + rows))


def test_too_few_read_times_say_how_many_are_needed(tmp_path):
    m = simulate_measurements("pcm", devices=300, times_s=(3600.0,), seed=2)
    path = write_measurements(m, tmp_path / "one_time.csv")
    with pytest.raises(DataError, match=r"one_time\.csv: the drift fit needs ≥ 60 devices .* "
                                        r"reads at ≥ 2 later times"):
        fit_device(path)


def test_targets_outside_the_base_card_range_are_refused(tmp_path):
    rows = "".join(f"{g},{g}\n" for g in np.linspace(1, 40, 200))
    with pytest.raises(DataError, match=r"targets span 1…40 µS, outside the range 0…25 µS of "
                                        r"the base card 'pcm'"):
        fit_device(_write(tmp_path, "target_uS,programmed_uS\n" + rows), base="pcm")


def test_bad_hdf5_files_are_refused(tmp_path):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as file:
        file["target_uS"] = np.array([10e-6, 20e-6])
        file["programmed_uS"] = np.array([10e-6, 21e-6])
    with pytest.raises(DataError, match=r"m\.h5: column 'target_uS' .* looks like siemens"):
        load_measurements(path)
    with h5py.File(path, "w") as file:
        file["target_uS"] = np.array([10.0, 20.0])
        file["programmed_uS"] = np.array([10.0, 21.0])
        file["programmed_uS"].attrs["units"] = "S"
    with pytest.raises(DataError, match=r"dataset 'programmed_uS' has units 'S'; the column "
                                        r"holds µS"):
        load_measurements(path)
    with pytest.raises(DataError, match=r"m\.txt: unknown file type '\.txt'"):
        load_measurements(_write(tmp_path, "x", "m.txt"))
