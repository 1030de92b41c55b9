"""PE-LTR's constrained Pareto step: MGDA with lower bounds on the weights."""

from __future__ import annotations

import numpy as np

from paretomtl.solvers import _simplex
from paretomtl.solvers._input import prepare_scaled
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult

_METHODS = ("exact", "pe-ltr", "cvxpy")


def _as_lower_bounds(lower_bounds: object, K: int) -> np.ndarray:
    try:
        arr = np.asarray(lower_bounds)
    except ValueError:  # ragged nesting
        raise ValueError(
            f"lower_bounds must be a scalar or have one entry per task (shape ({K},)); "
            f"got {lower_bounds!r}"
        ) from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(
            f"lower_bounds must be a real number or {K} real numbers, one per task; got "
            f"{lower_bounds!r} (dtype {arr.dtype})"
        )
    c = arr.astype(np.float64)
    if c.ndim == 0:
        c = np.full(K, float(c))
    if c.shape != (K,):
        raise ValueError(
            f"lower_bounds must be a scalar or have one entry per task (shape ({K},)); "
            f"got shape {c.shape}"
        )
    if not np.isfinite(c).all():
        raise ValueError("lower_bounds must be finite")
    if (c < 0).any():
        i = int(np.argmin(c))
        raise ValueError(
            f"lower_bounds must be >= 0; lower_bounds[{i}] = {c[i]:g}. "
            f"Weights are non-negative and sum to 1"
        )
    with np.errstate(over="ignore"):  # huge bounds: the sum is inf, still > 1
        total = float(c.sum())
    if total > 1.0 + 1e-12:
        raise ValueError(
            f"lower_bounds sum to {total:g} > 1: no weights w >= lower_bounds sum to 1. "
            f"Lower them so that their sum is at most 1"
        )
    # Bounds summing to 1 within rounding are kept as given: the solver returns w = c,
    # the single feasible point (sum w may then exceed 1 by an ulp or two).
    return c


def _pe_ltr_route(G: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, bool]:
    """The paper's two stages on the scaled Gram matrix (see :func:`pareto_step`)."""
    from scipy.optimize import minimize, nnls

    K = G.shape[0]
    s = 1.0 - c.sum()
    kkt = np.zeros((K + 1, K + 1))
    kkt[:K, :K] = G
    kkt[:K, K] = 1.0
    kkt[K, :K] = 1.0
    rhs = np.concatenate([-(G @ c), [s]])
    # Stage 1: the equality-constrained optimum, bounds ignored (pseudo-inverse, as
    # the paper, since the KKT matrix is singular for rank-deficient G).
    x_hat = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:K]
    # Stage 2: Euclidean projection of x_hat onto {x >= 0, sum x = s}: NNLS for a
    # start, SLSQP for the equality.
    x0, _ = nnls(np.eye(K), x_hat)
    res = minimize(
        lambda x: float(np.sum((x - x_hat) ** 2)),
        x0,
        jac=lambda x: 2.0 * (x - x_hat),
        method="SLSQP",
        bounds=[(0.0, None)] * K,
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - s, "jac": lambda x: np.ones(K)}],
    )
    x = np.clip(res.x, 0.0, None)
    x = x * (s / x.sum()) if x.sum() > 0 else np.full(K, s / K)
    return c + x, bool(res.success)


