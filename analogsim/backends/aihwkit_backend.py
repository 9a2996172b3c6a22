"""IBM aihwkit as a second backend: the same device card on aihwkit's inference tiles.

This is the only module of analogsim that imports aihwkit (an optional extra). A card maps
onto an ``InferenceRPUConfig`` (aihwkit's C++ tile) or a ``TorchInferenceRPUConfig`` (its
pure-torch tile):

==============================  ==============================================================
card                            aihwkit
==============================  ==============================================================
conductance g_max/g_min, pair   ``SinglePairConductanceConverter(g_max, g_min)`` (pairs only)
programming polynomial          ``PCMLikeNoiseModel.prog_coeff`` (3 coefficients) or
                                ``ReRamWan2022NoiseModel`` (with drift ``rram_relaxation``)
drift pcm_power_law             ``PCMLikeNoiseModel`` (its ν law is fixed: the card's must
                                equal aihwkit's numbers), ``t_0``, ``drift_scale``
read_noise pcm_1_over_f         ``PCMLikeNoiseModel`` (fixed Q_s law), ``t_read``,
                                ``read_noise_scale``
per_read_noise additive         ``forward.w_noise`` with ``WeightNoiseType.ADDITIVE_CONSTANT``
                                (C++ tile only), σ·√devices·gain per weight
dac / adc                       ``forward.inp_res/inp_bound`` / ``out_res/out_bound``
                                (res = 1/(2^bits − 2))
dac.input_scaling               ``noise_management`` ABS_MAX / NONE (``calibrated`` refused)
output_noise                    ``forward.out_noise``
mapping                         ``max_input_size``/``max_output_size``,
                                ``weight_scaling_omega = 1`` (columnwise for "column")
drift_compensation              ``GlobalDriftCompensation`` / ``PerColumnDriftCompensation``
==============================  ==============================================================

Bound management is off (``BoundManagementType.NONE``): analogsim's ADC clips. Anything a card
asks for that aihwkit cannot do raises :class:`AihwkitMappingError` naming the field.

aihwkit tiles hold one chip instance each, so K instances are K deep copies of the converted
model, programmed and drifted one by one. aihwkit draws programming and drift noise from
torch's global generator; each draw here runs inside ``torch.random.fork_rng`` seeded from the
same derived seeds as the native tile's streams, so runs are reproducible and the caller's
global RNG is left alone. The C++ tile's per-MVM noise comes from its own generator, seeded
from the clock (aihwkit 1.2.0 exposes no seed): with that tile, output noise is not
reproducible; with the torch tile it is.
"""

from __future__ import annotations

import copy
import logging
from typing import Literal

import torch
from torch import nn

from analogsim.backends.base import BackendModel
from analogsim.cards import (
    Chip,
    Coding,
    NoDrift,
    NoReadNoise,
    PcmOneOverFReadNoise,
    PcmPowerLawDrift,
    PolynomialProgrammingNoise,
    RramRelaxation,
    Slicing,
)
from analogsim.errors import ConversionError, MissingExtraError, ShapeError, StateError
from analogsim.seeding import Purpose, derive_seed, global_rng_seeded, time_key
from analogsim.tiles import device_model

try:
    from aihwkit.inference.compensation.drift import (
        GlobalDriftCompensation,
        PerColumnDriftCompensation,
    )
    from aihwkit.inference.converter.conductance import SinglePairConductanceConverter
    from aihwkit.inference.noise.pcm import PCMLikeNoiseModel
    from aihwkit.inference.noise.reram import ReRamWan2022NoiseModel
    from aihwkit.nn.conversion import convert_to_analog
    from aihwkit.simulator.configs import InferenceRPUConfig, TorchInferenceRPUConfig
    from aihwkit.simulator.parameters.enums import (
        BoundManagementType,
        NoiseManagementType,
        WeightNoiseType,
    )
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError(
        f"the aihwkit backend needs aihwkit 1.2.0, which cannot be imported ({error}); "
        "`make aihwkit` builds and installs it (`make test` installs every extra)"
    ) from error

log = logging.getLogger(__name__)

TileKind = Literal["cpp", "torch"]

# aihwkit's PCMLikeNoiseModel hard-codes these laws; a card must state the same numbers.
_AIHWKIT_PCM_DRIFT = PcmPowerLawDrift()
_AIHWKIT_PCM_READ = PcmOneOverFReadNoise()
_FIXED_DRIFT_FIELDS = ("mean_slope", "mean_offset", "mean_min", "mean_max", "std_slope",
                       "std_offset", "std_min", "std_max", "g_rel_min")
