"""Sharpness-aware minimisation as a ``torch.optim.Optimizer`` (Foret et al. 2021).

Per mini-batch (METHODS.md §3, following davda54/sam): with g = ∇L(w),
ε = ρ · T² ⊙ g / (‖T ⊙ g‖₂ + 1e-12), the norm taken over every parameter with a gradient in
every group; ``first_step`` moves to w + ε (saving w), a second forward/backward at w + ε
gives g', and ``second_step`` restores w exactly and lets the base optimiser step with g'.

T is 1 for SAM. Adaptive SAM (§4) has two published forms, both available:

- ``adaptive=True, eta=0.0, weight_only=False``: T = |w| for every parameter (davda54);
- ``adaptive=True, eta=0.01, weight_only=True``: T = |w| + η for parameters whose name
  contains "weight", 1 for the rest (Kwon et al., SamsungLabs asam.py).

ρ lives in each ``param_group["rho"]``, so schedules write it there; learning-rate schedulers
act on ``optimizer.base_optimizer``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from analogsim.errors import UsageError


class SAM(torch.optim.Optimizer):
    """SAM / ASAM around a base optimiser.

    Args:
        named_params: (name, parameter) pairs, e.g. ``model.named_parameters()``.
        base_optimizer: the optimiser class, e.g. ``torch.optim.SGD``.
        rho: neighbourhood radius ρ (S0 uses 0.5; davda54's default 0.05).
        adaptive, eta, weight_only: the ASAM variants above.
        **kwargs: the base optimiser's arguments (lr, momentum, weight_decay, ...).
    """

    def __init__(
        self,
        named_params: Iterable[tuple[str, torch.nn.Parameter]],
        base_optimizer: Callable[..., torch.optim.Optimizer],
        rho: float = 0.05,
        adaptive: bool = False,
        eta: float = 0.0,
        weight_only: bool = False,
        **kwargs: Any,
    ) -> None:
        if rho < 0:
            raise UsageError(f"The 'rho' of SAM must be ≥ 0; got {rho!r}.")
        if eta < 0:
            raise UsageError(f"The 'eta' of SAM must be ≥ 0; got {eta!r}.")
        named = [(n, p) for n, p in named_params if p.requires_grad]
        self._adaptive_ids = {id(p) for n, p in named if not weight_only or "weight" in n}
        defaults = dict(rho=rho, adaptive=adaptive, eta=eta, **kwargs)
        super().__init__([p for _, p in named], defaults)
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    def _scale(self, p: torch.Tensor, group: dict[str, Any]) -> torch.Tensor | float:
        """T of this parameter."""
        if group["adaptive"] and id(p) in self._adaptive_ids:
            return p.detach().abs() + group["eta"]
        return 1.0

    @torch.no_grad()
    def gradient_norm(self) -> torch.Tensor:
        """‖T ⊙ g‖₂ over every parameter with a gradient."""
        norms = [(self._scale(p, group) * p.grad).norm(p=2)
                 for group in self.param_groups for p in group["params"] if p.grad is not None]
        return torch.norm(torch.stack(norms), p=2) if norms else torch.zeros(())

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Climb to w + ε (the worst point of the ρ-ball, to first order)."""
        norm = self.gradient_norm()
        for group in self.param_groups:
            factor = group["rho"] / (norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.detach().clone()
                scale = self._scale(p, group)
                p.add_(p.grad * (scale * scale if isinstance(scale, torch.Tensor) else 1.0)
                       * factor)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Back to w exactly, then the base optimiser's step with the gradient taken at w + ε."""
        for group in self.param_groups:
            for p in group["params"]:
                if "old_p" in self.state[p]:
                    p.copy_(self.state[p].pop("old_p"))
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> None:
        """Both steps; ``closure`` must run a full forward/backward and return the loss."""
        if closure is None:
            raise UsageError("SAM.step needs a closure that recomputes the loss and gradients; "
                             "got closure=None")
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            closure()
        self.second_step()

    def state_dict(self) -> dict[str, Any]:
        """The base optimiser's state (momenta) and the groups, ρ included."""
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups
