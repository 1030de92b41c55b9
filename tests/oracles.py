"""Independent references for the lower-bounded simplex QP, written from the problem.

    minimise  w^T G w   subject to  w_i >= c_i,  sum_i w_i = 1        (G = J J^T)

Nothing here calls paretomtl. ``brute_force`` enumerates active sets (K <= 6),
``kkt_residual`` certifies a candidate, ``cvxpy_reference`` asks a general QP solver
and reports whether its answer can be trusted as a bound.
"""

from __future__ import annotations

import itertools
import warnings
from typing import NamedTuple

import numpy as np


def scale_of(G: np.ndarray) -> float:
    """max_i G_ii, the unit every tolerance below is relative to (1 for G = 0)."""
    d = float(np.max(np.diagonal(G)))
    return d if d > 0.0 else 1.0


def gram64(J) -> np.ndarray:
    """J J^T in float64 (whatever J's dtype)."""
    J = np.asarray(J, dtype=np.float64)
    return J @ J.T


def assert_feasible(w, c=None, atol=1e-12) -> None:
    """w finite, w >= c exactly, |sum w - 1| <= atol."""
    c = np.zeros_like(w) if c is None else c
    assert np.all(np.isfinite(w)), w
    assert np.all(w >= c), (w, c)
    assert abs(float(np.sum(w)) - 1.0) <= atol, float(np.sum(w))


def objective(G: np.ndarray, w: np.ndarray) -> float:
    return float(w @ G @ w)


def feasibility_error(w: np.ndarray, c: np.ndarray | None = None) -> float:
    """max(largest bound violation, |sum w - 1|)."""
    c = np.zeros_like(w) if c is None else c
    return max(float(np.max(c - w, initial=0.0)), abs(float(np.sum(w)) - 1.0))


def kkt_residual(G: np.ndarray, c: np.ndarray | None, w: np.ndarray, free_tol=None) -> float:
    """Largest violation of the optimality conditions at a feasible w, relative to max G_ii.

    With x = w - c, s = 1 - sum c and mu = x^T G w / s (the multiplier of the sum
    constraint), optimality is (G w)_i >= mu for every i and (G w)_i = mu wherever
    w_i > c_i. The denominator s is evaluated as sum(x) (equal to 1 - sum c on the
    feasible set): when s is tiny, 1 - sum c and sum(w - c) differ by rounding that is
    large relative to s, and only the latter is consistent with the x in the numerator.
    Coordinates with x_i <= free_tol (default 1e-12 * s, at least 1e-15) count as at
    their bound.
    """
    K = G.shape[0]
    c = np.zeros(K) if c is None else np.asarray(c, dtype=np.float64)
    x = w - c
    s_nominal = max(1.0 - float(np.sum(c)), 0.0)
    if free_tol is None:
        free_tol = max(1e-12 * s_nominal, 1e-15)
    free = x > free_tol
    Gw = G @ w
    if not free.any():
        return 0.0  # every coordinate on its bound: any mu <= min (G w)_i works
    xf = np.where(free, x, 0.0)
    mu = float(xf @ Gw) / float(xf.sum())
    lower = float(np.max(mu - Gw, initial=0.0))
    equal = float(np.max(np.abs(Gw[free] - mu)))
    return max(lower, equal) / scale_of(G)


class BruteForce(NamedTuple):
    weights: np.ndarray
    objective: float
    support: tuple
    candidates: int  # feasible supports found


def brute_force(
    G: np.ndarray, c: np.ndarray | None = None, feas_tol=1e-10, max_tasks=8
) -> BruteForce:
    """Enumerate every nonempty free set S; keep the best feasible KKT point.

    On S the weights solve   min (c + x)^T G (c + x)  s.t.  x = 0 off S, sum x_S = s,
    whose optimality system is  [G_SS  -1; 1^T  0] [x_S; mu] = [-(G c)_S; s].
    It is solved by least squares (lstsq), so singular G_SS is fine: a convex quadratic
    bounded below on an affine set attains its minimum, so the system is consistent, and
    for the minimal support of an optimum its solution is unique (two solutions would
    differ by a null direction of J^T with zero sum, along which a coordinate can be
    moved to its bound). Candidates with x_S >= -feas_tol are clipped to the feasible
    set and scored by their true objective, so every score is an upper bound on the
    optimum and the minimal-support candidate attains it.
    """
    K = G.shape[0]
    assert K <= max_tasks, "brute force is exponential in K: 2^K - 1 supports"
    c = np.zeros(K) if c is None else np.asarray(c, dtype=np.float64)
    s = 1.0 - float(np.sum(c))
    Gs = G / scale_of(G)
    Gc = Gs @ c
    best = None
    found = 0
    for size in range(1, K + 1):
        for S in itertools.combinations(range(K), size):
            idx = np.array(S)
            A = np.zeros((size + 1, size + 1))
            A[:size, :size] = Gs[np.ix_(idx, idx)]
            A[:size, size] = -1.0
            A[size, :size] = 1.0
            rhs = np.concatenate([-Gc[idx], [s]])
            xs = np.linalg.lstsq(A, rhs, rcond=None)[0][:size]
            if not np.all(np.isfinite(xs)) or xs.min() < -feas_tol * max(s, 1e-300):
                continue
            xs = np.clip(xs, 0.0, None)
            if xs.sum() <= 0.0:
                if s > 0.0:
                    continue
                xs = np.zeros(size)
            else:
                xs *= s / xs.sum()
            w = c.copy()
            w[idx] += xs
            found += 1
            val = objective(G, w)
            if best is None or val < best[1]:
                best = (w, val, S)
    assert best is not None, "no feasible support: the enumeration is broken"
    return BruteForce(best[0], best[1], best[2], found)


