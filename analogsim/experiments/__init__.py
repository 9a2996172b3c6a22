"""Experiments declared in TOML specs and run by ``analogsim run SPEC``.

Data flow: :mod:`.spec` reads and validates a spec (data, never code) into dataclasses; a
runner trains and evaluates what it declares and writes every point to one HDF5 results file
(the spec's TOML in ``/config``), which ``analogsim report`` draws.

- :mod:`.spec` — the spec format and its validation.
- :mod:`.methods_comparison` — kind ``methods``: train a model with several methods and
  seeds, then evaluate each under a Gaussian weight attack and on a simulated chip.
- :mod:`.demo` — the demo (``analogsim demo``): a digits MLP on drifting PCM chips.
- :mod:`.readback` — a model on conductances read back from a chip
  (``analogsim evaluate-readback``).

The engine and :mod:`analogsim.results` are the only writers of results files; training
reports its epochs to the engine through a callback (:mod:`.trained_models`).
"""
