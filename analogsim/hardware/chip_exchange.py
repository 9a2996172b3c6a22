"""Real chips in the loop: export target conductances, evaluate on conductances read back.

A chip is anything that can program target conductances and read them back at a time t
(:class:`ChipInterface`). :class:`SimulatedChip` does it with analogsim's device physics;
a lab does it with its own array, exchanging two HDF5 files with analogsim. They are exchange
files for the lab, not results files: this module writes them (and reads them back); results
of an evaluation on read-back conductances are written by the experiment engine
(:mod:`analogsim.experiments.readback`, ``analogsim evaluate-readback``) through
:mod:`analogsim.results`.

``targets.h5`` (written by :func:`export_targets`, ``analogsim export-targets``)::

    /                       attrs: format = "analogsim-targets", format_version = 1,
                            card (the card's TOML), model, model_options (JSON)
    /layers/<layer>/        attrs: layer_index, pair ("differential" | "single"),
                            roles (one per device of a weight: "plus", "minus" | "single"),
                            coded (0/1: cells are coded weights, see analogsim.coding)
        g_target_uS         float64 (D, out, rows) target conductances in µS; for a coded
                            layer (D, 1, N): one row of N cells (copies included)
        tile_of_row         int (rows,) the physical tile row block of each row (input)
        tile_of_output      int (out,) the physical tile column block of each output
        coding_sign,        int8 / bool (out, rows), coded layers only: the reliable side
        coding_large        information (sign, small/large) the decoder uses

``readback.h5`` (written by the lab, or by :func:`simulate_readback`)::

    /                       attrs: format = "analogsim-readback", format_version = 1,
                            times_s (T,) seconds after programming of each read; the first
                            is the read right after programming
    /layers/<layer>/g_uS    float64 (T, K, D, out, rows) measured conductances in µS, K chips

:func:`evaluate_readback` loads the measured conductances into the tiles (the card's
periphery, DAC/ADC and drift compensation, still applies) and gives accuracy per read time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np
import torch
from torch import nn

from analogsim.cards import Chip, chip_from_toml
from analogsim.conversion import analog_layers, convert
from analogsim.errors import ConversionError, DataError, MissingDataFileError, require_file
from analogsim.evaluation import evaluate
from analogsim.programming import program
from analogsim.seeding import Purpose, make_generator, time_key
from analogsim.tiles import device_model
from analogsim.tiles.programmed import check_conductances, unpack_targets
from analogsim.tiles.slicing import weight_slice_count
from analogsim.units import TIME_RANGE, is_valid_time

TARGETS_FORMAT = "analogsim-targets"
READBACK_FORMAT = "analogsim-readback"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class LayerTargets:
    """The target conductances of one analog layer, as exported."""

    layer_index: int
    g_target: torch.Tensor  # (D, out, rows) µS


class ChipInterface(Protocol):
    """A chip analogsim can use: program targets once, read the conductances back at times."""

    def program(self, targets: dict[str, LayerTargets]) -> None:
        """Program every layer's target conductances (µS)."""

    def read(self, t_seconds: float) -> dict[str, torch.Tensor]:
        """Conductances (K, D, out, rows) µS of every layer, ``t_seconds`` after programming."""


class SimulatedChip:
    """analogsim's device physics behind the :class:`ChipInterface`: K chip instances of a
    card, drawn from the same streams as a programmed tile (seed, layer, instance), so a
    read-back of it evaluates exactly as the simulated tiles do.

    Args:
        chip: the card.
        seed: the programming seed.
        instances: K.
    """

    def __init__(self, chip: Chip, seed: int = 0, instances: int = 1) -> None:
        self.chip, self.seed, self.instances = chip, seed, instances
        self._programmed: dict[str, tuple[int, device_model.ProgrammedDevices]] = {}

    def program(self, targets: dict[str, LayerTargets]) -> None:
        for name, layer in targets.items():
            generators = [make_generator(self.seed, Purpose.PROGRAM, layer.layer_index, k)
                          for k in range(self.instances)]
            self._programmed[name] = (layer.layer_index, device_model.program_targets(
                self.chip, layer.g_target.float(), generators, device_model.exponent_seeds(
                    self.seed, layer.layer_index, range(self.instances))))

    def read(self, t_seconds: float) -> dict[str, torch.Tensor]:
        reads = {}
        for name, (index, devices) in self._programmed.items():
            if t_seconds == 0:
                reads[name] = devices.g_programmed.float()
                continue
            generators = [make_generator(self.seed, Purpose.DRIFT, index, k, time_key(t_seconds))
                          for k in range(self.instances)]
            reads[name] = device_model.age_devices(self.chip, devices, t_seconds, generators)
        return reads


