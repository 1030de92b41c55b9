"""MGDA: the minimum-norm element of the convex hull of the task gradients."""

from __future__ import annotations

import numpy as np

from paretomtl.solvers import _simplex
from paretomtl.solvers._input import prepare_scaled
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
      weights; stops when the duality gap :math:`v - \min_i (Gw)_i` falls below
      ``tol`` (default 1e-6, relative to :math:`\max_i G_{ii}`) or after
      ``max_iter`` (default 250) iterations. Sener & Koltun's code
      (``MinNormSolver.find_min_norm_element_FW``) differs: it starts from the best
      pair's two-task min-norm point, stops when the weights change by less than
      1e-5 in L1, and its 250-iteration cap never acts (its counter is never
      incremented); their training script uses the projected-gradient variant.
    - ``"cvxpy"``: cvxpy's default QP solver (reference; needs ``paretomtl[cvxpy]``).

    Degenerate input: zero gradients give the uniform weights over the zero rows
    (the min-norm value is 0); all-zero gradients, uniform weights; K = 1, weight 1.
    Identical gradients have many optimal weightings; the direction and ``G w`` are
    unique, the weights are one optimum. The argmin is invariant to a common positive
    scale of the gradients (not to per-task scales), so G is divided by its largest
    diagonal entry before solving, and gradients whose Gram matrix over- or
    underflows float64 (norms beyond about 1e±154) are multiplied by a power of two
    first (exact; ``gram_exponent`` says which): any common scale gives the same
    weights, bit for bit, wherever the scaled gradients are exact. Gradients shorter
    than about 1e-135 of the longest count as zero next to it.

    Args:
        grads: K x M array of task gradients, one per row (float16/32/64).
        gram: K x K Gram matrix ``grads @ grads.T``, instead of or besides ``grads``.
        method: ``"exact"``, ``"frank-wolfe"`` or ``"cvxpy"``.
        tol: optimality tolerance of ``"exact"`` and ``"frank-wolfe"``, in [0, 1)
            (relative to max_i G_ii); None for the route's default.
        max_iter: iteration cap of ``"exact"`` and ``"frank-wolfe"``, an int >= 1;
            None for the route's default.

    Raises:
        ValueError: for an unknown ``method``, ``tol`` outside [0, 1) or NaN,
            ``max_iter`` not an int >= 1, either given with ``method="cvxpy"``
            (which would ignore it), bad ``grads`` or ``gram``, or a ``gram`` that
            is not ``grads @ grads.T`` (when both are given).
        TypeError: for a ``tol`` that is not a real number, or non-real input.

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
    method, tol, max_iter = _simplex.check_options(
        method, tol, max_iter, _METHODS, ("exact", "frank-wolfe")
    )
    p = prepare_scaled(grads, gram)
    sol = _simplex.solve(p.gram, None, method, tol=tol, max_iter=max_iter)
    return _simplex.to_result(p, sol, f"mgda/{method}")


def mgda_weights(gram: np.ndarray, *, method: str = "exact") -> np.ndarray:
    """MGDA weights from a Gram matrix alone (see :func:`mgda`).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import mgda_weights
        >>> mgda_weights(np.array([[1.0, 0.0], [0.0, 4.0]]))
        array([0.8, 0.2])
    """
    return mgda(gram=gram, method=method).weights
