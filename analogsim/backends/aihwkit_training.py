"""On-chip training through IBM aihwkit's pulsed devices: the "RRAM tile" path of the design card.

The native tiles and :mod:`.aihwkit_backend` program weights that were trained elsewhere. Here
the weights are trained *in memory*: every layer sits on an aihwkit tile of pulsed devices
(by default ``ReRamSBPreset``, a soft-bounds RRAM fit to Gong et al., Nat. Commun. 9:2102
(2018)), the forward and backward passes run through the tile's periphery, and
:class:`aihwkit.optim.AnalogSGD` writes each update as stochastic pulse trains, one rank-1
update per sample, into devices with finite, noisy, state-dependent steps.

A device card (:mod:`analogsim.cards`) describes a device for one-shot programming and has no
field for a training preset, so the preset is named by the caller: ``preset="ReRamSBPreset"``
or any other pulsed training preset of ``aihwkit.simulator.presets``
(:func:`list_training_presets`). The preset brings its own device, update and periphery
parameters; none of the card's numbers apply (the ``rram`` card's Wan 2022 relaxation model is
a different RRAM fit).

This module and :mod:`.aihwkit_backend` are the only modules of analogsim that import aihwkit.

Example::

    result = train_in_memory(model, x_train, y_train, epochs=40, batch_size=8,
                             learning_rate=0.1, seed=0)
    print(result.losses[-1], result.accuracy(x_test, y_test))
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from analogsim.errors import ConversionError, MissingExtraError, ShapeError, UsageError
from analogsim.seeding import Purpose, derive_seed, global_rng_seeded, make_generator
from analogsim.tiles import AnalogLayer

try:
    import aihwkit.simulator.presets as aihwkit_presets
    from aihwkit.nn.conversion import convert_to_analog
    from aihwkit.nn.modules.base import AnalogLayerBase
    from aihwkit.optim import AnalogSGD
    from aihwkit.simulator.configs import (
        DigitalRankUpdateRPUConfig,
        SingleRPUConfig,
        UnitCellRPUConfig,
    )
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError(
        f"in-memory training needs aihwkit 1.2.0, which cannot be imported ({error}); "
        "`make aihwkit` builds and installs it (`make test` installs every extra)"
    ) from error

log = logging.getLogger(__name__)

LrSchedule = Literal["constant", "linear"]

# The rpu_configs whose weights AnalogSGD trains with pulsed updates: one device per weight,
# a unit cell of several devices (Tiki-Taka, TTv2, AGAD, ...), or mixed precision. The
# inference configs (InferenceRPUConfig and its presets) carry `device` and `update` fields
# too, but their weights are trained digitally, so the class decides, not the fields alone.
_TRAINING_CONFIGS = (SingleRPUConfig, UnitCellRPUConfig, DigitalRankUpdateRPUConfig)
_WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class AihwkitPresetError(ConversionError):
    """A preset name that is not a pulsed training preset of ``aihwkit.simulator.presets``."""


class InMemoryTrainingError(UsageError):
    """An in-memory training request with a bad argument, or a run that diverged (a learning
    rate too large for the preset)."""


def _is_training_preset(obj: object) -> bool:
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        return False
    names = {field.name for field in dataclasses.fields(obj)}
    return issubclass(obj, _TRAINING_CONFIGS) and {"device", "update"} <= names


def list_training_presets() -> list[str]:
    """The names :func:`pulsed_rpu_config` accepts: aihwkit's pulsed training presets, sorted."""
    return sorted(name for name, obj in vars(aihwkit_presets).items()
                  if not name.startswith("_") and _is_training_preset(obj))


