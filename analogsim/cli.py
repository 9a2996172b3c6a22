"""The ``analogsim`` command line: one entry point whose verbs mirror the API.

Bad input (any :class:`~analogsim.errors.AnalogsimError`, a missing optional extra included) and
an ``OSError`` on a file the user named (an unwritable ``-o``, a folder given as a file) exit
with code 2 and one line on stderr; ``--debug`` shows the traceback. ``run`` resumes a results
file of the same spec, and stops after the point in flight on the first Ctrl-C (exit code 130).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from analogsim.allocator import keep_freed_memory
from analogsim.errors import AnalogsimError
from analogsim.experiments.interruption import RunInterrupted
from analogsim.units import format_duration

EXIT_BAD_INPUT = 2
EXIT_DISAGREEMENT = 1
EXIT_INTERRUPTED = 130  # the shell's code for a SIGINT


class CrosscheckDisagreement(Exception):
    """The two backends gave statistically different results."""


def _demo(args: argparse.Namespace) -> None:
    from analogsim.experiments.demo import COMPENSATION, DRIFT_TIMES_S, run_demo
    from analogsim.report import write_report

    result = run_demo(args.results, instances=args.instances, seed=args.seed,
                      progress=not args.quiet)
    index = write_report(result.results_path,
                         args.report or Path("report") / Path(args.results).stem)
    _say(args, f"digital model: {100 * result.digital_accuracy:.2f} % on the digits test set")
    _say(args, f"pcm chip, {args.instances} instances of one trained model: mean accuracy [%] "
               f"(95 % CI over {'chips' if args.instances > 1 else 'test samples'})")
    header = f"{'time':>10}" + "".join(f"{'compensation ' + m:>28}" for m in COMPENSATION)
    _say(args, header)
    from analogsim.statistics import confidence_interval

    for j, t in enumerate(DRIFT_TIMES_S):
        cells = []
        for i in range(len(COMPENSATION)):
            row = result.accuracy[i, j]
            low, high = confidence_interval(row, result.test_samples)
            cells.append(f"{100 * row.mean():>10.2f} [{100 * low:6.2f}, {100 * high:6.2f}]")
        _say(args, f"{format_duration(t):>10}" + "".join(f"{c:>28}" for c in cells))
    _say(args, f"results: {result.results_path}\nreport:  {index}")


def _devices(args: argparse.Namespace) -> None:
    from analogsim.cards import list_chips, load_chip

    rows = [("card", "device laws (programming / drift / read noise)", "g_max µS", "DAC", "ADC",
             "out noise", "compensation")]
    for name in list_chips():
        chip = load_chip(name)
        laws = f"{chip.programming.law} / {chip.drift.law} / {chip.read_noise.law}"
        rows.append((name, laws, f"{chip.conductance.g_max_uS:g}",
                     f"{chip.dac.bits} bit" if chip.dac.bits else "ideal",
                     f"{chip.adc.bits} bit" if chip.adc.bits else "ideal",
                     f"{chip.output_noise.std:g}", chip.drift_compensation.method))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def _crosscheck(args: argparse.Namespace) -> None:
    from analogsim.crosscheck import crosscheck

    device_rows, model_rows = crosscheck(args.card, instances=args.instances,
                                         devices=args.devices, seed=args.seed,
                                         aihwkit_tile=args.tile)
    _say(args, f"card {args.card!r}: native tile vs aihwkit {args.tile} tile")
    _say(args, f"\ndevices ({args.devices} per target; µS, ν dimensionless)")
    _say(args, f"{'quantity':<16}{'target':>8}{'native mean':>13}{'std':>9}"
               f"{'aihwkit mean':>14}{'std':>9}{'KS p':>9}  agrees")
    for row in device_rows:
        _say(args, f"{row.quantity:<16}{row.target_uS:>8.2f}{row.native_mean:>13.4f}"
                   f"{row.native_std:>9.4f}{row.aihwkit_mean:>14.4f}{row.aihwkit_std:>9.4f}"
                   f"{row.ks_pvalue:>9.3f}  {'yes' if row.agrees else 'NO'}")
    _say(args, f"\ndigits MLP, {args.instances} chip instances per backend: accuracy [%] "
               "(95 % CI)")
    for row in model_rows:
        (nl, nh), (al, ah) = row.native.ci95, row.aihwkit.ci95
        _say(args, f"{format_duration(row.t_seconds):>10}  native {100 * row.native.mean:6.2f} "
                   f"[{100 * nl:6.2f}, {100 * nh:6.2f}]  aihwkit {100 * row.aihwkit.mean:6.2f} "
                   f"[{100 * al:6.2f}, {100 * ah:6.2f}]  "
                   f"{'CIs overlap' if row.agrees else 'CIs DISJOINT'}")
    if not all(r.agrees for r in device_rows) or not all(r.agrees for r in model_rows):
        raise CrosscheckDisagreement(f"the backends disagree on card {args.card!r} (see above)")


def _stop_on_first_interrupt(args: argparse.Namespace) -> Callable[..., None]:
    """A SIGINT handler: the first Ctrl-C stops after the point in flight, the second aborts."""
    from analogsim.experiments.interruption import request_stop

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        request_stop()
        _say(args, "stopping after the point in flight (Ctrl-C again to abort)")

    return handler


def _run(args: argparse.Namespace) -> None:
    from analogsim.experiments.interruption import clear_stop
    from analogsim.experiments.resume import resume_summary
    from analogsim.experiments.run import run_spec
    from analogsim.experiments.spec import load_spec
    from analogsim.report import write_report

    spec = load_spec(args.spec)
    results = Path(args.output or Path("results") / f"{spec.name}.h5")
    found = resume_summary(results, spec.text)  # refuses a file another run is writing
    if found is not None:
        _say(args, f"resuming {results}: {found}")
    clear_stop()
    previous = signal.signal(signal.SIGINT, _stop_on_first_interrupt(args))
    try:
        run_spec(spec, results, progress=not args.quiet, cluster=args.cluster,
                 max_memory=args.max_memory, memory_option="--max-memory")
    finally:
        signal.signal(signal.SIGINT, previous)
    index = write_report(results, args.report or Path("report") / results.stem)
    _say(args, f"results: {results}\nreport:  {index}")


def _report(args: argparse.Namespace) -> None:
    from analogsim.report import write_report

    out = args.output or Path("report") / Path(args.file).stem
    index = write_report(args.file, out)
    _say(args, f"report: {index}")


def _fit_device(args: argparse.Namespace) -> None:
    from analogsim.experiments.device_fit_run import run_device_fit
    from analogsim.hardware import write_fit_report

    output = Path(args.output)
    results = Path(args.results or Path("results") / f"fit_{output.stem}.h5")
    fit = run_device_fit(args.measurements, output, results, name=args.name, base=args.base)
    index = write_fit_report(fit, args.report or Path("report") / f"fit_{output.stem}")
    _say(args, f"card:    {output} (fitted: {', '.join(fit.fitted_sections)})\n"
               f"results: {results}\nreport:  {index}")


def _export_targets(args: argparse.Namespace) -> None:
    from analogsim.cards import load_chip
    from analogsim.hardware.chip_exchange import export_targets
    from analogsim.hardware.model_file import load_model_file

    saved = load_model_file(args.model)
    chip = load_chip(args.card) if args.card else saved.chip
    targets = export_targets(saved.model, chip, args.output, model_name=saved.name,
                             model_options=saved.options)
    cells = sum(layer.g_target.numel() for layer in targets.values())
    _say(args, f"targets: {args.output} ({len(targets)} layers, {cells} devices, card "
               f"{chip.name})")


def _evaluate_readback(args: argparse.Namespace) -> None:
    from analogsim.experiments.readback import run_readback
    from analogsim.report import write_report

    results = Path(args.output)
    measured = run_readback(args.model, args.readback, results, card=args.card,
                            data_root=args.root, seed=args.seed)
    index = write_report(results, args.report or Path("report") / results.stem)
    for t, row in zip(measured.times_s, measured.accuracy, strict=True):
        _say(args, f"t = {format_duration(t):>10}: {100 * row.mean():.2f} % over {row.size} "
                   "chip(s)")
    _say(args, f"results: {results}\nreport:  {index}")


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="print nothing but errors")
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser = argparse.ArgumentParser(
        prog="analogsim",
        description="Simulate analog in-memory-compute chips for PyTorch models.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    demo = verbs.add_parser(
        "demo", parents=[common], help="digits MLP on a drifting PCM chip",
        description="Train a digits MLP, put it on 32 PCM chip instances, and show accuracy "
                    "over a year of drift with and without drift compensation.",
        epilog="example: analogsim demo --instances 16",
    )
    demo.add_argument("--instances", type=int, default=32, help="chip instances (default 32)")
    demo.add_argument("--seed", type=int, default=0, help="seed of data split, training, chips")
    demo.add_argument("--results", default="results/demo.h5", help="HDF5 results file")
    demo.add_argument("--report", help="report folder (default report/<results file stem>: "
                                       "report/demo)")
    demo.set_defaults(run=_demo)

    devices = verbs.add_parser("devices", parents=[common], help="list the device cards",
                               description="A table of the shipped device cards.",
                               epilog="example: analogsim devices")
    devices.set_defaults(run=_devices)

    run = verbs.add_parser(
        "run", parents=[common], help="run an experiment spec (TOML)",
        description="Train and evaluate what a spec declares; write an HDF5 results file and "
                    "its report (report/<results file stem>). Run again, an interrupted run "
                    "resumes: finished points are kept and trainings continue from their "
                    "checkpoints. The first Ctrl-C stops after the point in flight.",
        epilog="examples: analogsim run benchmarks/reproduce/s0_noise_aware_sam.toml; "
               "analogsim run benchmarks/reproduce/sweep_digits_pcm.toml --cluster local:2",
    )
    run.add_argument("spec", help="a .toml experiment spec")
    run.add_argument("-o", "--output", help="results file (default results/<name>.h5); a "
                                            "file another run is writing is refused")
    run.add_argument("--report", help="report folder (default report/<results file stem>, "
                                      "the folder `analogsim report` draws it to: "
                                      "report/<name>, or report/X for -o X.h5)")
    run.add_argument("--cluster", metavar="ADDRESS",
                     help="evaluate a sweep's points on Dask: local, local:N (N worker "
                          "processes) or tcp://host:8786 (a running dask scheduler)")
    run.add_argument("--max-memory", metavar="SIZE",
                     help="most memory the chip instances may take, e.g. 8GiB or 512MB "
                          "(default: what the machine has available); checked before training")
    run.set_defaults(run=_run)

    check = verbs.add_parser(
        "crosscheck", parents=[common], help="compare a card on the native and aihwkit tiles",
        description="Run the same device card on analogsim's tile and on IBM aihwkit's "
                    "(device statistics and a digits MLP over chip instances) and print both. "
                    "Exits with 1 if they disagree.",
        epilog="example: analogsim crosscheck pcm --tile torch",
    )
    check.add_argument("card", help="a shipped card name or a .toml path")
    check.add_argument("--tile", choices=("cpp", "torch"), default="cpp",
                       help="aihwkit tile kind (default cpp)")
    check.add_argument("--instances", type=int, default=32, help="chip instances per backend")
    check.add_argument("--devices", type=int, default=10_000, help="devices per target")
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(run=_crosscheck)

    fit = verbs.add_parser(
        "fit-device", parents=[common], help="fit a device card to measurements",
        description="Fit programming noise, drift, read noise, stuck devices and levels to a "
                    "measurement file (CSV or HDF5; layout in analogsim.hardware."
                    "measurements) and write a card with the fitted numbers and a fit report.",
        epilog="example: analogsim fit-device docs/measurements/pcm_2000.h5 -o mypcm.toml",
    )
    fit.add_argument("measurements", help="a .csv or .h5 measurement file")
    fit.add_argument("-o", "--output", default="device.toml", help="the card to write")
    fit.add_argument("--name", help="the card's name (default: the measurement file's stem)")
    fit.add_argument("--results", help="results file (default results/fit_<card file stem>.h5)")
    fit.add_argument("--base", default="pcm",
                     help="card for everything not fitted (default pcm)")
    fit.add_argument("--report", help="fit report folder (default report/fit_<card>)")
    fit.set_defaults(run=_fit_device)

    export = verbs.add_parser(
        "export-targets", parents=[common], help="write a model's target conductances",
        description="Write the per-tile target conductances (µS) of a model file on its card, "
                    "for a lab to program a real array (layout: analogsim.hardware."
                    "chip_exchange).",
        epilog="example: analogsim export-targets model.pt -o targets.h5",
    )
    export.add_argument("model", help="an analogsim model file (save_model_file)")
    export.add_argument("-o", "--output", default="targets.h5", help="targets file (.h5)")
    export.add_argument("--card", help="another card than the model file's")
    export.set_defaults(run=_export_targets)

    readback = verbs.add_parser(
        "evaluate-readback", parents=[common], help="evaluate a model on measured conductances",
        description="Load conductances read back from a chip (one or more times after "
                    "programming) into the tiles and evaluate the model with the card's "
                    "periphery; write a results file and its report.",
        epilog="example: analogsim evaluate-readback model.pt readback.h5 -o results/lab.h5",
    )
    readback.add_argument("model", help="the analogsim model file the targets came from")
    readback.add_argument("readback", help="the read-back file (.h5)")
    readback.add_argument("-o", "--output", default="results/readback.h5", help="results file")
    readback.add_argument("--report", help="report folder (default report/<results stem>)")
    readback.add_argument("--card", help="another card than the model file's")
    readback.add_argument("--root", help="folder of the data set's files, if it needs them")
    readback.add_argument("--seed", type=int, default=0, help="seed of the periphery's noise")
    readback.set_defaults(run=_evaluate_readback)

    report = verbs.add_parser(
        "report", parents=[common], help="draw a results file as PNGs and index.html",
        description="Re-draw the report of a results file, from the file alone.",
        epilog="example: analogsim report results/demo.h5 -o report/demo",
    )
    report.add_argument("file", help="an analogsim .h5 results file")
    report.add_argument("-o", "--output", help="report folder (default report/<file stem>)")
    report.set_defaults(run=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.debug else logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("MPLBACKEND", "Agg")
    keep_freed_memory()  # forwards allocate the same tensors over and over: keep their pages
    try:
        args.run(args)
    except RunInterrupted as interrupted:
        print(f"analogsim {args.verb}: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CrosscheckDisagreement as disagreement:
        print(f"analogsim {args.verb}: {disagreement}", file=sys.stderr)
        return EXIT_DISAGREEMENT
    except (AnalogsimError, OSError) as error:  # bad input, or a file that cannot be used
        if args.debug:
            raise
        print(f"analogsim {args.verb}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _one_line(error: Exception) -> str:
    """The error's message on one line; an OS error's as ``cannot use 'out.h5': Is a
    directory`` when it names its file."""
    if isinstance(error, OSError) and not isinstance(error, AnalogsimError) and error.filename:
        return f"cannot use {str(error.filename)!r}: {error.strerror or error}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
