"""Specs of kind ``walking_noise``: where in a network activation noise hurts (S2).

::

    [experiment]
    name = "s2_mnist5k_mlp"
    kind = "walking_noise"

    [data]  /  [model]  /  [training]   # as for every spec; seeds = one model each

    [noise]                             # the operator of METHODS.md §9
    law = "additive"                    # additive | multiplicative | mixed
    parametrisation = "amplitude"       # mixed only: "amplitude" (σ = A, σ_add = A·r,
    ratio = 0.5                         #   σ_mul = A·(1 − r)) or "direct" (σ = σ_add,
    sigma_mul = 0.1                     #   σ_mul fixed)
    multiplicative_first = true         # mixed only: the order of the two perturbations
    grad_mode = "sampled"               # or "ste"
    in_training = false                 # also train with the noise (S2 Table 1), one model
                                        #   per (site, σ, seed); false: inference only
    in_eval = true                      # noisy when measured; false with in_training: the
                                        #   noise only regularises, accuracy is clean
    skip_batchnorm = false              # no operators after BatchNorm ("-NN" models)
    normalize_to_input_size = false

    [walking]
    sigmas = { logspace = [-2, 2, 17] } # the σ grid, or a list
    global = true                       # every operator noisy at once
    layerwise = true                    # one operator noisy at a time (walking noise)
    sites = [0, 1, 4]                   # optional: operator indices or module names

    [fit]                               # the midpoint fit of METHODS.md §11
    x_space = "linear"                  # or "log10"
    fix_amin = false
    components = 1                      # 2: stacked logistics for a plateau
    dy_floor = 1e-3

    [guided]                            # optional: guided vs uniform multi-execution (§12)
    sigma = 0.35                        # global additive σ, or "global_midpoint"
    budget = 2                          # total repetitions n_t = budget × operators
    repeats = 10                        # noisy evaluations per model and allocation
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analogsim.errors import SpecError
from analogsim.experiments.spec_fields import (
    ModelSetup,
    check_keys,
    is_number,
    model_setup,
    number_list,
    positive_int,
    table,
)
from analogsim.profiling.logistic import X_SPACES
from analogsim.profiling.noise_operator import GRAD_MODES

LAWS = ("additive", "multiplicative", "mixed")
GLOBAL_MIDPOINT = "global_midpoint"


@dataclass(frozen=True)
class NoiseSpec:
    """The activation-noise operator: its law and switches (METHODS.md §9)."""

    law: str = "additive"
    parametrisation: str = "amplitude"
    ratio: float = 0.5
    sigma_mul: float = 0.0
    multiplicative_first: bool = True
    grad_mode: str = "sampled"
    in_training: bool = False
    in_eval: bool = True
    skip_batchnorm: bool = False
    normalize_to_input_size: bool = False


@dataclass(frozen=True)
class FitSpec:
    """Options of :func:`~analogsim.profiling.fit_midpoint`."""

    x_space: str = "linear"
    fix_amin: bool = False
    components: int = 1
    dy_floor: float = 1e-3


@dataclass(frozen=True)
class GuidedSpec:
    """Guided against uniform multi-execution at the same total of repetitions (§12)."""

    sigma: float | str
    budget: int
    repeats: int


@dataclass(frozen=True)
class WalkingNoiseSpec:
    """A validated spec of kind ``walking_noise``."""

    name: str
    description: str
    setup: ModelSetup
    noise: NoiseSpec
    sigmas: tuple[float, ...]
    global_noise: bool
    layerwise: bool
    sites: tuple[int | str, ...] | None
    fit: FitSpec
    guided: GuidedSpec | None
    text: str


def _flag(section: dict[str, Any], key: str, default: bool, where: str) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise SpecError(f"{where}.{key} must be true or false, got {value!r}")
    return value


def _choice(section: dict[str, Any], key: str, options: tuple[str, ...], where: str) -> str:
    value = section.get(key, options[0])
    if value not in options:
        raise SpecError(f"{where}.{key} must be one of {list(options)}, got {value!r}")
    return value


def _noise(section: dict[str, Any], where: str) -> NoiseSpec:
    check_keys(section, {"law", "parametrisation", "ratio", "sigma_mul",
                         "multiplicative_first", "grad_mode", "in_training", "in_eval",
                         "skip_batchnorm", "normalize_to_input_size"}, where)
    for key, low, high in (("ratio", 0.0, 1.0), ("sigma_mul", 0.0, float("inf"))):
        value = section.get(key, 0.5 if key == "ratio" else 0.0)
        if not is_number(value) or not low <= value <= high:
            raise SpecError(f"{where}.{key} must be a number in [{low}, {high}], got {value!r}")
    return NoiseSpec(
        law=_choice(section, "law", LAWS, where),
        parametrisation=_choice(section, "parametrisation", ("amplitude", "direct"), where),
        ratio=float(section.get("ratio", 0.5)), sigma_mul=float(section.get("sigma_mul", 0.0)),
        multiplicative_first=_flag(section, "multiplicative_first", True, where),
        grad_mode=_choice(section, "grad_mode", GRAD_MODES, where),
        in_training=_flag(section, "in_training", False, where),
        in_eval=_flag(section, "in_eval", True, where),
        skip_batchnorm=_flag(section, "skip_batchnorm", False, where),
        normalize_to_input_size=_flag(section, "normalize_to_input_size", False, where))


def _fit(section: dict[str, Any], where: str) -> FitSpec:
    check_keys(section, {"x_space", "fix_amin", "components", "dy_floor"}, where)
    components = section.get("components", 1)
    if components not in (1, 2) or isinstance(components, bool):
        raise SpecError(f"{where}.components must be 1 or 2, got {components!r}")
    dy_floor = section.get("dy_floor", 1e-3)
    if not is_number(dy_floor) or not dy_floor > 0:
        raise SpecError(f"{where}.dy_floor must be a number > 0, got {dy_floor!r}")
    return FitSpec(x_space=_choice(section, "x_space", X_SPACES, where),
                   fix_amin=_flag(section, "fix_amin", False, where), components=components,
                   dy_floor=float(dy_floor))


def _guided(section: dict[str, Any], where: str, noise: NoiseSpec, global_noise: bool,
            layerwise: bool) -> GuidedSpec | None:
    if not section:
        return None
    check_keys(section, {"sigma", "budget", "repeats"}, where)
    if noise.in_training:
        raise SpecError(f"{where}: guided multi-execution uses models trained without noise "
                        "(S2 Table 3); set noise.in_training = false")
    if not layerwise:
        raise SpecError(f"{where}: the guided allocation needs the per-layer midpoints; set "
                        "walking.layerwise = true")
    sigma = section.get("sigma")
    if sigma == GLOBAL_MIDPOINT:
        if not global_noise:
            raise SpecError(f"{where}.sigma = {GLOBAL_MIDPOINT!r} needs walking.global = true")
    elif not is_number(sigma) or not sigma > 0:
        raise SpecError(f"{where}.sigma must be a number > 0 or {GLOBAL_MIDPOINT!r}, got "
                        f"{sigma!r}")
    return GuidedSpec(sigma=sigma if isinstance(sigma, str) else float(sigma),
                      budget=positive_int(section.get("budget", 2), f"{where}.budget"),
                      repeats=positive_int(section.get("repeats", 10), f"{where}.repeats"))


def parse_walking_spec(data: dict[str, Any], text: str, source: str) -> WalkingNoiseSpec:
    """Validate the TOML of a spec of kind ``walking_noise`` (already parsed into ``data``)."""
    check_keys(data, {"experiment", "data", "model", "training", "noise", "walking", "fit",
                      "guided"}, source)
    experiment = table(data, "experiment", source)
    setup = model_setup(data, source)
    noise = _noise(table(data, "noise", source, required=False), f"{source}: noise")
    if not (noise.in_training or noise.in_eval):
        raise SpecError(f"{source}: noise.in_training and noise.in_eval are both false: the "
                        "operators would never be noisy")
    if noise.in_training and setup.training is None:
        raise SpecError(f"{source}: noise.in_training = true trains models: give [training], "
                        "not model.checkpoint")
    walking = table(data, "walking", source)
    where = f"{source}: walking"
    check_keys(walking, {"sigmas", "global", "layerwise", "sites"}, where)
    if "sigmas" not in walking:
        raise SpecError(f"{where}: give the σ grid, e.g. sigmas = {{ logspace = [-2, 2, 17] }}")
    sigmas = number_list(walking["sigmas"], f"{where}.sigmas")
    if any(s < 0 for s in sigmas):
        raise SpecError(f"{where}.sigmas must be ≥ 0, got {list(sigmas)}")
    global_noise = _flag(walking, "global", True, where)
    layerwise = _flag(walking, "layerwise", True, where)
    if not (global_noise or layerwise):
        raise SpecError(f"{where}: global and layerwise are both false; nothing to measure")
    sites = walking.get("sites")
    if sites is not None and (not isinstance(sites, list) or not sites or not all(
            isinstance(s, str) or (isinstance(s, int) and not isinstance(s, bool) and s >= 0)
            for s in sites)):
        raise SpecError(f"{where}.sites must be a list of operator indices or module names, "
                        f"got {sites!r}")
    return WalkingNoiseSpec(
        name=str(experiment.get("name", Path(source).stem)),
        description=str(experiment.get("description", "")), setup=setup, noise=noise,
        sigmas=sigmas, global_noise=global_noise, layerwise=layerwise,
        sites=None if sites is None else tuple(sites),
        fit=_fit(table(data, "fit", source, required=False), f"{source}: fit"),
        guided=_guided(table(data, "guided", source, required=False), f"{source}: guided",
                       noise, global_noise, layerwise),
        text=text)