def pulsed_rpu_config(preset: str = "ReRamSBPreset"):
    """A fresh aihwkit rpu_config of the pulsed training preset called ``preset``.

    Args:
        preset: a class name from ``aihwkit.simulator.presets`` that configures pulsed
            training (a ``SingleRPUConfig``, ``UnitCellRPUConfig`` or
            ``DigitalRankUpdateRPUConfig``, with ``device`` and ``update`` fields); see
            :func:`list_training_presets`.

    Raises:
        AihwkitPresetError: ``preset`` is not such a name (the message lists the known ones).
    """
    known = list_training_presets()
    if not isinstance(preset, str):
        raise AihwkitPresetError(
            f"preset must be the name (str) of an aihwkit training preset, got {preset!r}; "
            f"expected one of {', '.join(known)}"
        )
    found = getattr(aihwkit_presets, preset, None) if not preset.startswith("_") else None
    if not isinstance(found, type):
        close = difflib.get_close_matches(preset, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise AihwkitPresetError(
            f"unknown aihwkit preset {preset!r}{hint}; expected one of {', '.join(known)}"
        )
    if not _is_training_preset(found):
        kind = found.__mro__[1].__name__
        raise AihwkitPresetError(
            f"aihwkit preset {preset!r} (a {kind}) does not configure pulsed training: "
            f"its weights are not updated by device pulses; expected one of {', '.join(known)}"
        )
    return found()


@dataclass(frozen=True, eq=False)
class InMemoryTrainingResult:
    """What :func:`train_in_memory` returns.

    Attributes:
        model: the trained aihwkit model (in evaluation mode); its weights are the devices'
            conductances after the last pulse, read through the preset's forward periphery.
        losses: the mean training loss of each epoch.
        preset: the aihwkit preset the tiles were built from.
        learning_rate: the initial learning rate of AnalogSGD.
    """

    model: nn.Module
    losses: tuple[float, ...]
    preset: str
    learning_rate: float

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1024) -> float:
        """Top-1 accuracy (fraction correct) of the trained tiles on (x, y).

        Inference reads the trained devices as they are: no programming step and no
        programming noise (this is the pulsed-training path). The preset's forward periphery
        (DAC, ADC, output noise) is on; its noise comes from aihwkit's clock-seeded C++ RNG,
        so repeated calls differ slightly.
        """
        _check_data(x, y)
        _check_positive_int("batch_size", batch_size)
        self.model.eval()
        correct = 0
        for start in range(0, x.shape[0], batch_size):
            logits = self.model(x[start : start + batch_size])  # (B, classes)
            correct += int((logits.argmax(dim=1) == y[start : start + batch_size]).sum())
        return correct / x.shape[0]


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InMemoryTrainingError(f"{name} must be a positive integer, got {value!r}")


