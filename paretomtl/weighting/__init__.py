"""Loss-based task weightings: K loss values in, K weights out, once per step.

A weighting turns this step's task losses :math:`L_i` into weights :math:`w_i`;
the trainer minimises :math:`\\sum_i w_i L_i` with w held constant. Every method
follows :class:`LossWeighting`: ``update(losses) -> weights``, ``weights``,
``reset()``, ``state_dict()`` / ``load_state_dict()`` (plain data, checked on
load; a resumed run is bit-identical). Calling a weighting, ``w = method(losses)``,
is its update. GradNorm also takes the gradient norms at a shared layer
(``gradnorm(losses, grad_norms)``). Every method is registered by name:
:func:`available` lists them, :func:`get` returns the class, :func:`info` its
paper and summary. Only numpy here: no framework.

Example:
    >>> from paretomtl import weighting
    >>> uw = weighting.UncertaintyWeighting(2, task_types=("regression", "classification"))
    >>> uw.update([0.8, 2.1])
    array([0.5, 1. ])
    >>> weighting.GeometricLossStrategy(2).update([1.0, 4.0])
    array([1.  , 0.25])
"""

from paretomtl._registry import discover
from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting._registry import REGISTRY
from paretomtl.weighting.constant import ConstantWeighting, EqualWeighting
from paretomtl.weighting.dwa import DynamicWeightAverage
from paretomtl.weighting.generalized_mean import (
    GeneralizedMeanWeighting,
    generalized_mean,
    generalized_mean_weights,
)
from paretomtl.weighting.gls import GeometricLossStrategy
from paretomtl.weighting.gradnorm import GradNorm
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
    "REGISTRY",
    "ConstantWeighting",
    "DynamicWeightAverage",
    "EqualWeighting",
    "GeneralizedMeanWeighting",
    "GeometricLossStrategy",
    "GradNorm",
    "InitialLossNormalization",
    "LiveLossNormalization",
    "LossWeighting",
    "PriorLossNormalization",
    "RandomLossWeighting",
    "UncertaintyWeighting",
    "available",
    "generalized_mean",
    "generalized_mean_weights",
    "get",
    "info",
    "prior_loss_classification",
    "prior_loss_regression",
    "register",
]

available = REGISTRY.available
info = REGISTRY.info
get = REGISTRY.get
register = REGISTRY.register
discover(REGISTRY, globals())  # one file per method: every module is imported
