"""Training: one trainer (:func:`fit`) and the robust-training methods it runs.

Data flow: a model (digital, or converted onto tiles for hardware-aware training) and a
:class:`~analogsim.datasets.DataSplit` go into :func:`fit` with a :class:`Method` and a
:class:`TrainingConfig`; each epoch's :class:`EpochMetrics` go to the caller's ``on_epoch``
callback and to a checkpoint. Training writes no results file: the experiment engine does,
from the callback.

- :mod:`.methods` — Standard, NoiseAware (S0), Sharpness (SAM/ASAM/multi-step), RWP.
- :mod:`.sam` — the SAM optimiser.
- :mod:`.schedules` — constant, ramped and staircase σ/ρ schedules.
- :mod:`.perturbation` — which weights get noise and how σ scales; the Gaussian attack.
- :mod:`.trainer` — the loop, the per-epoch metrics and checkpoints.
"""

from analogsim.train.methods import Method as Method
from analogsim.train.methods import NoiseAware as NoiseAware
from analogsim.train.methods import RandomWeightPerturbation as RandomWeightPerturbation
from analogsim.train.methods import Sharpness as Sharpness
from analogsim.train.methods import Standard as Standard
from analogsim.train.schedules import Constant as Constant
from analogsim.train.schedules import Ramp as Ramp
from analogsim.train.schedules import Staircase as Staircase
from analogsim.train.trainer import EpochMetrics as EpochMetrics
from analogsim.train.trainer import TrainingConfig as TrainingConfig
from analogsim.train.trainer import fit as fit