def _check_data(x: torch.Tensor, y: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ShapeError(f"x and y must be tensors, got {type(x).__name__} and "
                         f"{type(y).__name__}")
    if y.dtype != torch.int64 or y.dim() != 1 or x.dim() < 2 or x.shape[0] != y.shape[0]:
        raise ShapeError(
            f"x is {x.dtype} of shape {tuple(x.shape)} and y is {y.dtype} of shape "
            f"{tuple(y.shape)}; expected x (N, ...) and y (N,) int64 class indices, N ≥ 1"
        )
    if y.shape[0] == 0:
        raise ShapeError("x and y hold no samples; expected N ≥ 1")


def _check_arguments(epochs: object, batch_size: object, learning_rate: object, seed: object,
                     lr_schedule: object) -> None:
    _check_positive_int("epochs", epochs)
    _check_positive_int("batch_size", batch_size)
    if (isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float)
            or not math.isfinite(learning_rate) or learning_rate <= 0):
        raise InMemoryTrainingError(
            f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InMemoryTrainingError(f"seed must be a non-negative integer, got {seed!r}")
    if lr_schedule not in ("constant", "linear"):
        raise InMemoryTrainingError(
            f"lr_schedule must be 'constant' or 'linear', got {lr_schedule!r}")


def _convert(model: nn.Module, preset: str) -> nn.Module:
    """``model`` on tiles of ``preset``; refuses layers aihwkit would silently leave digital."""
    native = [name for name, module in model.named_modules() if isinstance(module, AnalogLayer)]
    if native:
        raise ConversionError(
            f"model holds analogsim analog layers ({', '.join(native)}); in-memory training "
            "starts from a digital model: pass analogsim.to_digital(model)"
        )
    # convert_to_analog deep-copies (inplace=False): `model` is untouched.
    analog = convert_to_analog(model, pulsed_rpu_config(preset))
    # aihwkit converts exact nn.Linear / nn.ConvNd classes only; a subclass would stay digital
    # and train with plain SGD while the result claimed in-memory training.
    digital = [name or "<root>" for name, module in analog.named_modules()
               if isinstance(module, _WEIGHT_LAYERS) and not isinstance(module, AnalogLayerBase)]
    if digital:
        raise ConversionError(
            f"aihwkit cannot put {', '.join(digital)} on tiles (it converts exact nn.Linear "
            "and nn.Conv1d/2d/3d classes, not subclasses); expected every weight layer to be "
            "one of those classes"
        )
    if not any(True for _ in analog.analog_tiles()):
        raise ConversionError(
            f"model {type(model).__name__} has no nn.Linear or nn.Conv1d/2d/3d layer; "
            "expected at least one to train in memory"
        )
    return analog


def train_in_memory(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    preset: str = "ReRamSBPreset",
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    lr_schedule: LrSchedule = "linear",
    progress: bool = False,
) -> InMemoryTrainingResult:
    """Train a copy of ``model`` in memory, on aihwkit tiles of pulsed devices, with AnalogSGD.

    A deep copy of ``model`` (digital, e.g. freshly initialised) is converted with
    ``aihwkit.nn.conversion.convert_to_analog`` onto tiles of the preset's devices; its
    weights are written into the devices (with the preset's write noise) and then trained by
    ``AnalogSGD`` on the cross-entropy loss: each sample of a batch becomes a stochastic pulse
    train into the devices, whose steps are finite, noisy and shrink towards the bounds. Biases
    stay digital (the presets' ``mapping.digital_bias``) and are trained by plain SGD at the
    same learning rate. ``model`` itself is left as it is.

    Randomness: batches are shuffled by a generator derived from (``seed``, TRAINING); torch's
    global RNG is used inside ``torch.random.fork_rng`` seeded from (``seed``, TRAINING, 1), so
    the caller's RNG state is left untouched. The pulse trains, the cycle-to-cycle and write
    noise, the device-to-device variation and the periphery noise are drawn by aihwkit's C++
    RNG, which is seeded from the clock and cannot be seeded from Python in aihwkit 1.2.0: two
    runs with the same ``seed`` give different models and accuracies. (The presets'
    ``construction_seed`` would fix the device-to-device maps, but every equally sized tile of
    a split layer would then get the same map, so it is left at 0.)

    Args:
        model: a digital model whose weight layers are ``nn.Linear`` / ``nn.Conv1d/2d/3d``.
        x: (N, ...) training inputs.
        y: (N,) int64 class indices.
        preset: a name from :func:`list_training_presets` (the design card names no preset).
        epochs: passes over (x, y).
        batch_size: samples per AnalogSGD step. The loss is the batch mean, so each sample's
            pulsed update scales with ``learning_rate / batch_size``.
        learning_rate: AnalogSGD's learning rate (dimensionless; aihwkit's examples use
            0.01-0.1).
        seed: the user seed the shuffling and torch-RNG streams are derived from.
        lr_schedule: ``"linear"`` decays the rate to ``learning_rate / epochs`` in the last
            epoch (epoch e uses ``learning_rate · (1 − e / epochs)``), which lets the noisy
            pulsed updates settle; ``"constant"`` keeps it.
        progress: show a tqdm bar over the epochs.

    Returns:
        :class:`InMemoryTrainingResult` with the trained aihwkit model (evaluation mode), the
        per-epoch losses and :meth:`~InMemoryTrainingResult.accuracy`.

    Raises:
        AihwkitPresetError: ``preset`` is not a pulsed training preset.
        ConversionError: the model has no weight layer, a weight layer aihwkit would leave
            digital, or analogsim analog layers.
        InMemoryTrainingError: a bad argument, or a loss that stopped being finite.
        ShapeError: x and y do not match.
    """
    _check_arguments(epochs, batch_size, learning_rate, seed, lr_schedule)
    _check_data(x, y)
    pulsed_rpu_config(preset)  # validate before any work
    generator = make_generator(seed, Purpose.TRAINING)
    loss_fn = nn.CrossEntropyLoss()
    log.info("in-memory training on aihwkit %s: %d epochs, batch %d, learning rate %g (%s)",
             preset, epochs, batch_size, learning_rate, lr_schedule)
    losses: list[float] = []
    with global_rng_seeded(derive_seed(seed, Purpose.TRAINING, 1)):
        analog = _convert(model, preset)
        optimizer = AnalogSGD(analog.parameters(), lr=learning_rate)
        optimizer.regroup_param_groups(analog)  # one group per tile, as aihwkit's examples do
        analog.train()
        for epoch in tqdm(range(epochs), desc="train in memory", disable=not progress,
                          leave=False):
            rate = learning_rate * (1 - epoch / epochs if lr_schedule == "linear" else 1.0)
            optimizer.set_learning_rate(rate)  # param groups and tiles alike
            order = torch.randperm(x.shape[0], generator=generator)
            total = 0.0
            for start in range(0, x.shape[0], batch_size):
                index = order[start : start + batch_size]
                optimizer.zero_grad()
                loss = loss_fn(analog(x[index]), y[index])
                loss.backward()
                optimizer.step()
                total += loss.item() * index.numel()
            losses.append(total / x.shape[0])
            log.debug("epoch %d: learning rate %.4g, loss %.4f", epoch, rate, losses[-1])
            if not math.isfinite(losses[-1]):
                raise InMemoryTrainingError(
                    f"the training loss of epoch {epoch} is {losses[-1]}; expected a finite "
                    f"loss (learning_rate={learning_rate!r} may be too large)"
                )
    analog.eval()
    log.info("in-memory training done: loss %.4f after %d epochs", losses[-1], epochs)
    return InMemoryTrainingResult(model=analog, losses=tuple(losses), preset=preset,
                                  learning_rate=float(learning_rate))
