"""Packaging: every package folder is listed, and a non-editable install ships the cards."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in
             (ROOT / "analogsim").rglob("__init__.py")}
    assert found | {"analogsim.devices"} == listed


@pytest.mark.slow
def test_wheel_ships_the_device_cards(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("analogsim-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for card in ("ideal", "pcm", "rram", "generic"):
        assert f"analogsim/devices/{card}.toml" in names
    assert not any(name.startswith("tests/") for name in names)
