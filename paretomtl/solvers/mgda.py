"""MGDA: the minimum-norm element of the convex hull of the task gradients."""

from __future__ import annotations

import numpy as np

from paretomtl.solvers import _simplex
from paretomtl.solvers._input import combine, prepare
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult

_METHODS = ("exact", "frank-wolfe", "cvxpy")


@register(
    "mgda",
    kind="gradient",
    paper="Sener & Koltun, Multi-Task Learning as Multi-Objective Optimization, NeurIPS 2018",
    summary="min-norm point of the convex hull of the task gradients (exact active set)",
)
def mgda(
    grads: object = None,
    *,
    gram: object = None,
    method: str = "exact",
    tol: float | None = None,
    max_iter: int | None = None,
) -> SolverResult:
    r"""MGDA's common descent direction: the min-norm point of the gradients' hull.

    .. math::

        w^\star = \arg\min_{w \in \Delta} \Big\| \sum_i w_i g_i \Big\|^2
                = \arg\min_{w \in \Delta} w^\top G w,
        \qquad \Delta = \{w \ge 0,\ \textstyle\sum_i w_i = 1\}

    (Désidéri 2012; Sener & Koltun, "Multi-Task Learning as Multi-Objective
    Optimization", NeurIPS 2018). If the direction :math:`d = \sum_i w_i g_i` is
    nonzero, :math:`\langle g_i, d\rangle \ge \|d\|^2 > 0` for every task: a step
    along -d decreases every loss. If it is zero, the point is Pareto-stationary.

    Optimality certificate (reported as ``kkt_residual``, relative to
    :math:`\max_i G_{ii}`): with :math:`v = w^\top G w`, every :math:`(Gw)_i \ge v`, with
    equality wherever :math:`w_i > 0`.

    Algorithms (``method``):

    - ``"exact"`` (default): closed form for K = 2; otherwise Wolfe's minimum-norm
      point algorithm (Math. Programming 1976) on G, compiled with numba: a finite
      active-set method that ends at the exact optimum up to rounding (with an
      exchange step for near-duplicate gradients and iterative refinement).
    - ``"frank-wolfe"``: Frank-Wolfe with exact line search from the uniform
      weights, as in Sener & Koltun's code; stops when the duality gap
      :math:`v - \min_i (Gw)_i` falls below ``tol`` (default 1e-6, relative to
      :math:`\max_i G_{ii}`) or after ``max_iter`` (default 250) iterations.
    - ``"cvxpy"``: cvxpy's default QP solver (reference; needs ``paretomtl[cvxpy]``).

    Degenerate input: zero gradients give the uniform weights over the zero rows
    (the min-norm value is 0); all-zero gradients, uniform weights; K = 1, weight 1.
    Identical gradients have many optimal weightings; the direction and ``G w`` are
    unique, the weights are one optimum. The argmin is invariant to a common positive
    scale of the gradients (not to per-task scales), so G is divided by its largest
    diagonal entry before solving: norms from 1e-30 to 1e30 are fine.

    Args:
        grads: K x M array of task gradients, one per row (float16/32/64).
        gram: K x K Gram matrix ``grads @ grads.T``, instead of or besides ``grads``.
        method: ``"exact"``, ``"frank-wolfe"`` or ``"cvxpy"``.
        tol: optimality tolerance of the iterative routes (relative to max_i G_ii).
        max_iter: iteration cap of the iterative routes.

    Returns:
        SolverResult with ``weights``, ``direction`` (None without ``grads``),
        ``objective`` = :math:`w^\top G w` (the squared norm of the direction),
        ``kkt_residual``, ``iterations`` and ``converged``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import mgda
        >>> res = mgda(np.array([[1.0, 0.0], [0.0, 2.0]]))
        >>> res.weights
        array([0.8, 0.2])
        >>> res.direction
        array([0.8, 0.4])
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
    J, G = prepare(grads, gram)
    sol = _simplex.solve(G, None, method, tol=tol, max_iter=max_iter)
    return SolverResult(
        weights=sol.weights,
        direction=combine(sol.weights, J),
        gram=G,
        method=f"mgda/{method}",
        iterations=sol.iterations,
        converged=sol.converged,
        objective=sol.objective,
        kkt_residual=sol.kkt_residual,
    )


def mgda_weights(gram: np.ndarray, *, method: str = "exact") -> np.ndarray:
    """MGDA weights from a Gram matrix alone (see :func:`mgda`).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import mgda_weights
        >>> mgda_weights(np.array([[1.0, 0.0], [0.0, 4.0]]))
        array([0.8, 0.2])
    """
    return mgda(gram=gram, method=method).weights
