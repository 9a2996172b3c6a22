"""A measurement CSV separated by semicolons or tabs reads as the comma-separated one; a header
that mixes separators, or uses none of them, is refused with the file and the fix named."""

from __future__ import annotations

import numpy as np
import pytest

from analogsim.errors import DataError
from analogsim.hardware import load_measurements

ROWS = [("device", "target_uS", "programmed_uS", "time_s", "conductance_uS"),
        ("0", "12.5", "12.81", "60", "12.47"), ("0", "12.5", "12.81", "3600", "11.93"),
        ("1", "3.2", "3.05", "", "")]


def _write(tmp_path, name: str, delimiter: str) -> object:
    path = tmp_path / name
    path.write_text("# a note\n" + "".join(delimiter.join(row) + "\n" for row in ROWS))
    return path


@pytest.mark.parametrize("delimiter", [";", "\t"], ids=["semicolons", "tabs"])
def test_semicolons_and_tabs_read_as_commas(tmp_path, delimiter):
    commas = load_measurements(_write(tmp_path, "commas.csv", ","))
    other = load_measurements(_write(tmp_path, "other.csv", delimiter))
    for name in ("target_uS", "programmed_uS", "time_s", "conductance_uS"):
        np.testing.assert_array_equal(getattr(other, name), getattr(commas, name))


def test_a_semicolon_file_is_no_longer_one_unknown_column(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("target_uS;programmed_uS\n1.0;1.1\n2.0;2.2\n")
    np.testing.assert_array_equal(load_measurements(path).programmed_uS, [1.1, 2.2])


@pytest.mark.parametrize(("text", "message"), [
    ("target_uS;programmed_uS,time_s\n1;1,\n",
     r"m\.csv: the header row 'target_uS;programmed_uS,time_s' mixes commas and semicolons; "
     r"separate every cell by the same one"),
    ("target_uS programmed_uS\n1 1\n",
     r"m\.csv: the header row 'target_uS programmed_uS' is not separated by commas, semicolons "
     r"or tabs; name the columns \(device, target_uS"),
])
def test_a_header_without_one_clear_separator_is_refused(tmp_path, text, message):
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        load_measurements(path)
