"""Geometric Loss Strategy: descend the geometric mean of the task losses."""

from __future__ import annotations

import numpy as np

from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting._registry import register
from paretomtl.weighting.generalized_mean import log_mean_and_log_weights, weights_from_logs


@register(
    "gls",
    kind="loss",
    paper=(
        "Chennupati, Sistu, Yogamani & Rawashdeh, MultiNet++: Multi-Stream Feature "
        "Aggregation and Geometric Loss Strategy for Multi-Task Learning, CVPR Workshops 2019"
    ),
    summary="minimise the geometric mean (prod L_i)^(1/K): w_i = (prod L)^(1/K) / (K L_i)",
)
class GeometricLossStrategy(LossWeighting):
    r"""Geometric Loss Strategy (GLS): minimise the geometric mean of the losses.

    Chennupati et al. (CVPR Workshops 2019) train on

    .. math::

        L_{GLS} = \Big(\textstyle\prod_{i=1}^K L_i\Big)^{1/K},\qquad
        w_i = \frac{\partial L_{GLS}}{\partial L_i} = \frac{L_{GLS}}{K L_i},

    computed in log space (:math:`w_i = \exp(\overline{\log L} - \log L_i) / K`), so
    the product never under- or overflows; a weight itself beyond float64's range
    (losses some 600 orders of magnitude apart) raises a ValueError naming the task. It is
    :class:`~paretomtl.weighting.GeneralizedMeanWeighting` at :math:`\gamma = 0`.

    Scale behaviour: every weighted loss is the same, :math:`w_i L_i = L_{GLS} / K`.
    Rescaling the tasks' losses :math:`L_i \to c_i L_i` multiplies every weighted loss
    by the same :math:`(\prod_j c_j)^{1/K}`: the balance between tasks does not
    depend on their units. The losses must be > 0.

    Args:
        num_tasks: K >= 1.

    Example:
        >>> from paretomtl.weighting import GeometricLossStrategy
        >>> GeometricLossStrategy(2).update([1.0, 4.0])  # L_GLS = 2: 2 / (2 * L_i)
        array([1.  , 0.25])
    """

    loss_domain = "> 0"
    why = "the geometric mean takes the log of each loss"

    def __init__(self, num_tasks: int) -> None:
        super().__init__(num_tasks)
        self.reset()

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        return weights_from_logs(log_mean_and_log_weights(losses, 0.0)[1], losses, "GLS")

    def objective(self, losses: object) -> float:
        """:math:`L_{GLS}` of ``losses`` (for logging; does not change the state)."""
        L = self._check_losses(losses)
        return float(np.exp(np.log(L).mean()))
