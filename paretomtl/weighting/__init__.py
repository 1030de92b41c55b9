"""Loss-based task weightings: K loss values in, K weights out, once per step.

A weighting turns this step's task losses :math:`L_i` into weights :math:`w_i`;
the trainer minimises :math:`\\sum_i w_i L_i` with w held constant. Every method
follows :class:`LossWeighting`: ``update(losses) -> weights``, ``weights``,
``reset()``, ``state_dict()`` / ``load_state_dict()`` (plain data; a resumed run
is bit-identical). They are registered with ``kind="loss"``, so
``paretomtl.solvers.get("dwa")`` finds them and ``available("loss")`` lists them.
Only numpy here: no framework.

Example:
    >>> from paretomtl import weighting
    >>> uw = weighting.UncertaintyWeighting(2, task_types=("regression", "classification"))
    >>> uw.update([0.8, 2.1])
    array([0.5, 1. ])
    >>> weighting.GeometricLossStrategy(2).update([1.0, 4.0])
    array([1.  , 0.25])
"""

from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting.constant import ConstantWeighting, EqualWeighting
from paretomtl.weighting.dwa import DynamicWeightAverage
from paretomtl.weighting.generalized_mean import (
    GeneralizedMeanWeighting,
    generalized_mean,
    generalized_mean_weights,
)
from paretomtl.weighting.gls import GeometricLossStrategy
from paretomtl.weighting.initial_loss import InitialLossNormalization
from paretomtl.weighting.live_loss import LiveLossNormalization
from paretomtl.weighting.prior_loss import (
    PriorLossNormalization,
    prior_loss_classification,
    prior_loss_regression,
)
from paretomtl.weighting.rlw import RandomLossWeighting
from paretomtl.weighting.uncertainty import UncertaintyWeighting

__all__ = [
    "ConstantWeighting",
    "DynamicWeightAverage",
    "EqualWeighting",
    "GeneralizedMeanWeighting",
    "GeometricLossStrategy",
    "InitialLossNormalization",
    "LiveLossNormalization",
    "LossWeighting",
    "PriorLossNormalization",
    "RandomLossWeighting",
    "UncertaintyWeighting",
    "generalized_mean",
    "generalized_mean_weights",
    "prior_loss_classification",
    "prior_loss_regression",
]