def _programmed_copy(model: nn.Module, chip: Chip, seed: int, instances: int) -> nn.Module:
    analog = convert(model, chip)
    program(analog, seed=seed, instances=instances)
    return analog.eval()


def export_targets(model: nn.Module, chip: Chip, path: str | Path, *,
                   model_name: str = "", model_options: dict[str, Any] | None = None
                   ) -> dict[str, LayerTargets]:
    """Write the target conductances of ``model`` on ``chip`` (layout in the module docstring).

    Returns:
        layer name → its targets.

    Raises:
        ConversionError: the card slices weights (its targets have no place in the layout).
    """
    if weight_slice_count(chip) > 1:
        raise ConversionError(
            f"card {chip.name!r} slices weights (slicing.weight_slices = "
            f"{chip.slicing.weight_slices}): a targets file holds one device (pair) per weight "
            "and output; export the card without weight slicing")
    analog = _programmed_copy(model, chip, seed=0, instances=1)
    targets = {}
    with h5py.File(path, "w") as handle:
        handle.attrs.update({"format": TARGETS_FORMAT, "format_version": FORMAT_VERSION,
                             "card": chip.to_toml(), "model": model_name,
                             "model_options": json.dumps(model_options or {})})
        for name, layer in analog_layers(analog):
            tile = layer.tile
            group = handle.create_group(f"layers/{name}")
            pair = tile.chip.conductance.pair
            group.attrs.update({"layer_index": tile.layer_index, "pair": pair,
                                "roles": ["plus", "minus"] if pair == "differential"
                                else ["single"], "coded": int(tile.coded)})
            g_target = unpack_targets(tile.chip, tile.g_target_packed)  # (D, out, rows)
            group["g_target_uS"] = g_target.double().numpy()
            group["tile_of_row"] = tile.layout.tile_of_row().numpy()
            group["tile_of_output"] = tile.layout.tile_of_output().numpy()
            if tile.coded:
                group["coding_sign"] = tile.coding_sign.to(torch.int8).numpy()
                group["coding_large"] = tile.coding_large.numpy()
            targets[name] = LayerTargets(tile.layer_index, g_target)
    return targets


def read_targets(path: str | Path) -> dict[str, LayerTargets]:
    """The layers of a targets file.

    Raises:
        DataError: not an analogsim targets file.
    """
    with _open(path, TARGETS_FORMAT) as handle:
        return {name: LayerTargets(int(group.attrs["layer_index"]),
                                   torch.from_numpy(group["g_target_uS"][()]))
                for name, group in handle["layers"].items()}


def write_readback(path: str | Path, times_s: Sequence[float],
                   reads: Sequence[dict[str, torch.Tensor]]) -> None:
    """Write conductances read at ``times_s`` (one dict layer → (K, D, out, rows) µS each)."""
    with h5py.File(path, "w") as handle:
        handle.attrs.update({"format": READBACK_FORMAT, "format_version": FORMAT_VERSION,
                             "times_s": np.asarray(times_s, dtype=float)})
        for name in reads[0]:
            handle[f"layers/{name}/g_uS"] = np.stack([r[name].double().numpy() for r in reads])


def simulate_readback(targets_path: str | Path, readback_path: str | Path, chip: Chip,
                      times_s: Sequence[float], seed: int = 0, instances: int = 1) -> None:
    """Play the lab with a :class:`SimulatedChip`: program the exported targets and write
    their read-backs at ``times_s`` (the first must be 0, the read after programming)."""
    if not times_s or times_s[0] != 0:
        raise DataError(f"times_s must start with 0 (the read after programming), got "
                        f"{list(times_s)}")
    simulated = SimulatedChip(chip, seed, instances)
    simulated.program(read_targets(targets_path))
    write_readback(readback_path, times_s, [simulated.read(t) for t in times_s])


