"""``run_spec``: run an experiment of any kind into one HDF5 results file."""

from __future__ import annotations

from pathlib import Path

from analogsim.experiments.budget_run import run_budget
from analogsim.experiments.budget_spec import BudgetSpec
from analogsim.experiments.chip_spec import SweepSpec
from analogsim.experiments.methods_comparison import run_methods_comparison
from analogsim.experiments.methods_spec import MethodsSpec
from analogsim.experiments.spec import Spec
from analogsim.experiments.sweep_run import run_sweep
from analogsim.experiments.walking_noise import run_walking_noise
from analogsim.experiments.walking_spec import WalkingNoiseSpec


def run_spec(spec: Spec, results_path: str | Path, progress: bool = False) -> Path:
    """Run what ``spec`` declares and write ``results_path``; returns it."""
    runners = {MethodsSpec: run_methods_comparison, SweepSpec: run_sweep,
               WalkingNoiseSpec: run_walking_noise, BudgetSpec: run_budget}
    return runners[type(spec)](spec, results_path, progress=progress)
