"""Gradient-space solvers: K task gradients (or their Gram matrix) in, one direction out.

Every solver takes ``grads`` (a K x M array, one task gradient per row) and/or
``gram`` (its K x K Gram matrix) and returns a :class:`SolverResult`. Methods are
reachable by name through :func:`get` and :func:`method` (the object form, options
set) and listed by :func:`available`. Every module of this package is imported
here, so a new method is one new file: its ``@register`` decorator puts it in the
registry and its function or class becomes an attribute of this package.
GradNorm, a loss weighting, lives in :mod:`paretomtl.weighting` and is re-exported
here as one of the founding methods.

Example:
    >>> import numpy as np
    >>> from paretomtl import solvers
    >>> grads = np.array([[1.0, 0.0], [-0.5, 1.0]])
    >>> solvers.mgda(grads).weights.round(4)
    array([0.5385, 0.4615])
"""

from paretomtl._registry import Entry as MethodInfo
from paretomtl._registry import discover
from paretomtl.solvers._input import gram
from paretomtl.solvers._method import Solver, method
from paretomtl.solvers._registry import REGISTRY
from paretomtl.solvers._result import SolverResult
from paretomtl.solvers.conflict import ConflictStats, ConflictTracker
from paretomtl.solvers.epo import epo, non_uniformity
from paretomtl.solvers.gradient_normalization import gradient_normalization
from paretomtl.solvers.gradvac import GradVac
from paretomtl.solvers.mgda import mgda, mgda_weights
from paretomtl.solvers.momentum_pcgrad import MomentumPCGrad
from paretomtl.solvers.pareto_step import pareto_step
from paretomtl.solvers.pcgrad import pcgrad
from paretomtl.weighting.gradnorm import GradNorm

available = REGISTRY.available
info = REGISTRY.info
get = REGISTRY.get
register = REGISTRY.register

__all__ = [
    "REGISTRY",
    "ConflictStats",
    "ConflictTracker",
    "GradNorm",
    "GradVac",
    "MethodInfo",
    "MomentumPCGrad",
    "Solver",
    "SolverResult",
    "available",
    "epo",
    "get",
    "gradient_normalization",
    "gram",
    "info",
    "method",
    "mgda",
    "mgda_weights",
    "non_uniformity",
    "pareto_step",
    "pcgrad",
    "register",
]

discover(REGISTRY, globals())  # one file per method: every module is imported