@dataclass(frozen=True)
class ReadbackEvaluation:
    """Accuracy of the model on measured conductances: accuracy[time, chip] (fractions)."""

    times_s: np.ndarray
    accuracy: np.ndarray


def evaluate_readback(model: nn.Module, chip: Chip, readback_path: str | Path,
                      test: tuple[torch.Tensor, torch.Tensor], seed: int = 0
                      ) -> ReadbackEvaluation:
    """Accuracy of ``model`` on ``chip`` with the conductances of a read-back file.

    The tiles are set up as for a simulated chip (scales, coding, periphery), then the
    measured conductances replace the simulated ones at every read time; the first read is
    the drift-compensation reference. ``seed`` seeds the periphery's per-read noise.

    Raises:
        DataError: not a read-back file, layers/shapes that do not match the model, read times
            that are not times, or conductances a chip does not give (not finite, negative,
            in siemens: :func:`~analogsim.tiles.programmed.check_conductances`, the check of
            ``fit-device``).
    """
    with _open(readback_path, READBACK_FORMAT) as handle:
        times = np.asarray(handle.attrs["times_s"], dtype=float).reshape(-1)
        reads = {name: torch.from_numpy(group["g_uS"][()])
                 for name, group in handle["layers"].items()}
    _check_reads(readback_path, times, reads)
    instances = {tensor.shape[1] for tensor in reads.values()}
    if len(instances) != 1:
        raise DataError(f"{readback_path}: layers hold different numbers of chips {instances}")
    analog = _programmed_copy(model, chip, seed=seed, instances=instances.pop())
    layers = dict(analog_layers(analog))
    if set(layers) != set(reads):
        raise DataError(f"{readback_path}: layers {sorted(reads)}; the model's analog layers "
                        f"are {sorted(layers)}")
    rows = []
    for j, t in enumerate(times):
        for name, layer in layers.items():
            layer.tile.load_measured(reads[name][j], float(t), programmed=j == 0)
        rows.append(evaluate(analog, test, seed=seed).accuracy)
    return ReadbackEvaluation(times, np.stack(rows))


def _check_reads(path: str | Path, times: np.ndarray, reads: dict[str, torch.Tensor]) -> None:
    """Refuse read times and measured conductances no chip gives, before any work."""
    if not times.size or not all(map(is_valid_time, times)):
        raise DataError(f"{path}: attribute times_s = {times.tolist()}; expected one time per "
                        f"read, each {TIME_RANGE}")
    for name, g in reads.items():
        if g.dim() != 5 or g.shape[0] != times.size:
            raise DataError(f"{path}: layers/{name}/g_uS has shape {tuple(g.shape)}; expected "
                            f"(times = {times.size}, chips, devices per weight, outputs, rows)")
        check_conductances(g, str(path), f"layers/{name}/g_uS", lambda i, shape=g.shape: (
            "read {}, chip {}, device {}, output {}, row {}".format(
                *(int(n) for n in np.unravel_index(i, shape)))))


def _open(path: str | Path, expected: str) -> h5py.File:
    path = Path(path)
    require_file(path, f"{expected} file", DataError, MissingDataFileError)
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DataError(f"{path}: not a readable HDF5 file ({error})") from None
    found, version = handle.attrs.get("format"), handle.attrs.get("format_version")
    version = None if version is None else int(version)
    if found != expected or version != FORMAT_VERSION:
        handle.close()
        raise DataError(f"{path}: format {found!r} version {version!r}; expected {expected!r} "
                        f"version {FORMAT_VERSION}")
    return handle


def chip_of_targets(path: str | Path) -> Chip:
    """The card a targets file was exported for."""
    with _open(path, TARGETS_FORMAT) as handle:
        return chip_from_toml(handle.attrs["card"], f"{path} card")