_FIXED_READ_FIELDS = ("q_coefficient", "q_exponent", "q_floor", "q_max")


class AihwkitMappingError(ConversionError):
    """A card field that aihwkit's inference tiles cannot represent."""


def _refuse(field: str, value: object, reason: str) -> None:
    raise AihwkitMappingError(f"the aihwkit backend cannot map {field} = {value!r}: {reason}")


def _require_aihwkit_constants(section: str, law: object, fixed: object,
                               fields: tuple[str, ...]) -> None:
    """Refuse a card law whose constants differ from the ones aihwkit hard-codes."""
    for name in fields:
        if getattr(law, name) != getattr(fixed, name):
            _refuse(f"{section}.{name}", getattr(law, name),
                    f"aihwkit fixes it at {getattr(fixed, name)}")


def _noise_model(chip: Chip):
    cond = chip.conductance
    converter = SinglePairConductanceConverter(g_max=cond.g_max_uS, g_min=cond.g_min_uS)
    programming, drift, read = chip.programming, chip.drift, chip.read_noise
    if isinstance(drift, RramRelaxation):
        if not isinstance(programming, PolynomialProgrammingNoise) or (
                tuple(programming.coefficients_uS) != tuple(drift.coefficients_uS[0])):
            _refuse("programming", programming, "aihwkit's ReRamWan2022NoiseModel programs with "
                    "the first relaxation polynomial; set programming.coefficients_uS to "
                    "drift.coefficients_uS[0]")
        if programming.scale != drift.scale:
            _refuse("programming.scale", programming.scale, "ReRamWan2022NoiseModel has one "
                    f"noise_scale; it must equal drift.scale ({drift.scale})")
        if not isinstance(read, NoReadNoise):
            _refuse("read_noise.law", read.law, "ReRamWan2022NoiseModel has no read noise")
        if drift.reference_g_max_uS != cond.g_max_uS:
            _refuse("drift.reference_g_max_uS", drift.reference_g_max_uS, "aihwkit 1.2.0 ignores "
                    "the reference g_max of ReRamWan2022NoiseModel; it must equal g_max_uS")
        coefficients = {t: list(c) for t, c in zip(drift.times_s, drift.coefficients_uS,
                                                   strict=True)}
        return ReRamWan2022NoiseModel(coeff_dic=coefficients, g_converter=converter,
                                      g_max=cond.g_max_uS, noise_scale=drift.scale)
    if not isinstance(programming, PolynomialProgrammingNoise):
        _refuse("programming.law", programming.law, "aihwkit's PCMLikeNoiseModel needs a "
                "polynomial programming law")
    if len(programming.coefficients_uS) != 3:
        _refuse("programming.coefficients_uS", programming.coefficients_uS,
                "PCMLikeNoiseModel takes exactly 3 coefficients")
    if not isinstance(drift, PcmPowerLawDrift | NoDrift):
        _refuse("drift.law", drift.law, "PCMLikeNoiseModel drifts by the PCM power law")
    drift_scale, t0 = 0.0, _AIHWKIT_PCM_DRIFT.t0_s
    if isinstance(drift, PcmPowerLawDrift):
        _require_aihwkit_constants("drift", drift, _AIHWKIT_PCM_DRIFT, _FIXED_DRIFT_FIELDS)
        drift_scale, t0 = drift.scale, drift.t0_s
    read_scale, t_read = 0.0, _AIHWKIT_PCM_READ.t_read_s
    if isinstance(read, PcmOneOverFReadNoise):
        _require_aihwkit_constants("read_noise", read, _AIHWKIT_PCM_READ, _FIXED_READ_FIELDS)
        read_scale, t_read = read.scale, read.t_read_s
    model = PCMLikeNoiseModel(
        prog_coeff=list(programming.coefficients_uS), g_converter=converter, g_max=cond.g_max_uS,
        t_read=t_read, t_0=t0, prog_noise_scale=programming.scale,
        read_noise_scale=read_scale, drift_scale=drift_scale,
    )
    # aihwkit 1.2.0 loses prog_coeff_g_max_reference whenever prog_coeff is given; set it.
    model.prog_coeff_g_max_reference = programming.reference_g_max_uS
    return model


