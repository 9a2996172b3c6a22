"""Walking-noise profiling: where in a network noise hurts, and what to do about it (S2).

This package belongs to the experiments layer of the DESIGN data flow (step 8): it measures a
model rather than simulating a chip. It implements the Walking Noise method of Borras, Klein and
Fröning (S2 in shared/METHODS.md, §9–§12):

- :mod:`~analogsim.profiling.noise_laws` — the activation-noise laws (additive,
  multiplicative, mixed) as pure functions and frozen dataclasses (§9);
- :mod:`~analogsim.profiling.noise_operator` — the ``nn.Module`` that applies a law, and its
  walking (one layer noisy) or global (every layer noisy) activation (§9–§10);
- :mod:`~analogsim.profiling.noise_placement` — inserting operators after the modules of any
  model, in the §10 order, through hooks (§10);
- :mod:`~analogsim.profiling.logistic` — the logistic of S2 Eq. 1 and its fitted form;
- :mod:`~analogsim.profiling.midpoint` — the logistic fit of accuracy against noise level that
  turns a sweep into the midpoint noise level μ of each layer (§11);
- :mod:`~analogsim.profiling.guided` — guided multi-execution: how many repetitions each noise
  operator gets from the per-layer midpoints (§12).

The operators work on any ``nn.Module``, analog or digital; nothing here imports the chip,
the tiles or the conversion.
"""

from analogsim.profiling.guided import allocate_repetitions, uniform_repetitions
from analogsim.profiling.logistic import LogisticComponent, MidpointFit, logistic
from analogsim.profiling.midpoint import fit_midpoint, nearest_half_max_sigma
from analogsim.profiling.noise_laws import AdditiveNoise, MixedNoise, MultiplicativeNoise
from analogsim.profiling.noise_operator import (
    NoiseOperator,
    activate_operators,
    reseed_operators,
    set_repetitions,
)
from analogsim.profiling.noise_placement import (
    MODEL_INPUT,
    insert_noise_operators,
    noise_sites,
    remove_noise_operators,
)

__all__ = [
    "MODEL_INPUT",
    "AdditiveNoise",
    "LogisticComponent",
    "MidpointFit",
    "MixedNoise",
    "MultiplicativeNoise",
    "NoiseOperator",
    "activate_operators",
    "allocate_repetitions",
    "fit_midpoint",
    "insert_noise_operators",
    "logistic",
    "nearest_half_max_sigma",
    "noise_sites",
    "remove_noise_operators",
    "reseed_operators",
    "set_repetitions",
    "uniform_repetitions",
]
