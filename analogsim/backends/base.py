"""The interface a backend's converted model offers to the chip-instance verbs."""

from __future__ import annotations

from abc import ABC, abstractmethod


class BackendModel(ABC):
    """A converted model of another backend that holds its own chip instances.

    ``analogsim.program`` / ``drift`` / ``evaluate`` call these methods instead of walking
    native analog layers.
    """

    #: With K > 1 instances, inputs are (K·B, ...) instance-major; set on the model by
    #: :func:`analogsim.instances_folded`, a plain forward refuses them.
    instances_folded = False

    @property
    @abstractmethod
    def instances(self) -> int:
        """K, the programmed chip instances (0 before programming)."""

    @abstractmethod
    def program(self, seed: int, instance_ids: list[int]) -> None:
        """Program the instances ``instance_ids`` from streams derived from ``seed``."""

    @abstractmethod
    def drift(self, t_seconds: float) -> None:
        """Age every instance to ``t_seconds`` after programming."""

    @abstractmethod
    def reseed_forward_noise(self, seed: int) -> None:
        """Restart the per-forward noise streams from ``seed``."""