def rpu_config(chip: Chip, tile: TileKind = "cpp"):
    """The aihwkit rpu_config that simulates ``chip`` on aihwkit's C++ or torch inference tile.

    Raises:
        AihwkitMappingError: naming the first card field aihwkit cannot represent.
    """
    if tile not in ("cpp", "torch"):
        raise AihwkitMappingError(f"tile must be 'cpp' or 'torch', got {tile!r}")
    cond = chip.conductance
    if chip.coding != Coding():
        _refuse("coding", chip.coding, "weight coding is a mapping of analogsim's native tile")
    if cond.pair != "differential":
        _refuse("conductance.pair", cond.pair, "aihwkit's converters for these noise models "
                "use a differential pair")
    if cond.levels is not None:
        _refuse("conductance.levels", cond.levels, "aihwkit's inference noise models have no "
                "finite conductance levels")
    if chip.faults.stuck_low_fraction or chip.faults.stuck_high_fraction:
        _refuse("faults", chip.faults, "aihwkit's inference noise models have no stuck devices")
    if chip.wires is not None and chip.wires.segment_resistance_ohm:
        _refuse("wires.segment_resistance_ohm", chip.wires.segment_resistance_ohm, "aihwkit's "
                "IR-drop models (ir_drop, ir_drop_rs) are other models than analogsim's")
    if chip.slicing is not None and chip.slicing != Slicing():
        _refuse("slicing", chip.slicing, "aihwkit's inference tiles apply inputs in one cycle "
                "and weights on one pair")
    if chip.per_read_noise.multiplicative_std:
        _refuse("per_read_noise.multiplicative_std", chip.per_read_noise.multiplicative_std,
                "aihwkit has no conductance-proportional output-referred noise of this form")
    if chip.dac.input_scaling == "calibrated":
        _refuse("dac.input_scaling", "calibrated", "analogsim.calibrate sets the ranges of the "
                "native tiles; use input_scaling 'abs_max' or 'none', or backend='native'")
    comp = chip.drift_compensation
    if comp.readout != "identity":
        _refuse("drift_compensation.readout", comp.readout, "aihwkit reads out with one-hot "
                "vectors")
    if comp.method != "none" and not comp.readout_noise:
        _refuse("drift_compensation.readout_noise", False, "aihwkit's read-out passes the noisy "
                "forward")
    config = (InferenceRPUConfig if tile == "cpp" else TorchInferenceRPUConfig)()
    config.noise_model = _noise_model(chip)
    config.drift_compensation = {"none": None, "global": GlobalDriftCompensation(),
                                 "per_column": PerColumnDriftCompensation()}[comp.method]
    forward = config.forward
    dac, adc = chip.dac, chip.adc
    unbounded = 1e9  # no converter: analogsim neither rounds nor clips
    forward.inp_res = 1.0 / (2**dac.bits - 2) if dac.bits is not None else -1.0
    forward.inp_bound = dac.bound if dac.bits is not None else unbounded
    forward.out_res = 1.0 / (2**adc.bits - 2) if adc.bits is not None else -1.0
    forward.out_bound = adc.bound if adc.bits is not None else unbounded
    forward.out_noise = chip.output_noise.std
    forward.bound_management = BoundManagementType.NONE
    forward.noise_management = (NoiseManagementType.ABS_MAX if dac.input_scaling == "abs_max"
                                else NoiseManagementType.NONE)
    additive = chip.per_read_noise.additive_std
    if additive:
        if tile == "torch":
            _refuse("per_read_noise.additive_std", additive, "aihwkit's torch tile has no "
                    "forward weight noise (forward.w_noise); use tile='cpp'")
        forward.w_noise = device_model.additive_per_read_variance(chip) ** 0.5
        forward.w_noise_type = WeightNoiseType.ADDITIVE_CONSTANT
    mapping = config.mapping
    mapping.max_input_size = chip.mapping.tile_rows
    mapping.max_output_size = chip.mapping.tile_cols
    mapping.weight_scaling_omega = 1.0
    mapping.weight_scaling_columnwise = chip.mapping.weight_scaling == "column"
    mapping.digital_bias = True
    mapping.learn_out_scaling = False
    return config


