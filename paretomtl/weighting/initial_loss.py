"""Initial-loss normalisation: divide each task's loss by its value at the start."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_task_vector, check_count
from paretomtl.state import array, count, value
from paretomtl.weighting._base import SU_2022, LossWeighting
from paretomtl.weighting._registry import register


@register(
    "initial-loss",
    kind="loss",
    paper=SU_2022,
    summary="w_i = 1 / L_i(init): each loss measured in units of its initial value",
)
class InitialLossNormalization(LossWeighting):
    r"""Initial-loss normalisation: :math:`w_i = 1 / L_i^{(\mathrm{init})}`.

    Losses of different tasks have different units (a cross-entropy in nats, a
    squared error in metres squared); dividing each by its initial value makes them
    dimensionless (Su, "Multi-task learning: loss normalisation", kexue.fm, 2022):

    .. math::

        \textstyle\sum_i L_i / L_i^{(\mathrm{init})},\qquad
        L_i^{(\mathrm{init})} = \frac{1}{n}\sum_{t=1}^{n} L_i(t),

    the mean of the first ``n = warmup_steps`` steps' losses (Su suggests one batch,
    the default ``n = 1``), or given as ``initial_losses``. During the warm-up the
    weights use the running mean of the losses seen so far, this step's included, so
    the first step's weighted losses are all exactly 1; after it the weights are
    fixed.

    Scale invariance: if every loss of task i is multiplied by the same
    :math:`c_i > 0` (a change of units), :math:`L_i^{(\mathrm{init})}` is too, so the
    weighted losses :math:`w_i L_i` and the trainer's gradient are unchanged.

    Args:
        num_tasks: K >= 1.
        warmup_steps: n >= 1, the steps averaged into :math:`L_i^{(\mathrm{init})}`
            (default 1). Not allowed together with ``initial_losses``.
        initial_losses: the K values :math:`L_i^{(\mathrm{init})}` (finite, > 0);
            then there is no warm-up.

    During the warm-up every loss must be > 0 (it enters a divisor); after it the
    losses only need to be finite.

    Example:
        >>> from paretomtl.weighting import InitialLossNormalization
        >>> norm = InitialLossNormalization(2, warmup_steps=2)
        >>> norm.update([2.0, 0.5])  # running mean (2, 0.5)
        array([0.5, 2. ])
        >>> norm.update([4.0, 1.5])  # mean of two steps: (3, 1)
        array([0.33333333, 1.        ])
        >>> norm.update([1.0, 0.1])  # fixed from now on
        array([0.33333333, 1.        ])
    """

    hyperparameters = {
        "warmup_steps": value(lambda x, K, where: check_count(x, where, minimum=1)),
        "given_initial_losses": array("K", "> 0", optional=True),
    }
    fields = {"_loss_sum": array("K"), "_count": count()}

    def __init__(
        self,
        num_tasks: int,
        *,
        warmup_steps: int | None = None,
        initial_losses: object = None,
    ) -> None:
        super().__init__(num_tasks)
        if initial_losses is not None and warmup_steps is not None:
            raise ValueError(
                "pass either warmup_steps (measure the initial losses) or initial_losses "
                "(give them), not both"
            )
        n = 1 if warmup_steps is None else warmup_steps
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"warmup_steps must be an integer >= 1; got {warmup_steps!r}")
        self.warmup_steps = int(n)
        self.given_initial_losses = (
            None
            if initial_losses is None
            else as_task_vector(initial_losses, "initial_losses", self.num_tasks, need="> 0")
        )
        self.reset()

    def _reset(self) -> None:
        self._loss_sum = np.zeros(self.num_tasks)
        self._count = 0

    @property
    def initial_losses(self) -> np.ndarray | None:
        """:math:`L_i^{(\\mathrm{init})}`: given, or the running mean (fixed after the
        warm-up); None before the first update."""
        if self.given_initial_losses is not None:
            return self.given_initial_losses.copy()
        return None if self._count == 0 else self._loss_sum / self._count

    @property
    def warming_up(self) -> bool:
        """Whether the next update still enters the initial-loss mean."""
        return self.given_initial_losses is None and self._count < self.warmup_steps

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        if self.warming_up:
            self._require(
                losses,
                "> 0",
                "during the warm-up the losses enter L(init), which the weights divide by",
            )
            self._loss_sum = self._loss_sum + losses
            self._count += 1
        return 1.0 / self.initial_losses
