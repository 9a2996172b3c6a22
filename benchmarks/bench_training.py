"""Epoch time of each training method of :mod:`analogsim.train` against standard training.

Everything is measured side by side in this one process, on the same model, data and optimiser
settings, and printed as ratios to :class:`~analogsim.train.Standard`. Default workload: LeNet-5
on ``mnist5k`` (4,000 training images, 32 batches of 128), SGD lr 0.05 with the momentum and
weight decay of :class:`~analogsim.train.TrainingConfig`. Each method trains its own copy of one
initial model with its own generator.

Only the training epoch is timed: ``start_epoch`` and the step loop over
:func:`analogsim.datasets.batches`, as :func:`analogsim.train.fit` runs them, without ``fit``'s
per-epoch test evaluation, history and checkpoint. After one untimed warm-up epoch per method,
every repeat runs ``--epochs`` epochs of each method in turn (starting one method later each
repeat), so a burst of load from other processes hits all methods rather than one; the best of
the repeats is kept per method.

Methods and targets (epoch time / standard's):

- naive noise-aware training, σ = 0.1, ``persistent_per_epoch`` and ``per_batch_restore``,
  and RWP σ = 0.05 (Jacobson, α = 1): one forward/backward per step, target ≤ 1.2×;
- SAM ρ = 0.5, ASAM ρ = 2.0 and multi-step SAM (ρ = 0.02 · ⌊e/10⌋, timed from epoch 10, where
  ρ = 0.02 > 0): two forward/backwards per step, target ≤ 2.1×;
- m-RWP γ = 0.01, α = 0.5 (Li, filter-wise): the clean and the perturbed loss, two
  forward/backwards per step like SAM, so SAM's target ≤ 2.1×.

Every method's epoch index starts at 10 (the constant schedules ignore it). The methods' models
drift apart as they train, and some CPU kernels are data-dependent (LeNet-5's max pooling takes
~30 % less time on the noise-trained models' sparser activations), so a one-pass method may
come out a few percent below 1×.

One intra-op thread by default: on a shared 2-core machine, torch's two OpenMP threads wait at
every operator's barrier for a core another process holds, and a LeNet-5 epoch then takes
1-8 s instead of 0.25 s, varying from epoch to epoch by more than the methods differ. Pass
``--threads 2`` on a quiet machine.

Run: ``python benchmarks/bench_training.py`` (about 1-2 minutes on 2 cores); ``--model mlp`` or
``--model resnet20`` (add ``--max-batches 8``: a ResNet-20 epoch is tens of seconds on CPU);
``--quick`` for a smoke run whose ratios are not worth quoting. Writes
``benchmarks/results/bench_training.json``.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from analogsim import datasets, models
from analogsim.seeding import Purpose, make_generator
from analogsim.train import (
    Method,
    NoiseAware,
    RandomWeightPerturbation,
    Sharpness,
    Standard,
    TrainingConfig,
)
from analogsim.train.methods import TrainingContext
from analogsim.train.schedules import multi_step_sam_rho

sys.path.insert(0, str(Path(__file__).resolve().parent))
from performance_page import run_mode, write_results

FIRST_EPOCH = 10  # multi-step SAM: ρ(10) = 0.02, the first epoch with ρ > 0
ONE_PASS, TWO_PASSES = 1.2, 2.1  # targets, epoch time / standard's


def methods() -> dict[str, tuple[Method, float | None]]:
    """Label → (method, target ratio to standard); standard has no target."""
    return {
        "standard": (Standard(), None),
        "noise-aware σ=0.1 persistent": (NoiseAware(sigma=0.1), ONE_PASS),
        "noise-aware σ=0.1 per-batch": (NoiseAware(sigma=0.1, mode="per_batch_restore"),
                                        ONE_PASS),
        "SAM ρ=0.5": (Sharpness(rho=0.5), TWO_PASSES),
        "ASAM ρ=2.0": (Sharpness(rho=2.0, adaptive=True), TWO_PASSES),
        "multi-step SAM": (Sharpness(rho=multi_step_sam_rho()), TWO_PASSES),
        "RWP σ=0.05 (Jacobson)": (RandomWeightPerturbation(sigma=0.05), ONE_PASS),
        "m-RWP γ=0.01 α=0.5 (Li)": (RandomWeightPerturbation(sigma=0.01, kind="filterwise_norm",
                                                             alpha=0.5), TWO_PASSES),
    }


def build_model(name: str, data: datasets.DataSplit) -> nn.Module:
    if name == "mlp":
        return models.create("mlp", in_features=data.x_train[0].numel(),
                             num_classes=data.num_classes)
    if name == "resnet20":
        return models.create("resnet20", in_channels=data.input_shape[0],
                             num_classes=data.num_classes)
    return models.create(name, input_shape=data.input_shape, num_classes=data.num_classes)


class Trainee:
    """One method with its own model copy, optimiser, generator and epoch counter."""

    def __init__(self, method: Method, initial: nn.Module, config: TrainingConfig) -> None:
        self.method = method
        model = copy.deepcopy(initial)
        optimizer = method.make_optimizer(model, torch.optim.SGD, lr=config.learning_rate,
                                          momentum=config.momentum,
                                          weight_decay=config.weight_decay)
        self.ctx = TrainingContext(model=model, loss_fn=nn.functional.cross_entropy,
                                   optimizer=optimizer,
                                   generator=make_generator(config.seed, Purpose.TRAINING))
        self.epoch = FIRST_EPOCH
        self.loss = self.accuracy = float("nan")

    def run_epoch(self, data: datasets.DataSplit, batch_size: int,
                  max_batches: int | None) -> None:
        """What fit does per epoch before its test evaluation (mnist5k needs no augmentation)."""
        ctx, method = self.ctx, self.method
        ctx.model.train()
        ctx.epoch = self.epoch
        method.start_epoch(ctx, self.epoch)
        total_loss, correct, samples, norms = 0.0, 0, 0, []
        for x, y in itertools.islice(datasets.batches(data.x_train, data.y_train, batch_size,
                                                      shuffle=True, generator=ctx.generator),
                                     max_batches):
            outcome = method.step(ctx, x, y)
            ctx.step_index += 1
            total_loss += outcome.loss * len(y)
            correct += outcome.correct
            samples += len(y)
            norms.append(outcome.gradient_norm)
        self.epoch += 1
        self.loss, self.accuracy = total_loss / samples, correct / samples


def epoch_times(trainees: dict[str, Trainee], data, batch_size, max_batches, epochs,
                repeats) -> dict[str, list[float]]:
    """Seconds per epoch of each method in each repeat; the methods take turns in every repeat."""
    for trainee in trainees.values():
        trainee.run_epoch(data, batch_size, max_batches)  # warm-up
    times: dict[str, list[float]] = {label: [] for label in trainees}
    labels = list(trainees)
    for repeat in range(repeats):
        shift = repeat % len(labels)  # a different method goes first in every repeat
        for label in labels[shift:] + labels[:shift]:
            trainee = trainees[label]
            start = time.perf_counter()
            for _ in range(epochs):
                trainee.run_epoch(data, batch_size, max_batches)
            times[label].append((time.perf_counter() - start) / epochs)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("lenet5", "mlp", "resnet20"), default="lenet5")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per method and repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-batches", type=int, default=None,
                        help="time only the first N batches of every epoch")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1, see the module docstring)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 repeat of 1 epoch of 4 batches")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.quick:
        args.epochs, args.repeats, args.max_batches = 1, 1, 4
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # the initial weights; the methods' noise comes from their generators
    config = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=0.05)
    data = datasets.load("mnist5k")
    initial = build_model(args.model, data)
    trainees = {label: Trainee(method, initial, config)
                for label, (method, _) in methods().items()}
    targets = {label: target for label, (_, target) in methods().items()}
    steps = -(-len(data.y_train) // args.batch_size)
    if args.max_batches is not None:
        steps = min(steps, args.max_batches)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.model} on "
          f"{data.name} ({len(data.y_train)} training samples), batch {args.batch_size}, "
          f"{steps} steps per epoch; SGD lr {config.learning_rate} momentum {config.momentum} "
          f"weight decay {config.weight_decay}")
    print(f"epoch time without test evaluation, best and median of {args.repeats} repeats of "
          f"{args.epochs} epochs, methods interleaved; epochs indexed from {FIRST_EPOCH}")
    times = epoch_times(trainees, data, args.batch_size, args.max_batches, args.epochs,
                        args.repeats)
    best = {label: min(t) for label, t in times.items()}
    print(f"{'method':<28} {'best ms':>9} {'median ms':>10} {'ratio':>7} {'target':>7} "
          f"{'met':>4} {'last loss':>10} {'train acc':>10}")
    verdicts, rows = {}, []
    for label, trainee in trainees.items():
        ratio = best[label] / best["standard"]
        target = targets[label]
        verdict = "" if target is None else ("yes" if ratio <= target else "NO")
        verdicts[label] = (ratio, target, verdict)
        rows.append({"method": label, "best_s": best[label],
                     "median_s": statistics.median(times[label]), "ratio": ratio,
                     "target": target, "met": None if target is None else ratio <= target,
                     "loss": trainee.loss, "train_accuracy": trainee.accuracy})
        print(f"{label:<28} {1e3 * best[label]:9.1f} {1e3 * statistics.median(times[label]):10.1f}"
              f" {ratio:6.2f}x {'' if target is None else f'{target:.1f}x':>7} {verdict:>4} "
              f"{trainee.loss:10.3f} {trainee.accuracy:10.3f}")
    rho = trainees["multi-step SAM"].ctx.optimizer.param_groups[0]["rho"]
    print(f"multi-step SAM: ρ = {rho:g} in its last timed epoch "
          f"(epoch {trainees['multi-step SAM'].epoch - 1})")
    path = write_results("bench_training", {
        "model": args.model, "dataset": data.name, "training_samples": len(data.y_train),
        "batch_size": args.batch_size, "steps_per_epoch": steps, "epochs": args.epochs,
        "repeats": args.repeats, "methods": rows}, mode=run_mode(parser, args), started=started)
    print(f"wrote {path}")
    print("summary (epoch time vs standard):")
    for label, (ratio, target, verdict) in verdicts.items():
        if target is not None:
            print(f"  {label:<28} {ratio:5.2f}x <= {target:.1f}x: "
                  f"{'met' if verdict == 'yes' else 'NOT met'}")


if __name__ == "__main__":
    main()
