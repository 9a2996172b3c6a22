"""Experiment specs: TOML files, validated into frozen dataclasses by kind.

``[experiment] kind`` says which experiment a spec declares; each kind has its own module:

- ``methods`` (:mod:`.methods_spec`): train with several robust-training methods and seeds,
  evaluate under weight attack and on a chip (S0, S1);
- ``sweep`` (:mod:`.chip_spec`): a model over a grid of card fields × drift times × chip
  instances;
- ``walking_noise`` (:mod:`.walking_spec`): global and layer-wise activation-noise sweeps,
  midpoint fits and guided multi-execution (S2);
- ``budget`` (:mod:`.budget_spec`): the per-layer noise budget of a model on a card.

Any kind may also state ``[[claims]]``: what a reproduction expects, each with the test that
decides it (:mod:`analogsim.claims`). They are checked here, before the run, stored with the
spec's text, and judged from the results afterwards; the run itself does not read them.

Specs are data, never code. Every error names the key, the value and what was expected.
"""

from __future__ import annotations

from pathlib import Path

from analogsim.claims import parse_claims
from analogsim.errors import SpecError
from analogsim.experiments.budget_spec import BudgetSpec, parse_budget_spec
from analogsim.experiments.chip_spec import SweepSpec, parse_sweep_spec
from analogsim.experiments.methods_spec import MethodsSpec, parse_methods_spec
from analogsim.experiments.spec_fields import read_toml, table
from analogsim.experiments.walking_spec import WalkingNoiseSpec, parse_walking_spec

Spec = MethodsSpec | SweepSpec | WalkingNoiseSpec | BudgetSpec

_PARSERS = {
    "methods": parse_methods_spec,
    "sweep": parse_sweep_spec,
    "walking_noise": parse_walking_spec,
    "budget": parse_budget_spec,
}
SPEC_KINDS = tuple(_PARSERS)


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file of any kind.

    Raises:
        SpecError: naming the key, the value and what was expected.
        CardError: a card the spec names is invalid.
    """
    text, data = read_toml(path)
    source = str(path)
    experiment = table(data, "experiment", source)
    kind = experiment.get("kind")
    if kind not in _PARSERS:
        raise SpecError(f"{source}: experiment.kind must be one of {list(SPEC_KINDS)}, got "
                        f"{kind!r}")
    allowed = {"name", "kind", "description"}
    unknown = sorted(set(experiment) - allowed)
    if unknown:
        raise SpecError(f"{source}: [experiment]: unknown key {unknown[0]!r}; expected one of "
                        f"{sorted(allowed)}")
    parse_claims(data.pop("claims", []), source)  # a malformed claim fails before the run
    return _PARSERS[kind](data, text, source)
