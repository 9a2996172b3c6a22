"""``run_spec``: run an experiment of any kind into one HDF5 results file."""

from __future__ import annotations

from pathlib import Path

from analogsim.experiments.budget_run import run_budget
from analogsim.experiments.budget_spec import BudgetSpec
from analogsim.experiments.chip_spec import SweepSpec
from analogsim.experiments.cluster import ClusterError
from analogsim.experiments.memory_check import check_spec_memory
from analogsim.experiments.methods_comparison import run_methods_comparison
from analogsim.experiments.methods_spec import MethodsSpec
from analogsim.experiments.spec import Spec
from analogsim.experiments.sweep_run import run_sweep
from analogsim.experiments.walking_noise import run_walking_noise
from analogsim.experiments.walking_spec import WalkingNoiseSpec


def run_spec(spec: Spec, results_path: str | Path, progress: bool = False,
             cluster: str | None = None, max_memory: int | str | None = None,
             memory_option: str = "max_memory") -> Path:
    """Run what ``spec`` declares and write ``results_path``; returns it.

    Args:
        cluster: a Dask cluster for the points of a sweep (``local``, ``local:N``,
            ``tcp://host:port``); None runs everything in this process.
        max_memory: the most memory the chip instances may take (bytes or ``"8GiB"``);
            default: what the machine has available. Checked before any training.
        memory_option: how a refusal names that limit (``--max-memory`` for the CLI).

    Raises:
        ClusterError: a cluster for a kind other than ``sweep``, or an unusable address.
        ResourceError: the chip instances would not fit
            (:func:`~analogsim.experiments.memory_check.check_spec_memory`).
    """
    check_spec_memory(spec, max_memory, memory_option)
    if isinstance(spec, SweepSpec):
        return run_sweep(spec, results_path, progress=progress, cluster=cluster)
    if cluster is not None:
        raise ClusterError(f"--cluster distributes the points of kind 'sweep'; spec "
                           f"{spec.name!r} is of another kind and runs in this process")
    runners = {MethodsSpec: run_methods_comparison, WalkingNoiseSpec: run_walking_noise,
               BudgetSpec: run_budget}
    return runners[type(spec)](spec, results_path, progress=progress)
