"""Real chips in the loop, closed with the simulated chip: targets exported, programmed and read
back by a SimulatedChip, then evaluated from the read-back file — the same numbers as the
simulated tiles give directly."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import analogsim as asim
from analogsim.cards import chip_from_toml
from analogsim.errors import DataError, ShapeError
from analogsim.hardware.chip_exchange import (
    evaluate_readback,
    export_targets,
    read_targets,
    simulate_readback,
)
from analogsim.train.reference import trained_digits_mlp

TIMES = [0.0, 3600.0, 86400.0 * 30]


@pytest.fixture(scope="module")
def digits_mlp():
    model, data = trained_digits_mlp(seed=0, epochs=8)
    return model, (data.x_test, data.y_test)


@pytest.mark.parametrize("card, overrides", [
    ("pcm", {}), ("rram", {}),
    ("pcm", {"coding.scheme": "sign+adaptive_mapping+redundancy", "coding.large_fraction": 0.02}),
], ids=["pcm", "rram", "pcm-coded"])
def test_readback_of_a_simulated_chip_evaluates_like_the_simulated_tiles(
        digits_mlp, tmp_path, card, overrides):
    model, test = digits_mlp
    chip = asim.load_chip(card, **overrides)
    targets = export_targets(model, chip, tmp_path / "targets.h5", model_name="mlp")
    assert set(targets) == {"1", "3", "5"}
    simulate_readback(tmp_path / "targets.h5", tmp_path / "readback.h5", chip, TIMES, seed=7,
                      instances=4)
    measured = evaluate_readback(model, chip, tmp_path / "readback.h5", test, seed=7)
    assert measured.accuracy.shape == (3, 4)
    direct = asim.program(asim.convert(model, chip), seed=7, instances=4)
    for j, t in enumerate(TIMES):
        if t:
            asim.drift(direct, t)
        np.testing.assert_array_equal(measured.accuracy[j], asim.evaluate(direct, test,
                                                                           seed=7).accuracy)


def test_targets_file_documents_roles_tiles_and_units(digits_mlp, tmp_path):
    model, _ = digits_mlp
    export_targets(model, asim.load_chip("pcm"), tmp_path / "t.h5", model_name="mlp")
    with h5py.File(tmp_path / "t.h5") as handle:
        layer = handle["layers/1"]
        assert list(layer.attrs["roles"]) == ["plus", "minus"]
        g = layer["g_target_uS"][()]
        assert g.shape == (2, 64, 64) and g.min() >= 0 and g.max() == pytest.approx(25.0)
        assert layer["tile_of_row"].shape == (64,) and layer["tile_of_output"].shape == (64,)
    assert read_targets(tmp_path / "t.h5")["1"].g_target.shape == (2, 64, 64)


def test_a_readback_that_does_not_fit_the_model_is_refused(digits_mlp, tmp_path):
    model, test = digits_mlp
    chip = asim.load_chip("pcm")
    export_targets(model, chip, tmp_path / "t.h5")
    simulate_readback(tmp_path / "t.h5", tmp_path / "r.h5", chip, [0.0], instances=2)
    with h5py.File(tmp_path / "r.h5", "a") as handle:
        g = handle["layers/3/g_uS"][()]
        del handle["layers/3/g_uS"]
        handle["layers/3/g_uS"] = g[..., :10]
    with pytest.raises(ShapeError, match=r"measured conductances of shape \(2, 2, 64, 10\); "
                                         r"expected \(2, 2, 64, 64\)"):
        evaluate_readback(model, chip, tmp_path / "r.h5", test)
    with pytest.raises(DataError, match="format 'analogsim-targets' version 1; expected "
                                        "'analogsim-readback'"):
        evaluate_readback(model, chip, tmp_path / "t.h5", test)
    with pytest.raises(DataError, match="times_s must start with 0"):
        simulate_readback(tmp_path / "t.h5", tmp_path / "x.h5", chip, [60.0])


def test_the_command_line_closes_the_loop(digits_mlp, tmp_path):
    from analogsim import cli
    from analogsim.hardware.model_file import save_model_file

    model, test = digits_mlp
    chip = asim.load_chip("pcm")
    save_model_file(tmp_path / "model.pt", model, "mlp",
                    {"in_features": 64, "hidden": [64, 64], "num_classes": 10}, chip, "digits")
    assert cli.main(["export-targets", str(tmp_path / "model.pt"), "-o",
                     str(tmp_path / "targets.h5"), "--quiet"]) == 0
    simulate_readback(tmp_path / "targets.h5", tmp_path / "readback.h5", chip, TIMES, seed=3,
                      instances=2)
    assert cli.main(["evaluate-readback", str(tmp_path / "model.pt"),
                     str(tmp_path / "readback.h5"), "-o", str(tmp_path / "lab.h5"),
                     "--report", str(tmp_path / "report"), "--seed", "3", "--quiet"]) == 0
    run = asim.load_results(tmp_path / "lab.h5").runs["readback"]
    direct = asim.drift(asim.program(asim.convert(model, chip), seed=3, instances=2), TIMES[-1])
    np.testing.assert_array_equal(run.data["accuracy"][-1],
                                  asim.evaluate(direct, test, seed=3).accuracy)
    assert (tmp_path / "report" / "index.html").is_file()
    assert cli.main(["export-targets", str(tmp_path / "readback.h5"), "--quiet"]) == 2


def test_a_model_file_that_is_not_one_is_refused_unread(tmp_path):
    from analogsim.hardware.model_file import load_model_file

    class Payload:  # pickled code: weights_only refuses it without running it
        def __reduce__(self):
            return (print, ("pickled code ran",))

    torch.save({"format": Payload()}, tmp_path / "code.pt")
    with pytest.raises(DataError, match=r"code.pt: holds pickled objects other than tensors"):
        load_model_file(tmp_path / "code.pt")
    torch.save({"state": torch.zeros(100)}, tmp_path / "cut.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "cut.pt").read_bytes()[:100])
    with pytest.raises(DataError, match=r"cut.pt: not a readable file \(.*\); expected a model "
                                        r"file written by save_model_file"):
        load_model_file(tmp_path / "cut.pt")
    torch.save({"state": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(DataError, match=r"other.pt: not an analogsim model file"):
        load_model_file(tmp_path / "other.pt")


def test_fit_device_writes_a_card_that_loads_and_its_report(tmp_path):
    from analogsim import cli

    card = tmp_path / "mypcm.toml"
    measurements = Path(__file__).resolve().parents[1] / "docs" / "measurements" / "pcm_2000.h5"
    results = tmp_path / "fit.h5"
    assert cli.main(["fit-device", str(measurements), "-o", str(card), "--results", str(results),
                     "--report", str(tmp_path / "report"), "--quiet"]) == 0
    fitted = asim.load_chip(card)
    assert fitted.name == "pcm_2000"  # the measurement file's stem
    assert "pcm_2000.h5" in fitted.card.source
    assert (tmp_path / "report" / "index.html").is_file()
    # the engine's results file: the fitted card and every fitted number with its error
    written = asim.load_results(results)
    assert chip_from_toml(written.config["card"]) == fitted
    fit = written.runs["device_fit"]
    values = dict(zip(fit.axes["field"], fit.data["value"], strict=True))
    assert values["drift.mean_slope"] == fitted.drift.mean_slope
    assert np.isfinite(fit.data["error"]).any()
    programming = written.runs["fit_programming"]
    assert programming.done.all() and (programming.data["count"] > 0).all()
