"""Gradient-space solvers: K task gradients (or their Gram matrix) in, one direction out.

Every solver takes ``grads`` (a K x M array, one task gradient per row) and/or
``gram`` (its K x K Gram matrix) and returns a :class:`SolverResult`. Methods are
also reachable by name through :func:`get` and listed by :func:`available`.

Example:
    >>> import numpy as np
    >>> from paretomtl import solvers
    >>> grads = np.array([[1.0, 0.0], [-0.5, 1.0]])
    >>> solvers.mgda(grads).weights.round(4)
    array([0.5385, 0.4615])
"""

from paretomtl.solvers._input import gram
from paretomtl.solvers._registry import MethodInfo, available, get, info, register
from paretomtl.solvers._result import SolverResult
from paretomtl.solvers.conflict import ConflictStats, ConflictTracker
from paretomtl.solvers.epo import epo, non_uniformity
from paretomtl.solvers.gradient_normalization import gradient_normalization
from paretomtl.solvers.gradnorm import GradNorm
from paretomtl.solvers.gradvac import GradVac
from paretomtl.solvers.mgda import mgda, mgda_weights
from paretomtl.solvers.momentum_pcgrad import MomentumPCGrad
from paretomtl.solvers.pareto_step import pareto_step
from paretomtl.solvers.pcgrad import pcgrad

__all__ = [
    "ConflictStats",
    "ConflictTracker",
    "GradNorm",
    "GradVac",
    "MethodInfo",
    "MomentumPCGrad",
    "SolverResult",
    "available",
    "epo",
    "get",
    "gradient_normalization",
    "gram",
    "info",
    "mgda",
    "mgda_weights",
    "non_uniformity",
    "pareto_step",
    "pcgrad",
    "register",
]
