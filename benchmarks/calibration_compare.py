"""Calibrated DAC input ranges against per-vector abs-max scaling, on the ``pcm`` card.

Two small models are trained briefly (digitally) on scikit-learn's ``load_digits`` (8×8
images): a CNN, and a tiny transformer-like MLP (an MLP-Mixer block: the image's rows as tokens,
a token-mixing and a channel MLP with LayerNorm and residuals). Each is converted onto ``pcm``
with ``dac.input_scaling`` = ``abs_max`` (each input vector divided by its own max|x|) and with
``calibrated`` (one fixed range per layer from :func:`analogsim.calibrate`, at a few
percentiles of |x| on training images), programmed on the same chip instances (seed and ids
stated in the JSON: programming draws do not depend on the input scaling, so the chips are
paired across scalings), drifted, and evaluated on the test split. The accuracy intervals are
Student's t over chips; the difference to abs_max is paired per chip.

Writes ``benchmarks/results/calibration.json`` and, from it alone, ``docs/calibration.md``.

Run: ``python benchmarks/calibration_compare.py`` (about a minute on one thread);
``--docs-only`` rewrites the page from the committed JSON. ``tests/test_calibration.py``
checks that the committed page is what the JSON gives.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from measured_page import measure_and_render
from torch import nn

import analogsim as asim
from analogsim import models
from analogsim.conversion import analog_layers
from analogsim.datasets import DataSplit, load
from analogsim.statistics import interval_over_units
from analogsim.train import TrainingConfig, fit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "calibration.json"
PAGE = ROOT / "docs" / "calibration.md"

CARD = "pcm"
CHIPS = 10  # chip instances 0…9
PROGRAM_SEED = 0
NOISE_SEED = 0  # per-read and output noise of evaluate
T_INFERENCE_S = 3600.0  # s after programming
PERCENTILES = (99.0, 99.9, 99.99)
CALIBRATION_SAMPLES = 256  # the first training images
TRAINING = TrainingConfig(epochs=30, batch_size=64, optimizer="adam", learning_rate=3e-3,
                          weight_decay=0.0, seed=0)


def small_vit() -> nn.Module:
    """A vision transformer on the 8×8 digits: 16 patches of 2×2 pixels, width 32, 2 blocks of
    4 heads, MLP 64 (``vit_tiny``; attention products digital, every projection on tiles)."""
    return models.create("vit_tiny", input_shape=(1, 8, 8), patch_size=2, dim=32, depth=2,
                         heads=4, mlp_hidden=64)


def small_cnn() -> nn.Sequential:
    """Two 3×3 convolutions (8 and 16 channels, ReLU), a 2×2 max-pool and a linear layer."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 4 * 4, 10))


MODELS = {"cnn": (small_cnn, "small CNN"), "vit": (small_vit, "small vision transformer")}


def interval(values: np.ndarray) -> dict[str, Any]:
    """Mean and 95 % CI over chips (Student's t) of per-chip values."""
    found = interval_over_units(values, ("chip",))
    return {"mean": found.mean, "low": found.low, "high": found.high, "n": found.n,
            "unit": found.unit}


def evaluate_on_chips(model: nn.Module, data: DataSplit, scaling: str,
                      percentile: float | None) -> dict[str, Any]:
    """Accuracy per chip of ``model`` on the card with this input scaling."""
    amodel = asim.convert(model, asim.load_chip(CARD, dac_input_scaling=scaling))
    ranges = None
    if percentile is not None:
        ranges = asim.calibrate(amodel, data.x_train[:CALIBRATION_SAMPLES],
                                percentile=percentile)
    asim.program(amodel, seed=PROGRAM_SEED, instances=CHIPS)
    asim.drift(amodel, T_INFERENCE_S)
    result = asim.evaluate(amodel, (data.x_test, data.y_test), seed=NOISE_SEED)
    return {"scaling": scaling, "percentile": percentile,
            "accuracy": [float(a) for a in result.accuracy], "ranges": ranges}


def run() -> dict[str, Any]:
    torch.set_num_threads(1)
    torch.manual_seed(0)  # the models' initialisation
    started = time.perf_counter()
    data = load("digits", seed=0, flatten=False)
    summary: dict[str, Any] = {"models": {}}
    for name, (build, description) in MODELS.items():
        model = build()
        fit(model, data, config=TRAINING)
        model.eval()
        with torch.no_grad():
            digital = int((model(data.x_test).argmax(1) == data.y_test).sum()) / len(data.y_test)
        rows = [evaluate_on_chips(model, data, "abs_max", None)]
        rows += [evaluate_on_chips(model, data, "calibrated", p) for p in PERCENTILES]
        reference = np.array(rows[0]["accuracy"])
        for row in rows:
            row["interval"] = interval(np.array(row["accuracy"]))
            row["difference"] = interval(np.array(row["accuracy"]) - reference)
        layers = [layer_name for layer_name, _ in analog_layers(asim.convert(model, CARD))]
        summary["models"][name] = {"description": description, "digital_accuracy": digital,
                                   "analog_layers": layers, "rows": rows}
    chip = asim.load_chip(CARD)
    summary["settings"] = {
        "card": CARD, "dac_bits": chip.dac.bits, "dac_bound": chip.dac.bound,
        "adc_bits": chip.adc.bits, "chips": CHIPS, "program_seed": PROGRAM_SEED,
        "noise_seed": NOISE_SEED, "t_inference_s": T_INFERENCE_S,
        "percentiles": list(PERCENTILES), "calibration_samples": CALIBRATION_SAMPLES,
        "train_samples": len(data.y_train), "test_samples": len(data.y_test),
        "epochs": TRAINING.epochs, "optimizer": TRAINING.optimizer,
        "learning_rate": TRAINING.learning_rate, "training_seed": TRAINING.seed,
    }
    summary["made"] = {"wall_time_s": time.perf_counter() - started, "threads": 1,
                       "torch": torch.__version__, "python": platform.python_version()}
    return summary


