r"""Projections onto the dual cone of the task gradients, shared by UPGrad and DualProj.

The dual cone of the rows of J is :math:`\{x : J x \ge 0\}`, the directions along
which no task's loss increases to first order. Quinton & Rey (2024, Proposition 1)
show that the projection of :math:`J^\top u` onto it is :math:`J^\top v^*(u)` with

.. math::

    v^*(u) = \arg\min_{v \ge u} v^\top G v, \qquad G = J J^\top,

a box-constrained QP on the K x K Gram matrix (KKT: :math:`G v \ge 0`, :math:`v \ge
u`, :math:`(v - u)_i (G v)_i = 0`). :func:`project` solves it exactly for several u
at once with the active-set kernel :func:`paretomtl._kernels.dual_cone.project_dual_cone`.

The projected direction :math:`J^\top v^*` is unique; v itself is unique when G is
positive definite. Where G is singular the solution returned is a *basic* one, made
canonical by the deterministic path that reaches it: the free tasks (those with
:math:`v_i > u_i`) have linearly independent gradients (so of duplicated tasks at
most one is free, the first to enter by the kernel's rules: most negative multiplier
:math:`(G v)_j`, ties to the lowest index), and a task with a zero gradient keeps
:math:`v_i = u_i`. The same G and u always give the same v, bit for bit; a
permutation of the tasks permutes the direction (and v, where G is positive definite).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from paretomtl._checks import as_task_vector
from paretomtl._kernels.dual_cone import dual_cone_weights

# Entering threshold of the active set, relative to max_i G_ii * ||u||_1: a multiplier
# above -TOL counts as non-negative.
TOL = 1e-13
# KKT residual (relative) under which a row stopped by its iteration cap still counts
# as solved: the certificate decides, not the path.
KKT_ACCEPT = 1e-9


class Projection(NamedTuple):
    """Solutions ``V`` (B x K, row r for ``U[r]``), their combination ``w = coef @ V``
    and the diagnostics."""

    V: np.ndarray
    weights: np.ndarray
    iterations: int  # summed over the rows
    converged: bool  # no row stopped by the cap with a residual above KKT_ACCEPT
    residual: float  # the largest row residual (see project_dual_cone)
    stalled: int  # rows that ended with a dependent index still violating KKT
    violation: float  # max(0, -min_i (G w)_i) / (max_i G_ii ||w||_1): 0 in the dual cone


def max_iterations(num_tasks: int) -> int:
    """The iteration cap of one projection: ``10 K + 100`` (entering rounds plus drops;
    the active set usually finishes in about twice its final size).

    Example:
        >>> from paretomtl.solvers._dual_cone import max_iterations
        >>> max_iterations(10)
        200
    """
    return 10 * num_tasks + 100


def pref_weights(pref_vector: object, num_tasks: int) -> np.ndarray:
    """The preference vector as K finite non-negative floats, not all zero; ``None``
    gives the uniform ``1/K`` (TorchJD's default, its ``MeanWeighting``).

    Example:
        >>> from paretomtl.solvers._dual_cone import pref_weights
        >>> pref_weights(None, 4)
        array([0.25, 0.25, 0.25, 0.25])
        >>> pref_weights([1, 0], 2)
        array([1., 0.])
        >>> pref_weights([0, 0], 2)
        Traceback (most recent call last):
        ...
        ValueError: pref_vector must have a positive entry (all 2 are 0); got [0. 0.]
    """
    if pref_vector is None:
        return np.full(num_tasks, 1.0 / num_tasks)
    p = as_task_vector(pref_vector, "pref_vector", num_tasks, need=">= 0")
    if not p.any():
        raise ValueError(f"pref_vector must have a positive entry (all {num_tasks} are 0); got {p}")
    return p


def lifted(pref: np.ndarray) -> tuple[np.ndarray, int]:
    """``(pref * 2**-e, e)``: a preference vector whose largest entry is below 0.5
    scaled up by a power of two (exactly) to one in [0.5, 1), e <= 0, so that
    subnormal preferences cannot underflow the kernel. The projections are linear
    in the preference (v*(c u) = c v*(u), c >= 0): weights computed from the lifted
    vector times 2**e are the weights of ``pref``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers._dual_cone import lifted
        >>> lifted(np.array([5e-324, 0.0]))[1] < -1000, lifted(np.array([3.0, 1.0]))
        (True, (array([3., 1.]), 0))
    """
    e = min(int(np.frexp(pref.max())[1]), 0)
    return np.ldexp(pref, -e), e


def project(G: np.ndarray, U: np.ndarray, coef: np.ndarray | None = None) -> Projection:
    r"""Solve :math:`v^*(u) = \arg\min_{v \ge u} v^\top G v` for every row u of ``U``.

    ``G`` is a validated symmetric PSD float64 Gram matrix (any positive scale: the
    kernel divides by its largest diagonal entry), ``U`` a B x K float64 array,
    ``coef`` B weights for the combination ``w = coef @ V`` (default: all 1).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers._dual_cone import project
        >>> G = np.array([[1.0, -1.0], [-1.0, 4.0]])  # g1 = (1, 0), g2 = (-1, 1.73...)
        >>> project(G, np.eye(2)).V  # g1 + g2 / 4 is orthogonal to g2; g2 + g1 to g1
        array([[1.  , 0.25],
               [1.  , 1.  ]])
    """
    G = np.ascontiguousarray(G, dtype=np.float64)
    U = np.ascontiguousarray(U, dtype=np.float64)
    coef = np.ones(U.shape[0]) if coef is None else np.ascontiguousarray(coef, dtype=np.float64)
    V, w, its, residual, unsolved, stalled, violation = dual_cone_weights(
        G, U, coef, TOL, max_iterations(G.shape[0]), KKT_ACCEPT
    )
    return Projection(V, w, its, unsolved == 0, residual, stalled, violation)
