"""The lower-bounded simplex QP shared by MGDA and the Pareto step.

    minimise  w^T G w   subject to  w_i >= c_i,  sum_i w_i = 1.

``solve`` scales G by its largest diagonal entry (both problems' argmin is invariant
to a common positive scale of G, not to per-task scales), handles the cases with a
closed form, and calls the exact kernel, Frank-Wolfe, or cvxpy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from paretomtl._kernels.simplex_qp import (
    STATUS_MAX_ITER,
    frank_wolfe,
    kkt_residual,
    solve_exact,
)

# KKT residual (relative to max_i G_ii) under which a stalled exact solve counts as
# converged: the certificate, not the path, decides.
_KKT_ACCEPT = 1e-9


class Solution(NamedTuple):
    weights: np.ndarray
    iterations: int
    converged: bool
    objective: float
    kkt_residual: float


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