class CvxpyReference(NamedTuple):
    weights: np.ndarray  # cvxpy's point as returned
    objective: float  # objective of that point projected onto the feasible set
    feasible: bool  # whether cvxpy's own point is feasible to feas_tol
    status: str
    kkt_residual: float  # of the projected point (cvxpy is not a perfect oracle)

    @property
    def usable_as_bound(self) -> bool:
        return self.feasible and self.status == "optimal"


def cvxpy_reference(G: np.ndarray, c: np.ndarray | None = None, feas_tol=1e-8) -> CvxpyReference:
    """Solve the QP with cvxpy on G / max G_ii, factored by eigh (eigenvalues clipped at 0).

    The solver is Clarabel (interior point, tolerances ~1e-8) where installed, else
    cvxpy's default: not OSQP, which paretomtl's own method="cvxpy" route uses by
    default, and whose 1e-5 tolerances leave errors of that size.

    The objective is reported for cvxpy's point after projection onto the feasible set
    (clip to c, rescale the excess to sum s), so it is the value of a feasible point and
    a valid upper bound on the optimum; ``usable_as_bound`` additionally requires
    cvxpy's raw point to be feasible and its status optimal.
    """
    import cvxpy as cp  # lazily: only the tests that need it pay for the import

    K = G.shape[0]
    c = np.zeros(K) if c is None else np.asarray(c, dtype=np.float64)
    Gs = G / scale_of(G)
    evals, evecs = np.linalg.eigh(0.5 * (Gs + Gs.T))
    L = evecs * np.sqrt(np.clip(evals, 0.0, None))
    w = cp.Variable(K)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(L.T @ w)), [w >= c, cp.sum(w) == 1])
    try:
        with warnings.catch_warnings():
            # "Solution may be inaccurate": reported through the status, checked below.
            warnings.simplefilter("ignore", UserWarning)
            solver = cp.CLARABEL if cp.CLARABEL in cp.installed_solvers() else None
            problem.solve(solver=solver)
    except cp.error.SolverError:
        return CvxpyReference(np.full(K, np.nan), np.inf, False, "solver_error", np.inf)
    if w.value is None:
        return CvxpyReference(np.full(K, np.nan), np.inf, False, str(problem.status), np.inf)
    raw = np.asarray(w.value, dtype=np.float64)
    feasible = feasibility_error(raw, c) <= feas_tol
    s = 1.0 - float(np.sum(c))
    x = np.clip(raw - c, 0.0, None)
    x = x * (s / x.sum()) if x.sum() > 0 else np.full(K, s / K)
    proj = c + x
    return CvxpyReference(
        raw, objective(G, proj), bool(feasible), str(problem.status), kkt_residual(G, c, proj)
    )


def pd_margin(G: np.ndarray) -> float:
    """Smallest eigenvalue of G / max G_ii (how far G is from singular)."""
    return float(np.linalg.eigvalsh(G / scale_of(G)).min())


def waterfill(a2: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Optimum for a diagonal G = diag(a2) > 0: w_i = max(c_i, t / a2_i), sum w = 1.

    KKT for a diagonal G: a2_i w_i = mu where w_i > c_i and a2_i c_i >= mu where
    w_i = c_i, i.e. w_i = max(c_i, mu / a2_i); sum_i w_i is continuous and increasing
    in mu, so mu is found by bisection (on a log scale, then linearly).
    """

    def total(mu):
        return float(np.maximum(c, mu / a2).sum())

    lo, hi = 0.0, float(np.max(a2))  # total(hi) >= sum_i max(c_i, a2_max / a2_i) >= 1
    while total(hi) < 1.0:
        hi *= 2.0
    for _ in range(400):
        mid = 0.5 * (lo + hi)
        if total(mid) < 1.0:
            lo = mid
        else:
            hi = mid
    w = np.maximum(c, hi / a2)
    free = w > c
    # Put the bisection's last rounding on the free coordinates, keeping w_i / a2_i's
    # ratios: sum over free of mu / a2_i = 1 - sum over bound of c_i.
    w[free] = (1.0 - c[~free].sum()) * (1.0 / a2[free]) / (1.0 / a2[free]).sum()
    return w