# ------------------------------------------------------------------------ the page


def percent(value: float) -> str:
    return f"{100 * value:.2f}"


def signed(value: float) -> str:
    return f"{100 * value:+.2f}"


def scaling_label(row: dict[str, Any]) -> str:
    if row["percentile"] is None:
        return "`abs_max` (per input vector)"
    return f"`calibrated`, {row['percentile']:g}th percentile"


def verdict(difference: dict[str, Any]) -> str:
    if difference["low"] > 0:
        return "higher"
    if difference["high"] < 0:
        return "lower"
    return "not resolved"


def model_section(name: str, model: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    lines = [f"## {model['description']} (`{name}`)", "",
             f"Digital accuracy: {percent(model['digital_accuracy'])} % on the "
             f"{settings['test_samples']} test images. Analog layers: "
             + ", ".join(f"`{layer}`" for layer in model["analog_layers"]) + ".", "",
             "| input scaling | accuracy, % (95 % CI) | difference to abs_max, points (95 % CI)"
             " | difference |", "|---|---|---|---|"]
    for row in model["rows"]:
        acc, diff = row["interval"], row["difference"]
        accuracy = f"{percent(acc['mean'])} [{percent(acc['low'])}, {percent(acc['high'])}]"
        if row["percentile"] is None:
            lines.append(f"| {scaling_label(row)} | {accuracy} | — | — |")
            continue
        difference = f"{signed(diff['mean'])} [{signed(diff['low'])}, {signed(diff['high'])}]"
        lines.append(f"| {scaling_label(row)} | {accuracy} | {difference} | {verdict(diff)} |")
    n, unit = model["rows"][0]["interval"]["n"], model["rows"][0]["interval"]["unit"]
    lines += ["", f"Intervals: Student's t over n = {n} {unit} (chip instances); differences "
              "are paired per chip (the same chips under every scaling); higher or lower: the "
              "difference's interval excludes 0.", "",
              "Calibrated ranges r per layer, in the units of the layer's input:", "",
              "| layer | " + " | ".join(f"{row['percentile']:g}th pct."
                                      for row in model["rows"][1:]) + " |",
              "|---|" + "---|" * (len(model["rows"]) - 1)]
    for layer in model["analog_layers"]:
        lines.append(f"| `{layer}` | " + " | ".join(f"{row['ranges'][layer]:.4g}"
                                                  for row in model["rows"][1:]) + " |")
    return [*lines, ""]


def render_page(summary: dict[str, Any]) -> str:
    """docs/calibration.md from the JSON summary alone."""
    s = summary["settings"]
    made = summary["made"]
    lines = [
        "# Calibrated input ranges against abs-max scaling", "",
        "<!-- Generated by `python benchmarks/calibration_compare.py` from "
        "benchmarks/results/calibration.json (`--docs-only` rewrites it from the JSON). "
        "Do not edit by hand. -->", "",
        f"The `{s['card']}` card ({s['dac_bits']}-bit DAC over ±{s['dac_bound']:g}, "
        f"{s['adc_bits']}-bit ADC) with `dac.input_scaling = \"abs_max\"` divides each input "
        "vector by its own max|x|; with `\"calibrated\"` every analog layer divides its inputs "
        "by one fixed range r, set by `asim.calibrate(model, data, percentile)` to that "
        "percentile of |x| of the layer's inputs on calibration data (the digital model's "
        "inputs), and the DAC clips what exceeds r·bound. abs_max gives every input vector the "
        "DAC's full resolution, at the price of a per-vector max a chip would have to compute; "
        "a fixed range is what a chip with one DAC range per layer does: vectors much smaller "
        "than r use few DAC levels, and inputs above r·bound clip.", "",
        f"Each model was trained digitally for {s['epochs']} epochs ({s['optimizer']}, "
        f"learning rate {s['learning_rate']:g}, seed {s['training_seed']}) on the "
        f"{s['train_samples']} training images of `load_digits` (split seed 0), and is "
        f"evaluated on its {s['test_samples']} test images. Calibration data: the first "
        f"{s['calibration_samples']} training images. Every scaling runs on the same "
        f"{s['chips']} chip instances (ids 0–{s['chips'] - 1}, program seed "
        f"{s['program_seed']}, noise seed {s['noise_seed']}), read "
        f"{s['t_inference_s']:g} s after programming with the card's drift compensation.", "",
    ]
    for name, model in summary["models"].items():
        lines += model_section(name, model, s)
    lines += [f"Made in {made['wall_time_s']:.0f} s on {made['threads']} thread "
              f"(torch {made['torch']}, Python {made['python']}).", ""]
    return "\n".join(lines)


def main() -> None:
    measure_and_render(__doc__.splitlines()[0], RESULTS, PAGE, run, render_page)


if __name__ == "__main__":
    main()
