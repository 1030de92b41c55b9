"""Uncertainty weighting with torch parameters (the framework route of the method)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

_FACTORS = {"regression": 0.5, "classification": 1.0}


class UncertaintyWeightingLoss(torch.nn.Module):
    r"""Kendall et al.'s uncertainty-weighted total loss with learnable log-variances.

    .. math::

        \mathcal L = \sum_i c_i e^{-s_i} L_i + \tfrac12 s_i,\qquad s_i = \log\sigma_i^2,

    with :math:`c_i = 1/2` for regression and 1 for classification tasks (Kendall, Gal
    & Cipolla, CVPR 2018, eqs. 7 and 10). Add this module's parameters to the
    optimiser; its gradient in s is :math:`-c_i e^{-s_i} L_i + 1/2`, the same as
    :class:`paretomtl.weighting.UncertaintyWeighting`'s framework-free update (the
    tests check that one SGD step of each agrees).

    Example:
        >>> import torch
        >>> from paretomtl.adapters.torch import UncertaintyWeightingLoss
        >>> uw = UncertaintyWeightingLoss(2, task_types=("regression", "classification"))
        >>> total = uw([torch.tensor(2.0), torch.tensor(1.0)])  # s = 0: 0.5 * 2 + 1 * 1
        >>> float(total.detach())
        2.0
    """

    def __init__(
        self,
        num_tasks: int,
        task_types: str | Sequence[str] = "regression",
        initial_log_variances: float = 0.0,
    ) -> None:
        super().__init__()
        types = [task_types] * num_tasks if isinstance(task_types, str) else list(task_types)
        if len(types) != num_tasks or any(t not in _FACTORS for t in types):
            raise ValueError(
                f"task_types must be 'regression' or 'classification', one per task "
                f"({num_tasks}); got {task_types!r}"
            )
        self.register_buffer(
            "factors", torch.tensor([_FACTORS[t] for t in types], dtype=torch.float64)
        )
        self.log_variances = torch.nn.Parameter(
            torch.full((num_tasks,), float(initial_log_variances), dtype=torch.float64)
        )

    def weights(self) -> torch.Tensor:
        """The current loss weights :math:`c_i e^{-s_i}` (detached)."""
        return (self.factors * torch.exp(-self.log_variances)).detach()

    def forward(self, losses: Sequence[torch.Tensor]) -> torch.Tensor:
        L = torch.stack([loss.reshape(()) for loss in losses])
        s = self.log_variances.to(L.dtype)
        c = self.factors.to(L.dtype)
        return (c * torch.exp(-s) * L + 0.5 * s).sum()
