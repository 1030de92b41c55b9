"""Constant loss weights: the weighted sum (linear scalarisation) and equal weighting."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_real_task_vector
from paretomtl.state import array
from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting._registry import register

_LINEAR_SCALARISATION = "Caruana, Multitask Learning, Machine Learning 28(1), 1997 (summed losses)"


@register(
    "constant",
    kind="loss",
    paper=_LINEAR_SCALARISATION,
    summary="fixed user-given loss weights: minimise sum_i w_i L_i",
)
class ConstantWeighting(LossWeighting):
    r"""Fixed loss weights: the trainer minimises :math:`\sum_i w_i L_i` with a given w.

    .. math::

        w_i(t) = c_i \quad\text{for every step } t,

    the linear scalarisation of the K objectives (the weighted sum used since
    Caruana, Machine Learning 1997). The losses are checked (finite, K of them)
    and otherwise ignored.

    Args:
        num_tasks: K >= 1.
        weights: the K weights :math:`c_i`, finite and >= 0.

    Example:
        >>> from paretomtl.weighting import ConstantWeighting
        >>> ConstantWeighting(3, weights=[1.0, 0.5, 2.0]).update([0.3, 10.0, 1e-3])
        array([1. , 0.5, 2. ])
    """

    hyperparameters = {"fixed_weights": array("K", ">= 0")}

    def __init__(self, num_tasks: int, weights: object) -> None:
        super().__init__(num_tasks)
        self.fixed_weights = as_real_task_vector(weights, "weights", self.num_tasks, need=">= 0")
        self.reset()

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        return self.fixed_weights.copy()

    def check_state(self, values: dict) -> None:
        w = values["_weights"]
        if w is not None and w.tobytes() != values["fixed_weights"].tobytes():
            raise ValueError(
                "state['weights'] must be None or equal state['hyperparameters']"
                f"['fixed_weights'] (the weights are constant); got {w} and "
                f"{values['fixed_weights']}"
            )


@register(
    "equal",
    kind="loss",
    paper=_LINEAR_SCALARISATION,
    summary="all loss weights 1: minimise the plain sum of the task losses",
)
class EqualWeighting(ConstantWeighting):
    r"""Equal weighting: :math:`w_i = 1`, the plain sum :math:`\sum_i L_i`.

    Args:
        num_tasks: K >= 1.

    Example:
        >>> from paretomtl.weighting import EqualWeighting
        >>> EqualWeighting(2).update([0.5, 7.0])
        array([1., 1.])
    """

    def __init__(self, num_tasks: int) -> None:
        LossWeighting.__init__(self, num_tasks)
        self.fixed_weights = np.ones(self.num_tasks)
        self.reset()

    def check_state(self, values: dict) -> None:
        if (values["fixed_weights"] != 1.0).any():
            raise ValueError(
                "state['hyperparameters']['fixed_weights'] must be all 1 for equal weighting; "
                f"got {values['fixed_weights']}"
            )
        super().check_state(values)