class AihwkitModel(nn.Module, BackendModel):
    """A model converted onto aihwkit tiles, holding K programmed chip instances.

    Built by ``analogsim.convert(model, chip, backend="aihwkit")``; the verbs ``program``,
    ``drift`` and ``evaluate`` work on it as on a native model. Inputs with K programmed
    instances are folded into the batch, instance-major, as for the native tiles (with K > 1
    only inside :func:`analogsim.instances_folded`).
    """

    def __init__(self, model: nn.Module, chip: Chip, tile: TileKind = "cpp") -> None:
        super().__init__()
        self.chip = chip
        self.tile_kind = tile
        self.template = convert_to_analog(copy.deepcopy(model), rpu_config(chip, tile))
        self.chips = nn.ModuleList()
        self.instance_ids: list[int] = []
        self.seed = 0
        self._forward_seed = 0
        self._forward_calls = 0

    @property
    def instances(self) -> int:
        return len(self.instance_ids)

    @torch.no_grad()
    def program(self, seed: int, instance_ids: list[int]) -> None:
        """Program one deep copy of the converted model per instance (aihwkit draws)."""
        self.seed = seed
        self.instance_ids = list(instance_ids)
        self.chips = nn.ModuleList()
        for k in instance_ids:
            instance = copy.deepcopy(self.template).eval()
            with global_rng_seeded(derive_seed(seed, Purpose.PROGRAM, 0, k)):
                instance.program_analog_weights()
            self.chips.append(instance)
        self.reseed_forward_noise(seed)

    @torch.no_grad()
    def drift(self, t_seconds: float) -> None:
        """Drift every instance to ``t_seconds`` (aihwkit starts from the programmed state)."""
        for k, instance in zip(self.instance_ids, self.chips, strict=True):
            instance.eval()  # aihwkit drifts only in evaluation mode
            with global_rng_seeded(derive_seed(self.seed, Purpose.DRIFT, 0, k,
                                               time_key(t_seconds))):
                instance.drift_analog_weights(t_seconds)

    def reseed_forward_noise(self, seed: int) -> None:
        """Restart the per-forward noise streams (torch tile; the C++ tile has its own RNG)."""
        self._forward_seed = seed
        self._forward_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.chips or self.training:
            return self.template(x)
        if not self.instances_folded and self.instances > 1:
            raise StateError(
                f"this aihwkit model is programmed with {self.instances} chip instances and a "
                "plain forward would spread the batch across them; use analogsim.evaluate("
                "model, data), or call the model inside `with analogsim.instances_folded("
                "model):` on inputs (K·B, ...) instance-major, or program with instances=1")
        if x.shape[0] % self.instances:
            raise ShapeError(f"a model programmed with {self.instances} chip instances takes "
                             f"inputs (K·B, ...); got a batch of {x.shape[0]}, not a multiple "
                             f"of {self.instances}")
        self._forward_calls += 1
        outputs = []
        for k, block, instance in zip(self.instance_ids, x.chunk(self.instances), self.chips,
                                      strict=True):
            with global_rng_seeded(derive_seed(self._forward_seed, Purpose.FORWARD, k,
                                     self._forward_calls)):
                outputs.append(instance(block))
        return torch.cat(outputs)


def convert_with_aihwkit(model: nn.Module, chip: Chip, tile: TileKind = "cpp") -> AihwkitModel:
    """``model`` on aihwkit inference tiles simulating ``chip`` (see :class:`AihwkitModel`)."""
    return AihwkitModel(model, chip, tile)


# ------------------------------------------------------------------- device-level sampling


def sample_devices(
    chip: Chip, g_target: torch.Tensor, times_s: list[float], seed: int
) -> dict[str, torch.Tensor]:
    """aihwkit's noise model for ``chip`` applied to target conductances (µS).

    Uses the card's aihwkit noise model directly on a flat tensor of targets, so the device
    statistics of the two backends can be compared on the same targets.

    Returns:
        ``{"programmed": g_prog, "t=<t>": g(t) for each t}``, plus ``"drift_exponents"`` for
        a PCM card.
    """
    model = _noise_model(chip)
    with global_rng_seeded(seed):
        programmed = model.apply_programming_noise_to_conductance(g_target.clone())
        coefficients = model.generate_drift_coefficients(g_target.clone())
        samples = {"programmed": programmed}
        if isinstance(model, PCMLikeNoiseModel):
            samples["drift_exponents"] = coefficients
        for t in times_s:
            samples[f"t={t:g}"] = model.apply_drift_noise_to_conductance(
                programmed.clone(), coefficients, t)
    return samples
