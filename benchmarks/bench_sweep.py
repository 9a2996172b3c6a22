"""A Monte-Carlo sweep through analogsim's sweep engine against a hand-written plain-torch floor.

The sweep (issue 6): the digits MLP 64-64-64-10 of the demo on the ``pcm`` card, 20 chip
instances × 4 drift times (1 h, 1 day, 1 month, 1 year) × 4 read-noise scales (0.5, 1, 2, 4 ×
the card's ``read_noise.scale``), accuracy on the digits test set at every point.

- engine: ``sweep_accuracy(model, test, "pcm", SweepPlan(...))`` — per scale it converts the
  model, programs the 20 instances, and per time drifts them and evaluates all 20 at once;
- floor: the same arithmetic written as a plain loop over plain tensors with a leading
  instance dimension K = 20 (the formulas of :mod:`analogsim.physics` called directly, no
  tiles, layers, convert, program, drift or evaluate). Per scale it programs (mapping to a
  differential pair at the tile's max|W|, polynomial programming noise, drift exponents, the
  global-drift-compensation read-out), per time it ages (power-law drift, accumulated 1/f read
  noise, the GDC read-out and factor) and runs the MLP with ``torch.bmm`` over instances
  (abs-max input scaling, 7-bit DAC, output noise, 9-bit ADC ±12, rescaling, bias, and the
  model's ReLU out of place, as its ``nn.ReLU``). It draws as many normals as the engine, from
  one generator reseeded per scale, as the engine reuses its seed at every scale.

Both are timed whole (wall time of one sweep, best of ``--repeats``, taking turns so that load
from other processes hits both), and their mean accuracies per (scale, time) are printed side
by side: they are not bit-identical (the random streams differ) but must agree within
AGREEMENT_PP = 2 percentage points, which shows the floor does the engine's work.
Target: engine ≤ 1.5× the floor.

Writes ``benchmarks/results/bench_sweep.json``. Run: ``python benchmarks/bench_sweep.py`` (about
15 s); ``--profile 25`` adds cProfile's top 25 functions of one engine sweep.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import analogsim as asim
from analogsim.allocator import keep_freed_memory
from analogsim.cards import Chip
from analogsim.experiments.card_grid import CardAxis
from analogsim.experiments.sweep import SweepPlan, sweep_accuracy
from analogsim.physics import pcm, periphery, programming
from analogsim.train.reference import trained_digits_mlp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from performance_page import run_mode, write_results

CARD = "pcm"
INSTANCES = 20
DRIFT_TIMES_S = (3600.0, 86400.0, 2592000.0, 31536000.0)  # 1 h, 1 day, 1 month, 1 year
TIME_LABELS = ("1 h", "1 day", "1 month", "1 year")
READ_NOISE_SCALES = (0.5, 1.0, 2.0, 4.0)  # factors of the card's read_noise.scale
TARGET = 1.5  # engine / floor wall time, at most
AGREEMENT_PP = 2.0  # |engine − floor| mean accuracy, percentage points, at most
SEED = 0

Test = tuple[torch.Tensor, torch.Tensor]


# ------------------------------------------------------------------------ plain-torch floor


@dataclass
class ProgrammedLayer:
    """One Linear layer programmed on K instances: what drift(t) starts from.

    Attributes:
        weight_scale: max|W| of the tile (weight units mapped to g_max), a 0-d tensor.
        bias: (out,) digital bias.
        g_programmed: (K, 2, out, in) µS, g⁺ and g⁻ after programming.
        exponents: (K, 2, out, in) drift exponents ν (dimensionless).
        q_s: (K, 2, out, in) relative 1/f read noise Q_s of the programmed conductances.
        reference: (K, 1, 1) GDC read-out after programming, full-scale device currents.
    """

    weight_scale: torch.Tensor
    bias: torch.Tensor
    g_programmed: torch.Tensor
    exponents: torch.Tensor
    q_s: torch.Tensor
    reference: torch.Tensor


@dataclass
class AgedLayer:
    """One layer's K instances at a drift time, ready for forwards.

    Attributes:
        matrix: (K, in, out) maps DAC codes to ADC codes (normalised weights × DAC step /
            ADC step, transposed for ``bmm``).
        multiplier: (K, 1, 1) turns ADC codes back into layer units per unit of max|x|
            (ADC step × max|W| × GDC factor).
        bias: (out,) digital bias.
    """

    matrix: torch.Tensor
    multiplier: torch.Tensor
    bias: torch.Tensor


def differential_conductances(w_normalised: torch.Tensor, chip: Chip) -> torch.Tensor:
    """Target (g⁺, g⁻) in µS, shape (2, out, in), of weights in units of max|W|."""
    cond = chip.conductance
    span = cond.g_max_uS - cond.g_min_uS
    pair = torch.stack([w_normalised.clamp(0, 1), (-w_normalised).clamp(0, 1)])
    return pair * span + cond.g_min_uS


def read_weights(g: torch.Tensor, chip: Chip) -> torch.Tensor:
    """Normalised weights (K, out, in) of conductances (K, 2, out, in) µS: (g⁺ − g⁻)/span."""
    return (g[:, 0] - g[:, 1]) / (chip.conductance.g_max_uS - chip.conductance.g_min_uS)


def gdc_readout(w_normalised: torch.Tensor, chip: Chip, generator: torch.Generator
                ) -> torch.Tensor:
    """Mean |ADC output| of the one-hot read-out through the noisy periphery; (K, 1, 1).

    Each one-hot input (a full-scale DAC level) reads one column: output noise, then the ADC;
    the global factor averages |y| over the tile's columns and outputs.
    """
    dac, adc = chip.dac, chip.adc
    level = periphery.quantise(torch.ones(()), dac.bits, dac.bound)
    noise = torch.randn(w_normalised.shape, generator=generator)
    y = noise.mul_(chip.output_noise.std).add_(w_normalised * level)
    step = periphery.quantisation_step(adc.bits, adc.bound)
    codes = y.div_(step).round_().clamp_(-periphery.code_limit(adc.bits),
                                         periphery.code_limit(adc.bits))
    return codes.abs_().mean(dim=(1, 2), keepdim=True).mul_(step)


def program_layer(linear: nn.Linear, chip: Chip, instances: int, generator: torch.Generator
                  ) -> ProgrammedLayer:
    """Program K instances of one layer: programming error, drift exponents, GDC reference.

    The layer is one tile (every layer of the MLP fits the card's 512×512), so one max|W|
    maps to g_max.
    """
    cond, law, drift, read = chip.conductance, chip.programming, chip.drift, chip.read_noise
    weight = linear.weight.detach()
    scale = weight.abs().amax()
    scale = torch.where(scale > 0, scale, 1.0)
    g_target = differential_conductances(weight / scale, chip)
    shape = (instances, *g_target.shape)
    std = programming.polynomial_programming_std(
        g_target, law.coefficients_uS, cond.g_max_uS, law.reference_g_max_uS) * law.scale
    g_programmed = (g_target + std * torch.randn(shape, generator=generator)).clamp_(min=0.0)
    mean, spread = pcm.drift_exponent_moments(
        g_target, cond.g_max_uS, drift.mean_slope, drift.mean_offset,
        (drift.mean_min, drift.mean_max), drift.std_slope, drift.std_offset,
        (drift.std_min, drift.std_max), drift.g_rel_min)
    exponents = (mean + spread * torch.randn(shape, generator=generator)).abs_().mul_(drift.scale)
    q_s = pcm.relative_read_noise(g_programmed, cond.g_max_uS, read.q_coefficient,
                                  read.q_exponent, read.q_floor, read.q_max)
    reference = gdc_readout(read_weights(g_programmed, chip), chip, generator)
    return ProgrammedLayer(scale, linear.bias.detach(), g_programmed, exponents, q_s, reference)


def age_layer(layer: ProgrammedLayer, chip: Chip, t_s: float, read_noise_scale: float,
              generator: torch.Generator) -> AgedLayer:
    """Drift the K instances to ``t_s`` s, add the accumulated 1/f read noise, re-measure GDC.

    Args:
        layer: the programmed state.
        chip: the card.
        t_s: time after programming, s (> 0).
        read_noise_scale: the read-noise scale of this sweep point (dimensionless).
        generator: the floor's random stream.
    """
    drift, read = chip.drift, chip.read_noise
    g = pcm.apply_power_law_drift(layer.g_programmed, layer.exponents, t_s, drift.t0_s)
    factor = pcm.read_noise_time_factor(t_s, read.t0_s, read.t_read_s)
    std = g.abs() * layer.q_s * (factor * read_noise_scale)
    g = g.add_(std.mul_(torch.randn(g.shape, generator=generator))).clamp_(min=0.0)
    w_normalised = read_weights(g, chip)
    gdc = layer.reference / gdc_readout(w_normalised, chip, generator).clamp_(min=1e-4)
    input_step = periphery.quantisation_step(chip.dac.bits, chip.dac.bound)
    output_step = periphery.quantisation_step(chip.adc.bits, chip.adc.bound)
    matrix = (w_normalised * (input_step / output_step)).transpose(1, 2)
    return AgedLayer(matrix, gdc * (layer.weight_scale * output_step), layer.bias)


def analog_forward(x: torch.Tensor, layers: list[AgedLayer], chip: Chip,
                   generator: torch.Generator) -> torch.Tensor:
    """Logits (K, B, classes) of inputs (K, B, in) through the ReLU MLP on K instances.

    Per layer: abs-max input scaling and the DAC, one ``bmm``, output noise, the ADC, rescaling
    by max|x| and the layer's multiplier, the bias; ReLU between layers.
    """
    input_step = periphery.quantisation_step(chip.dac.bits, chip.dac.bound)
    output_step = periphery.quantisation_step(chip.adc.bits, chip.adc.bound)
    noise_codes = chip.output_noise.std / output_step
    limit = periphery.code_limit(chip.adc.bits)
    for i, layer in enumerate(layers):
        x_scale = periphery.abs_max_scale(x, (-1,))
        codes = (x / (x_scale * input_step)).round_()
        y = torch.bmm(codes, layer.matrix)
        y.add_(torch.randn(y.shape, generator=generator).mul_(noise_codes))
        y.round_().clamp_(-limit, limit)
        x = torch.addcmul(layer.bias, y, x_scale * layer.multiplier, out=y)
        if i < len(layers) - 1:
            x = torch.relu(x)  # out of place, as the model's nn.ReLU
    return x


@torch.no_grad()
def floor_sweep(model: nn.Module, test: Test, chip: Chip,
                read_noise_scales: tuple[float, ...] = READ_NOISE_SCALES,
                instances: int = INSTANCES) -> np.ndarray:
    """The sweep as a plain loop; accuracy[scale, time, instance] as fractions.

    ``read_noise_scales``: factors of the card's ``read_noise.scale``, one programming each
    (``bench_backends.py`` runs the card as it is: ``(1.0,)``); ``instances``: K.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    x_test, y_test = test
    x = x_test.flatten(1).expand(instances, -1, -1)  # (K, B, in), instance-major
    generator = torch.Generator()
    accuracy = np.empty((len(read_noise_scales), len(DRIFT_TIMES_S), instances))
    for i, factor in enumerate(read_noise_scales):
        generator.manual_seed(SEED)  # the same draws at every scale, as the engine
        programmed = [program_layer(m, chip, instances, generator) for m in linears]
        for j, t_s in enumerate(DRIFT_TIMES_S):
            aged = [age_layer(layer, chip, t_s, chip.read_noise.scale * factor, generator)
                    for layer in programmed]
            logits = analog_forward(x, aged, chip, generator)
            accuracy[i, j] = (logits.argmax(dim=-1) == y_test).double().mean(dim=1).numpy()
    return accuracy


# ------------------------------------------------------------------------ engine


def engine_sweep(model: nn.Module, test: Test) -> np.ndarray:
    """The sweep through ``sweep_accuracy``; accuracy[scale, time, instance] as fractions."""
    plan = SweepPlan(axes=(CardAxis("read_noise.scale", READ_NOISE_SCALES, mode="scale"),),
                     times_s=DRIFT_TIMES_S, instances=INSTANCES, seed=SEED)
    return sweep_accuracy(model, test, CARD, plan)


# ------------------------------------------------------------------------ measurement


def best_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time (s) of one call of each function over ``repeats`` turns.

    The functions take turns in every repeat, so a burst of load from other processes on a
    shared machine hits all of them rather than one.
    """
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for label, fn in fns.items():
            best[label] = min(best[label], timeit.timeit(fn, number=1))
    return best


def print_accuracies(engine: np.ndarray, floor: np.ndarray) -> float:
    """Mean accuracy per (scale, time), engine / floor; returns the largest |difference|, pp."""
    print(f"mean accuracy over the {INSTANCES} instances [%], engine / floor (engine − floor, "
          "pp)")
    print(f"{'read noise':<11}" + "".join(f"{label:>22}" for label in TIME_LABELS))
    engine_mean, floor_mean = 100 * engine.mean(axis=-1), 100 * floor.mean(axis=-1)
    for i, factor in enumerate(READ_NOISE_SCALES):
        cells = (f"{e:6.2f} / {f:6.2f} ({e - f:+5.2f})"
                 for e, f in zip(engine_mean[i], floor_mean[i], strict=True))
        print(f"{factor:>9g}x " + "".join(f"{cell:>22}" for cell in cells))
    return float(np.abs(engine_mean - floor_mean).max())


def print_profile(model: nn.Module, test: Test, top: int) -> None:
    """cProfile of one engine sweep: the ``top`` functions by cumulative time."""
    profiler = cProfile.Profile()
    profiler.runcall(engine_sweep, model, test)
    print(f"\ncProfile of one engine sweep, top {top} by cumulative time:")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed sweeps of each")
    parser.add_argument("--epochs", type=int, default=40, help="training epochs of the MLP")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice); 1 is steadier "
                             "on a machine other processes load")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also print cProfile's top N functions of one engine sweep")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as `analogsim run` does, for both sides
    chip = asim.load_chip(CARD)
    model, data = trained_digits_mlp(seed=SEED, epochs=args.epochs)
    test = (data.x_test, data.y_test)
    digital = asim.evaluate(model, test).mean
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average "
          "(1, 5, 15 min): {:.2f} {:.2f} {:.2f} on {} cores".format(*os.getloadavg(),
                                                                     os.cpu_count()))
    print(f"digits MLP 64-64-64-10 ({args.epochs} epochs, digital accuracy {100 * digital:.2f} "
          f"%), {CARD} card, {INSTANCES} instances x {len(DRIFT_TIMES_S)} drift times x "
          f"{len(READ_NOISE_SCALES)} read-noise scales, {len(test[0])} test samples\n")
    largest = print_accuracies(engine_sweep(model, test), floor_sweep(model, test, chip))
    times = best_times({"engine": lambda: engine_sweep(model, test),
                        "floor": lambda: floor_sweep(model, test, chip)}, args.repeats)
    ratio = times["engine"] / times["floor"]
    print(f"\nwall time of one whole sweep [s] (best of {args.repeats}): engine "
          f"{times['engine']:.3f}, floor {times['floor']:.3f}")
    print(f"{'engine / floor':<40} {ratio:7.2f}x  target <= {TARGET:g}x  "
          f"{'met' if ratio <= TARGET else 'NOT met'}")
    print(f"{'largest |engine - floor| mean accuracy':<40} {largest:7.2f} pp  tolerance "
          f"{AGREEMENT_PP:g} pp  {'agree' if largest <= AGREEMENT_PP else 'DISAGREE'}")
    print("load average at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    path = write_results("bench_sweep", {
        "engine_s": times["engine"], "floor_s": times["floor"], "engine_over_floor": ratio,
        "target": TARGET, "met": ratio <= TARGET, "largest_difference_pp": largest,
        "agreement_pp": AGREEMENT_PP, "agree": largest <= AGREEMENT_PP,
        "digital_accuracy": digital, "epochs": args.epochs, "instances": INSTANCES,
        "drift_times_s": list(DRIFT_TIMES_S), "read_noise_scales": list(READ_NOISE_SCALES),
        "drift_time_count": len(DRIFT_TIMES_S), "read_noise_scale_count": len(READ_NOISE_SCALES),
        "test_samples": len(test[0]), "repeats": args.repeats},
        mode=run_mode(parser, args), started=started)
    print(f"wrote {path}")
    if args.profile:
        print_profile(model, test, args.profile)


if __name__ == "__main__":
    main()
