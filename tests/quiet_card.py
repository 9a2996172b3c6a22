"""The pcm card with every non-ideality switched off; each test switches on what it checks."""

from __future__ import annotations

import analogsim as asim

QUIET = {
    "dac_bits": None,
    "adc_bits": None,
    "dac_input_scaling": "none",
    "output_noise_std": 0.0,
    "programming_law": "none",
    "drift_law": "none",
    "read_noise_law": "none",
    "drift_compensation_method": "none",
}


def quiet_chip(**overrides: object) -> asim.Chip:
    """The quiet pcm card with ``overrides`` (card override names) on top."""
    return asim.load_chip("pcm", **{**QUIET, **overrides})
