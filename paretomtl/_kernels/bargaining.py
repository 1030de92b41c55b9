"""Newton's method for the power equation B v = c v^(-p), v > 0 (Nash-MTL, FairGrad).

The equation is the stationarity condition of the strictly convex function

    Phi(v) = 1/2 v^T B v + sum_i c_i h(v_i),   h'(v) = -v^(-p),   h''(v) = p v^(-p-1) > 0,

(h = -log v for p = 1, h = -(v^(1-p) - 1) / (1 - p) otherwise; c > 0), so it has at
most one solution, and Newton's method with a backtracking line search on Phi finds it
when it exists. The caller passes the problem G w = w^(-p) rescaled task by task
(w = s v with s_i = G_ii^(-1/(1+p)), B = S G S, c = s^(1-p)), so that v = 1 solves it
for orthogonal gradients and every v_i is of order one. Each step solves the Newton
system in the scaled variables x = D^{-1} v, D = diag(sqrt(v^(p+1) / (p c))), whose
matrix D B D + I has every eigenvalue >= 1: its Cholesky factorisation never fails.
The line search computes Phi's change from the Newton decrement and the remainders
of h beyond its tangent (a series where they are small), not as the difference of
two rounded values of Phi, so that it still sees progress far below Phi's rounding.
"""

import math

import numpy as np

from paretomtl._kernels._jit import entry, jit
from paretomtl._kernels.linalg import chol_factor, chol_solve

STATUS_CONVERGED = 0
STATUS_MAX_ITER = 1
STATUS_STALLED = 2  # rounding stops progress before the residual reaches tol
STATUS_DIVERGING = 3  # weights beyond 1e150: no solution (the origin is in the hull)

_EPS = 2.220446049250313e-16
_HUGE = 1e150
# Rounding in B v excuses a residual above tol only up to this: beyond it the
# cancellation itself says the weights are running away (no solution).
_ROUNDING_CAP = 1e-6


@jit
def _h_remainder(v, x, p):
    """h(v (1 + x)) - h(v) - h'(v) v x for x > -1: the part of h's change beyond
    its tangent, v^(1-p) phi(x) with phi(x) = x - ((1 + x)^(1-p) - 1) / (1 - p)
    (x - log1p(x) for p = 1), by its series where the two terms would cancel."""
    if abs(x) < 1e-3:
        a = 0.5 * p
        phi = 0.0
        term = x * x
        for k in range(2, 7):
            phi += a * term
            a *= -(p + k - 1.0) / (k + 1.0)
            term *= x
    else:
        q = 1.0 - p
        if abs(q) < 1e-12:
            phi = x - math.log1p(x)
        else:
            phi = x - math.expm1(q * math.log1p(x)) / q
    return v ** (1.0 - p) * phi


@jit
def _residual(B, c, v, p, r, Bv):
    """r_i = v_i^p (B v)_i / c_i - 1 (also writes B v); returns ``(max |r_i|,
    max |r_i| / bound_i)`` where bound_i is what rounding in B v alone can leave."""
    K = B.shape[0]
    worst = 0.0
    ratio = 0.0
    for i in range(K):
        s = 0.0
        a = 0.0
        for j in range(K):
            t = B[i, j] * v[j]
            s += t
            a += abs(t)
        Bv[i] = s
        f = v[i] ** p / c[i]
        r[i] = f * s - 1.0
        e = abs(r[i])
        if e > worst:
            worst = e
        bound = 4.0 * (K + 2) * _EPS * (f * a + 1.0)
        if e / bound > ratio:
            ratio = e / bound
    return worst, ratio


@entry
def power_newton(B, c, p, v0, tol, max_iter):
    """Solve B v = c v^(-p), v > 0, from the start ``v0 > 0``.

    Stops when max_i |v_i^p (B v)_i / c_i - 1| <= tol, or within a small multiple of
    what rounding in B v allows if that is below 1e-6. Returns ``(v, iterations,
    status, residual)`` with the residual max_i |v_i^p (B v)_i / c_i - 1| at v.
    """
    K = B.shape[0]
    v = v0.copy()
    r = np.empty(K)
    Bv = np.empty(K)
    d = np.empty(K)
    rhs = np.empty(K)
    u = np.empty(K)
    step = np.empty(K)
    M = np.empty((K, K))
    res, ratio = _residual(B, c, v, p, r, Bv)
    it = 0
    status = STATUS_MAX_ITER
    while it < max_iter:
        if res <= tol or (ratio <= 1.0 and res <= _ROUNDING_CAP):
            status = STATUS_CONVERGED
            break
        it += 1
        # gradient F_i = (B v)_i - c_i v_i^-p = c_i v_i^-p r_i; Hessian B + p diag(c v^(-p-1));
        # D_ii = sqrt(v_i^(p+1) / (p c_i)); (D B D + I) u = D F; step = -D u.
        for i in range(K):
            d[i] = math.sqrt(v[i] ** (p + 1.0) / (p * c[i]))
            rhs[i] = d[i] * c[i] * (v[i] ** (-p)) * r[i]
        for i in range(K):
            for j in range(K):
                M[i, j] = d[i] * B[i, j] * d[j]
            M[i, i] += 1.0
        ok, R = chol_factor(M)
        if not ok:  # cannot happen for PSD B: eigenvalues >= 1
            status = STATUS_STALLED
            break
        chol_solve(R, K, rhs, u)
        dec = 0.0
        for i in range(K):
            dec += u[i] * rhs[i]
            step[i] = -d[i] * u[i]
        # Phi(v + t step) - Phi(v) = t step.F + t^2/2 step.B step + sum c_i rem_i with
        # step.F = -dec and rem_i the remainder of h beyond its tangent (no cancellation).
        quad = 0.0
        for i in range(K):
            s = 0.0
            for j in range(K):
                s += B[i, j] * step[j]
            quad += step[i] * s
        # Largest step keeping v > 0 (a fraction of the way to the boundary).
        t = 1.0
        for i in range(K):
            if step[i] < 0.0 and -step[i] * t >= 0.995 * v[i]:
                t = 0.995 * v[i] / -step[i]
        accepted = False
        for _ in range(60):
            change = -t * dec + 0.5 * t * t * quad
            for i in range(K):
                change += c[i] * _h_remainder(v[i], t * step[i] / v[i], p)
            if change <= -0.25 * t * dec:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            status = STATUS_STALLED
            break
        big = 0.0
        for i in range(K):
            v[i] += t * step[i]
            if v[i] > big:
                big = v[i]
        res, ratio = _residual(B, c, v, p, r, Bv)
        if big > _HUGE:
            status = STATUS_DIVERGING
            break
    if status == STATUS_MAX_ITER and (res <= tol or (ratio <= 1.0 and res <= _ROUNDING_CAP)):
        status = STATUS_CONVERGED
    return v, it, status, res
