"""``instances_folded``: how a model programmed with K chip instances takes its inputs.

:func:`analogsim.program` with ``instances=K`` puts K chips in every analog layer; one forward
then evaluates all of them at once, on inputs with the instances folded into the batch
dimension, instance-major: rows ``k·B … (k+1)·B − 1`` of a (K·B, ...) batch go through chip k.
That layout is explicit: with K > 1, a forward outside this context manager raises
:class:`~analogsim.errors.StateError`, so a user's ordinary ``model(x)`` is never spread across
chips by accident. :func:`analogsim.evaluate` (and through it the experiment engine) folds its
batches and runs inside it; call it yourself to run folded batches by hand::

    asim.program(amodel, seed=0, instances=4)
    with asim.instances_folded(amodel):
        logits = amodel(x.repeat(4, 1))            # (4·B, classes): chip k is rows k·B…
    per_chip = logits.reshape(4, len(x), -1)

With K = 1 no context is needed. The flag lives on each tile of the model (no process-wide
state) and is restored on exit, also when the body raises; contexts nest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from analogsim.backends.base import BackendModel
from analogsim.errors import ArgumentTypeError
from analogsim.tiles import AnalogTile


@contextmanager
def instances_folded(model: nn.Module) -> Iterator[nn.Module]:
    """Inside, ``model``'s analog layers take (K·B, ...) inputs, instance-major.

    Args:
        model: a converted model (native or aihwkit), programmed or not.

    Yields:
        ``model`` itself.

    Raises:
        ArgumentTypeError: ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"instances_folded() takes a torch nn.Module; got "
                                f"{type(model).__name__}")
    holders = [m for m in model.modules() if isinstance(m, AnalogTile | BackendModel)]
    previous = [holder.instances_folded for holder in holders]
    for holder in holders:
        holder.instances_folded = True
    try:
        yield model
    finally:
        for holder, value in zip(holders, previous, strict=True):
            holder.instances_folded = value
