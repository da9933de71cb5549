"""ASAM: adaptive sharpness-aware minimisation (Kwon et al., ICML 2021) around any base optimizer.

One step takes two gradients. ``first_step`` moves the weights to the adversarial point
``w + e`` with ``e = rho * T_w^2 g / ||T_w g||`` and ``T_w = diag(|w| + eta)``; the caller then
recomputes the loss and gradient there; ``second_step`` puts the weights back to ``w`` and lets
the base optimizer step with that second gradient.

BatchNorm running statistics: the second forward pass would update them a second time, at the
perturbed weights. Run it inside :func:`frozen_bn_stats` (momentum 0) so each step updates them
once, from the unperturbed pass, as plain Adam would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class ASAM:
    """Wraps ``base`` (e.g. Adam); call ``first_step``, recompute gradients, then ``second_step``."""

    def __init__(self, base: torch.optim.Optimizer, rho: float = 0.05, eta: float = 0.01) -> None:
        if rho < 0 or eta < 0:
            raise ValueError(f"rho and eta must be >= 0, got rho={rho}, eta={eta}")
        self.base, self.rho, self.eta = base, rho, eta
        self._perturbations: dict[torch.Tensor, torch.Tensor] = {}

    @property
    def param_groups(self) -> list[dict]:
        return self.base.param_groups

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.base.param_groups for p in group["params"] if p.grad is not None]

    @torch.no_grad()
    def first_step(self) -> None:
        """Perturb every weight with a gradient by ``rho * T_w^2 g / ||T_w g||``."""
        params = self._params()
        scaled = [(p.abs() + self.eta) * p.grad for p in params]  # T_w g
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s) for s in scaled])) + 1e-12
        for p, s in zip(params, scaled):
            e = (p.abs() + self.eta) * s * (self.rho / norm)
            p.add_(e)
            self._perturbations[p] = e

    @torch.no_grad()
    def second_step(self) -> None:
        """Restore the weights and step the base optimizer with the gradient taken at ``w + e``."""
        for p, e in self._perturbations.items():
            p.sub_(e)
        self._perturbations.clear()
        self.base.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return self.base.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.base.load_state_dict(state)


@contextlib.contextmanager
def frozen_bn_stats(model: nn.Module) -> Iterator[None]:
    """Inside, BatchNorm layers normalise with batch statistics but leave their running stats alone."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None) for m in layers]
    for m in layers:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(layers, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
