"""Live-loss normalisation: divide each loss by its own current (stop-gradient) value."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import check_reciprocal
from paretomtl.state import array
from paretomtl.weighting._base import SU_2022, LossWeighting
from paretomtl.weighting._registry import register


@register(
    "live-loss",
    kind="loss",
    paper=SU_2022,
    summary="w_i = 1 / L_i(t): sum L_i / stopgrad(L_i), the gradient of sum log L_i",
)
class LiveLossNormalization(LossWeighting):
    r"""Live-loss normalisation: :math:`w_i(t) = 1 / L_i(t)`.

    Divide each loss by its own current value, held constant (Su, "Multi-task
    learning: loss normalisation", kexue.fm, 2022):

    .. math::

        \nabla \textstyle\sum_i \frac{L_i}{\operatorname{sg}(L_i)}
        = \sum_i \frac{\nabla L_i}{L_i} = \nabla \sum_i \log L_i
        = K\, \nabla \log \big(\textstyle\prod_i L_i\big)^{1/K},

    so it descends the log of the geometric mean of the losses (compare
    :class:`~paretomtl.weighting.GeometricLossStrategy`, which descends the
    geometric mean itself: the same direction, scaled by :math:`M_0 / K`). Every
    weighted loss :math:`w_i L_i` is 1 (to rounding), whatever the scale of
    :math:`L_i`: the method is invariant to per-task rescaling of the losses. The
    losses must be > 0; a loss below about 5.6e-309 (subnormal), whose weight would
    be beyond float64's range, raises a ValueError naming the task (no rescaling
    keeps every weighted loss at 1).

    Args:
        num_tasks: K >= 1.

    Example:
        >>> from paretomtl.weighting import LiveLossNormalization
        >>> LiveLossNormalization(3).update([0.5, 2.0, 100.0])
        array([2.  , 0.5 , 0.01])
    """

    loss_domain = "> 0"
    why = "live-loss normalisation divides by the loss"

    def __init__(self, num_tasks: int) -> None:
        super().__init__(num_tasks)
        self.reset()

    fields = {"_weights": array("K", "> 0", optional=True)}

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        check_reciprocal(losses, "losses", self.why)
        return 1.0 / losses