@register(
    "pareto-step",
    kind="gradient",
    paper=(
        "Lin, Chen, Pei, Sun, Ou, Zhang & Jiang, A Pareto-Efficient Algorithm for Multiple "
        "Objective Optimization in E-Commerce Recommendation, RecSys 2019"
    ),
    summary="MGDA with lower bounds w_i >= c_i on the weights (PE-LTR), solved exactly",
)
def pareto_step(
    grads: object = None,
    *,
    gram: object = None,
    lower_bounds: object = 0.0,
    method: str = "exact",
    tol: float | None = None,
    max_iter: int | None = None,
) -> SolverResult:
    r"""PE-LTR's Pareto step: the min-norm combination with weights bounded below.

    .. math::

        w^\star = \arg\min_{w} \; w^\top G w
        \quad\text{s.t.}\quad w_i \ge c_i,\ \ \textstyle\sum_i w_i = 1

    (Lin et al., "A Pareto-Efficient Algorithm for Multiple Objective Optimization
    in E-Commerce Recommendation", RecSys 2019). The bounds ``c = lower_bounds``
    encode how much each objective must at least count; ``c = 0`` is MGDA.

    Optimality (``kkt_residual``, relative to :math:`\max_i G_{ii}`): with
    :math:`\mu = (w-c)^\top G w / (1 - \sum c)`, every :math:`(Gw)_i \ge \mu`, with
    equality wherever :math:`w_i > c_i`.

    Algorithms (``method``):

    - ``"exact"`` (default): Wolfe's active-set method run on the bounded problem
      directly (free coordinates form the corral), numba-compiled; exact up to
      rounding. Equivalent to MGDA on the shifted points :math:`J^\top c + s g_i`,
      :math:`s = 1 - \sum c`, without forming their Gram matrix (which loses
      precision when s is small).
    - ``"pe-ltr"``: the paper's two stages, kept for comparison: (1) solve the
      equality-constrained KKT system :math:`[G\ 1; 1^\top\ 0][\hat x; \lambda] =
      [-Gc; s]` by pseudo-inverse, ignoring the bounds; (2) project :math:`\hat x`
      onto :math:`\{x \ge 0, \sum x = s\}` in the Euclidean norm of the *weights*
      (NNLS start, SLSQP), and return :math:`c + x`. The projection is feasible but
      not optimal for the QP whenever a bound is active, because the weight-space
      metric is not :math:`G`'s. Worked example: gradients (1, 0), (0, 1), (-1, 1),
      c = (0.1, 0.1, 0.1). Exact: w = (0.56, 0.1, 0.34), d = (0.22, 0.44),
      :math:`\|d\|^2 = 0.242` (w_2 at its bound, (Gw) = (0.22, 0.44, 0.22)). PE-LTR:
      the three points span the plane, so stage 1 finds the affine combination
      (1, -1, 1) at the origin, i.e. x = (0.9, -1.1, 0.9); its projection onto
      {x >= 0, sum x = 0.7} is (0.35, 0, 0.35), so w = (0.45, 0.1, 0.45),
      d = (0, 0.55), :math:`\|d\|^2 = 0.3025`: 25 % above the optimum.
    - ``"cvxpy"``: cvxpy's QP solver (reference; needs ``paretomtl[cvxpy]``).

    Args:
        grads: K x M array of task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.
        lower_bounds: c, a scalar or one bound per task; ``c >= 0``, ``sum c <= 1``.
        method: ``"exact"``, ``"pe-ltr"`` or ``"cvxpy"``.
        tol, max_iter: tolerance (in [0, 1), relative to max_i G_ii) and iteration
            cap (an int >= 1) of the exact active-set method; None for its defaults.
            The other routes do not use them and refuse them.

    Returns:
        SolverResult with ``weights`` (>= c, summing to 1), ``direction``,
        ``objective`` = :math:`w^\top G w` and ``kkt_residual``.

    Like MGDA, the answer is invariant to a common positive scale of the gradients,
    and gradients whose Gram matrix over- or underflows float64 are multiplied by a
    power of two first (``gram_exponent``).

    Raises:
        ValueError: if ``lower_bounds`` has the wrong length, is negative, NaN, or
            sums past 1 (no feasible weights); for an unknown ``method``, ``tol``
            outside [0, 1), ``max_iter`` not an int >= 1, either of them with a
            route other than ``"exact"``; bad ``grads``/``gram``, or a ``gram``
            that is not ``grads @ grads.T``.
        TypeError: if ``lower_bounds`` or ``tol`` is not made of real numbers.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import pareto_step
        >>> grads = np.array([[1.0, 0.0], [0.0, 3.0]])
        >>> pareto_step(grads, lower_bounds=[0.0, 0.0]).weights.round(3)
        array([0.9, 0.1])
        >>> pareto_step(grads, lower_bounds=[0.0, 0.3]).weights.round(3)
        array([0.7, 0.3])
    """
    method, tol, max_iter = _simplex.check_options(method, tol, max_iter, _METHODS, ("exact",))
    p = prepare_scaled(grads, gram)
    G = p.gram
    c = _as_lower_bounds(lower_bounds, G.shape[0])
    if method == "pe-ltr":
        scale = float(np.max(np.diagonal(G)))
        if scale > 0.0 and c.sum() < 1.0 and G.shape[0] > 1:
            w, ok = _pe_ltr_route(G / scale, c)
            sol = _simplex._finish(G, G / scale, w, c, 0, ok)
        else:
            sol = _simplex.solve(G, c, "exact")
    else:
        sol = _simplex.solve(G, c, method, tol=tol, max_iter=max_iter)
    return _simplex.to_result(p, sol, f"pareto-step/{method}", {"lower_bounds": c})
