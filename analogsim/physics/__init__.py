"""Device and periphery physics: pure functions on tensors.

This is where the formulas of shared/METHODS.md live, each beside its source. Functions take
numbers and tensors (never cards) and an explicit ``torch.Generator`` where they draw; none holds
state. Conductances are in µS, times in seconds, and "normalised" quantities are in units of the
device range (conductance) or of a full-scale device current (tile outputs).

- :mod:`.conductance` — weight ↔ conductance mapping, finite levels, stuck-at faults.
- :mod:`.programming` — one-shot programming error (polynomial and Gaussian laws).
- :mod:`.pcm` — PCM drift exponents, power-law drift, accumulated 1/f read noise.
- :mod:`.rram` — RRAM conductance relaxation.
- :mod:`.periphery` — DAC/ADC quantisation, per-read noise in output space, drift compensation.
- :mod:`.energy` — energy, time and area of one MVM on a tile (the card's ``[cost]``).
- :mod:`.ir_drop` — wire resistance of a crossbar: first-order model and exact nodal solve.
"""
