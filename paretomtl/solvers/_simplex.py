"""The lower-bounded simplex QP shared by MGDA and the Pareto step.

    minimise  w^T G w   subject to  w_i >= c_i,  sum_i w_i = 1.

``solve`` scales G by its largest diagonal entry (both problems' argmin is invariant
to a common positive scale of G, not to per-task scales), handles the cases with a
closed form, and calls the exact kernel, Frank-Wolfe, or cvxpy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from paretomtl._checks import check_choice, check_count, check_real
from paretomtl._kernels.simplex_qp import (
    STATUS_MAX_ITER,
    frank_wolfe,
    kkt_residual,
    solve_exact,
)
from paretomtl.solvers._input import Prepared, combine, unscaled_gram
from paretomtl.solvers._result import SolverResult

# KKT residual (relative to max_i G_ii) under which a stalled exact solve counts as
# converged: the certificate, not the path, decides.
_KKT_ACCEPT = 1e-9
# Largest iteration cap passed to the compiled kernels (int64 counters).
_MAX_ITER_CAP = 2**62


class Solution(NamedTuple):
    weights: np.ndarray
    iterations: int
    converged: bool
    objective: float
    kkt_residual: float


def check_options(
    method: object, tol: object, max_iter: object, methods: tuple, iterative: tuple
) -> tuple[str, float | None, int | None]:
    """``(method, tol, max_iter)`` checked: ``method`` one of ``methods``; ``tol`` None
    or in [0, 1) (relative to max_i G_ii: a duality gap or multiplier violation of 1
    accepts any point); ``max_iter`` None or an int from 1 to 2**62; the last two only with a
    method in ``iterative`` (the others would ignore them).

    Example:
        >>> from paretomtl.solvers._simplex import check_options
        >>> check_options("exact", 1e-9, 50, ("exact", "cvxpy"), ("exact",))
        ('exact', 1e-09, 50)
        >>> check_options("exact", float("nan"), None, ("exact",), ("exact",))
        Traceback (most recent call last):
        ...
        ValueError: tol must lie in [0, 1); got nan
    """
    check_choice(method, "method", methods)
    for name, value in (("tol", tol), ("max_iter", max_iter)):
        if value is not None and method not in iterative:
            routes = " and ".join(repr(m) for m in iterative)
            raise ValueError(
                f"{name} is used by method={routes} only; method={method!r} would ignore "
                f"it: leave {name}=None (got {value!r})"
            )
    if tol is not None:
        tol = check_real(tol, "tol", low=0.0, high=1.0, high_open=True)
    if max_iter is not None:
        max_iter = check_count(max_iter, "max_iter", minimum=1)
        if max_iter > _MAX_ITER_CAP:  # the kernels count in int64
            raise ValueError(f"max_iter must be an integer from 1 to 2**62; got {max_iter!r}")
    return method, tol, max_iter


def to_result(p: Prepared, sol: Solution, method: str, extras: dict | None = None):
    """The :class:`SolverResult` of a solution computed on ``p.gram``: the Gram matrix
    and the objective reported on the gradients' own scale when float64 holds it.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers._input import prepare_scaled
        >>> from paretomtl.solvers._simplex import solve, to_result
        >>> p = prepare_scaled(np.array([[1e200, 0.0], [0.0, 1e200]]), None)
        >>> to_result(p, solve(p.gram, None, "exact"), "mgda/exact").gram_exponent
        -665
    """
    G, exponent = unscaled_gram(p.gram, p.exponent)
    objective = sol.objective
    if exponent != p.exponent:
        objective = float(np.ldexp(objective, 2 * (exponent - p.exponent)))
    return SolverResult(
        weights=sol.weights,
        direction=combine(sol.weights, p.grads),
        gram=G,
        method=method,
        iterations=sol.iterations,
        converged=sol.converged,
        objective=objective,
        kkt_residual=sol.kkt_residual,
        extras=extras or {},
        gram_exponent=exponent,
    )


def _finish(G: np.ndarray, Gs: np.ndarray, w: np.ndarray, c: np.ndarray, it: int, conv: bool):
    _, res = kkt_residual(Gs, w, c)
    return Solution(w, it, conv, float(w @ G @ w), float(res))


def solve(
    G: np.ndarray,
    c: np.ndarray | None,
    method: str,
    *,
    tol: float | None = None,
    max_iter: int | None = None,
) -> Solution:
    """Solve the bounded simplex QP on a validated float64 Gram matrix.

    ``c=None`` means no lower bounds (MGDA). ``method`` is ``"exact"``,
    ``"frank-wolfe"`` or ``"cvxpy"``.
    """
    K = G.shape[0]
    mgda = c is None
    cvec = np.zeros(K) if mgda else c
    if method == "exact":
        tol = 1e-15 * K if tol is None else tol
        max_iter = max(100, 20 * K) if max_iter is None else max_iter
        w, it, status, obj, res = solve_exact(G, cvec, tol, max_iter)
        converged = status != STATUS_MAX_ITER or res <= _KKT_ACCEPT
        return Solution(w, it, bool(converged), obj, res)
    scale = float(np.max(np.diagonal(G)))
    pinned = 1.0 - cvec.sum() <= 1e-13
    if scale <= 0.0 or K == 1 or pinned or (mgda and (np.diagonal(G) == 0).any()):
        return solve(G, c, "exact")
    Gs = G / scale
    if method == "frank-wolfe":
        if not mgda:
            raise ValueError("method='frank-wolfe' is available for MGDA only")
        tol = 1e-6 if tol is None else tol
        max_iter = 250 if max_iter is None else max_iter
        w, it, conv = frank_wolfe(Gs, np.full(K, 1.0 / K), tol, max_iter)
        return _finish(G, Gs, w, cvec, it, bool(conv))
    if method == "cvxpy":
        w, conv = _cvxpy(Gs, cvec)
        return _finish(G, Gs, w, cvec, 0, conv)
    raise ValueError(f"unknown method {method!r}")


def _cvxpy(Gs: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, bool]:
    """Reference route through cvxpy (imported here, lazily).

    G is factored as L L^T from its eigendecomposition (negative rounding eigenvalues
    clipped), so that cvxpy sees the convex ``sum_squares(L^T w)``. The answer is
    projected back onto the feasible set, since solvers stop slightly outside it.
    """
    try:
        import cvxpy as cp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("method='cvxpy' needs cvxpy: pip install 'paretomtl[cvxpy]'") from exc
    K = Gs.shape[0]
    evals, evecs = np.linalg.eigh(Gs)
    L = evecs * np.sqrt(np.clip(evals, 0.0, None))
    w = cp.Variable(K)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(L.T @ w)), [w >= c, cp.sum(w) == 1])
    # OSQP with tight tolerances and solution polishing (exact active set): its
    # default 1e-5 tolerances misplace the answer when 1 - sum(c) is that small.
    try:
        if cp.OSQP in cp.installed_solvers():
            problem.solve(
                solver=cp.OSQP, eps_abs=1e-10, eps_rel=1e-10, polishing=True, max_iter=200_000
            )
        else:
            problem.solve()
    except cp.error.SolverError:
        return c + (1.0 - c.sum()) / K, False
    if w.value is None:
        return c + (1.0 - c.sum()) / K, False
    x = np.clip(np.asarray(w.value, dtype=np.float64) - c, 0.0, None)
    s = 1.0 - c.sum()
    x = x * (s / x.sum()) if x.sum() > 0 else np.full(K, s / K)
    return c + x, problem.status == cp.OPTIMAL
