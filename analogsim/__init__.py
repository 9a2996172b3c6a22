"""analogsim: PyTorch models on simulated analog in-memory-compute chips.

The verbs a user learns::

    import analogsim as asim
    chip = asim.load_chip("pcm")                 # or a path to a .toml card
    amodel = asim.convert(model, chip)           # nn.Module in, analog nn.Module out
    print(asim.summary(amodel))                  # what sits on tiles, what stays digital
    asim.program(amodel, seed=0, instances=16)   # one-shot programming of 16 chip instances
    asim.drift(amodel, t_seconds=3600)           # age all instances to 1 h
    result = asim.evaluate(amodel, (x, y))       # accuracy per instance, mean, CI
    with asim.instances_folded(amodel):          # by hand: inputs (K·B, ...), instance-major
        logits = amodel(x.repeat(16, 1))
    print(asim.cost(amodel, x[:1]))              # energy, latency, area (cards with [cost])
    model2 = asim.to_digital(amodel)
    results = asim.load_results("results/run.h5")

Analog layers can also be built directly, shaped like their torch counterparts::

    layer = asim.AnalogConv2d(3, 16, 3, padding=1, chip="pcm")

Every error a user can cause is an :class:`AnalogsimError` (and the matching builtin).
"""

from analogsim.calibration import calibrate as calibrate
from analogsim.cards import Chip as Chip
from analogsim.cards import list_chips as list_chips
from analogsim.cards import load_chip as load_chip
from analogsim.conversion import convert as convert
from analogsim.conversion import to_digital as to_digital
from analogsim.cost import cost as cost
from analogsim.errors import AnalogsimError as AnalogsimError
from analogsim.evaluation import Evaluation as Evaluation
from analogsim.evaluation import evaluate as evaluate
from analogsim.instances import instances_folded as instances_folded
from analogsim.model_summary import summary as summary
from analogsim.programming import drift as drift
from analogsim.programming import program as program
from analogsim.results import Results as Results
from analogsim.results import load_results as load_results
from analogsim.tiles import AnalogConv1d as AnalogConv1d
from analogsim.tiles import AnalogConv2d as AnalogConv2d
from analogsim.tiles import AnalogConv3d as AnalogConv3d
from analogsim.tiles import AnalogLayer as AnalogLayer
from analogsim.tiles import AnalogLinear as AnalogLinear

__version__ = "0.1.0"
