"""Cross-check a device card on the native tile against IBM aihwkit's tiles.

Two levels, both on the same card:

- devices: the same target conductances go through both backends' device models; the
  programmed conductances, the drift exponents and the conductances at each time are compared
  by their moments and a two-sample Kolmogorov–Smirnov test;
- model: the demo's digits MLP runs on K chip instances per backend, drifted to each time with
  the card's drift compensation; the accuracies are compared by their 95 % confidence intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from analogsim.cards import Chip, RramRelaxation, load_chip
from analogsim.conversion import convert
from analogsim.evaluation import Evaluation, evaluate
from analogsim.programming import drift, program
from analogsim.seeding import Purpose, derive_seed, make_generator, time_key
from analogsim.tiles import device_model
from analogsim.train.reference import trained_digits_mlp


@dataclass(frozen=True)
class DeviceComparison:
    """One quantity (e.g. conductance at 1 h) at one target, from both backends."""

    quantity: str
    target_uS: float
    native_mean: float
    native_std: float
    aihwkit_mean: float
    aihwkit_std: float
    ks_pvalue: float

    @property
    def agrees(self) -> bool:
        """KS p > 0.01, or mean and std both within 3 %."""
        close = (abs(self.native_mean - self.aihwkit_mean) <= 0.03 * abs(self.aihwkit_mean)
                 and abs(self.native_std - self.aihwkit_std) <= 0.03 * self.aihwkit_std)
        return self.ks_pvalue > 0.01 or close


@dataclass(frozen=True)
class ModelComparison:
    """Accuracy of the same model on both backends at one time after programming."""

    t_seconds: float
    native: Evaluation
    aihwkit: Evaluation

    @property
    def agrees(self) -> bool:
        """The two 95 % confidence intervals overlap."""
        (n_low, n_high), (a_low, a_high) = self.native.ci95, self.aihwkit.ci95
        return n_low <= a_high and a_low <= n_high


def native_device_samples(
    chip: Chip, g_target: torch.Tensor, times_s: Sequence[float], seed: int
) -> dict[str, torch.Tensor]:
    """The native device model applied to target conductances (µS), like aihwkit's sampler.

    Each target is the g⁺ device of a weight g_T/g_max (its partner sits at g_min).
    """
    cond = chip.conductance
    w_normalised = ((g_target - cond.g_min_uS) / (cond.g_max_uS - cond.g_min_uS)).reshape(1, -1)
    devices = device_model.program_devices(
        chip, w_normalised, [make_generator(seed, Purpose.PROGRAM, 0, 0)],
        device_model.exponent_seeds(seed, 0, [0]))
    samples = {"programmed": devices.g_programmed[0, 0, 0].float()}
    if devices.exponent_seeds is not None:
        samples["drift_exponents"] = device_model.drift_exponents(
            chip, devices.g_target, devices.exponent_seeds)[0, 0, 0]
    for t in times_s:
        aged = device_model.age_devices(
            chip, devices, t, [make_generator(seed, Purpose.DRIFT, 0, 0, time_key(t))])
        samples[f"t={t:g}"] = aged[0, 0, 0]
    return samples


def compare_devices(
    chip: Chip,
    targets_uS: Sequence[float],
    times_s: Sequence[float],
    devices: int = 10_000,
    seed: int = 0,
) -> list[DeviceComparison]:
    """Device statistics of both backends for ``devices`` devices at each target (µS)."""
    from analogsim.backends.aihwkit_backend import sample_devices

    rows = []
    for i, target in enumerate(targets_uS):
        g_target = torch.full((devices,), float(target))
        native = native_device_samples(chip, g_target, times_s, derive_seed(seed, 0, i))
        reference = sample_devices(chip, g_target, list(times_s), derive_seed(seed, 1, i))
        for quantity, values in native.items():
            ours, theirs = values.double().numpy(), reference[quantity].double().numpy()
            rows.append(DeviceComparison(
                quantity=quantity, target_uS=float(target),
                native_mean=float(ours.mean()), native_std=float(ours.std(ddof=1)),
                aihwkit_mean=float(theirs.mean()), aihwkit_std=float(theirs.std(ddof=1)),
                ks_pvalue=float(stats.ks_2samp(ours, theirs).pvalue),
            ))
    return rows


def compare_models(
    chip: Chip,
    times_s: Sequence[float],
    instances: int = 32,
    seed: int = 0,
    aihwkit_tile: str = "cpp",
) -> list[ModelComparison]:
    """The digits MLP on ``instances`` chips of each backend, evaluated at each time."""
    model, data = trained_digits_mlp(seed=seed)
    test = (data.x_test, data.y_test)
    results: dict[str, list[Evaluation]] = {}
    for backend in ("native", "aihwkit"):
        analog = convert(model, chip, backend=backend, aihwkit_tile=aihwkit_tile)
        program(analog, seed=seed, instances=instances)
        results[backend] = []
        for t in times_s:
            drift(analog, t)
            results[backend].append(evaluate(analog, test, seed=seed))
    return [ModelComparison(t, n, a) for t, n, a in
            zip(times_s, results["native"], results["aihwkit"], strict=True)]


def crosscheck(
    card: str | Chip,
    times_s: Sequence[float] | None = None,
    instances: int = 32,
    devices: int = 10_000,
    seed: int = 0,
    aihwkit_tile: str = "cpp",
) -> tuple[list[DeviceComparison], list[ModelComparison]]:
    """Both comparisons for one card (see the module docstring).

    Args:
        times_s: times after programming; default 1 h and 1 day, or for an RRAM relaxation
            card its measured times after the first (aihwkit drifts it to those only).
    """
    chip = load_chip(card)
    if times_s is None:
        times_s = (chip.drift.times_s[1:] if isinstance(chip.drift, RramRelaxation)
                   else (3600.0, 86400.0))
    targets = np.linspace(0.2, 1.0, 5) * chip.conductance.g_max_uS
    return (compare_devices(chip, targets, times_s, devices, seed),
            compare_models(chip, times_s, instances, seed, aihwkit_tile))
