"""Refuse a spec whose chip instances would not fit in memory, before any training.

A sweep, a budget and the chip evaluation of a methods comparison program K chip instances of
the model and evaluate them on batches of the test set folded K times. Their memory is
estimated (:func:`analogsim.memory.estimate_memory`: the programmed state of each analog layer
per instance, plus the activations of a batch) on the spec's model, built untrained (models
are cheap to build), and one test sample; a run that would not fit is refused with the
estimate and the instances that would.
"""

from __future__ import annotations

from analogsim import models
from analogsim.conversion import convert
from analogsim.experiments.budget_spec import BudgetSpec
from analogsim.experiments.chip_spec import SweepSpec
from analogsim.experiments.methods_spec import MethodsSpec
from analogsim.experiments.spec import Spec
from analogsim.experiments.trained_models import load_data
from analogsim.memory import check_memory, estimate_memory, parse_memory
from analogsim.seeding import global_rng_seeded

#: Test samples per forward of each kind (the batch_size its evaluations use).
SWEEP_BATCH = 1024
BUDGET_BATCH = 1024
METHODS_BATCH = 256


def check_spec_memory(spec: Spec, max_memory: int | str | None = None,
                      option: str = "max_memory") -> None:
    """Refuse ``spec`` if its chip instances would need more memory than ``max_memory`` (bytes
    or a size such as ``"8GiB"``) or, without it, than the machine has available.

    Args:
        option: how the message names the limit (``--max-memory`` at the command line).

    Raises:
        ResourceError: the estimate, the limit and the instances that would fit.
        UsageError: ``max_memory`` is not a size.
    """
    limit = None if max_memory is None else parse_memory(max_memory)
    if isinstance(spec, SweepSpec):
        chip, instances, batch = spec.chip, spec.plan.instances, SWEEP_BATCH
        where = "[sweep] instances"
    elif isinstance(spec, BudgetSpec):
        chip, instances, batch = spec.chip, spec.instances, BUDGET_BATCH
        where = "[budget] instances"
    elif isinstance(spec, MethodsSpec) and spec.evaluation.chip is not None:
        chip, instances, batch = None, spec.evaluation.chip_instances, METHODS_BATCH
        where = "evaluation.chip_instances"
    else:
        return
    with global_rng_seeded(0):  # the untrained model's draws leave no trace
        model = models.create(spec.setup.model, **spec.setup.model_options)
    if chip is None:
        analog = convert(model, spec.evaluation.chip)
    else:
        analog = convert(model, chip.chip, per_layer=chip.per_layer, exclude=chip.exclude)
    test = load_data(spec.setup).x_test
    estimate = estimate_memory(analog, instances, test[:1], min(batch, len(test)))
    check_memory(estimate, f"{spec.name}: {where} = {instances}: programming and evaluating "
                 f"{instances} chip instances", limit, option)
