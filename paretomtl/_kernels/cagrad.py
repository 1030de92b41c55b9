"""CAGrad's inner problem, exactly, as a one-dimensional search over bounded simplex QPs.

The inner problem  min_{w in simplex} b^T w + rho ||g_w||  (b = G 1 / K, rho = c ||g0||)
is, at its solution w*, also solved by the QP  min b^T w + (mu / 2) w^T G w  with
mu = rho / ||g_w*||; that QP is the lower-bounded simplex QP

    min z^T G z   subject to   z_i >= tau / K,  sum z = 1,   tau = 1 / (1 + mu),

with w = ((1 + mu) z - 1 / K) / mu, and the direction d = g0 + mu g_w = (1 + mu) g_z.
The distance psi(mu) = ||d(mu) - g0|| is non-decreasing in mu (a proximal path), so
mu* solves psi(mu) = rho. On a fixed support, e(mu) = (1 + mu) z(mu) - 1/K (the
coefficients of d - g0) is affine in mu, so two evaluations on the same support give
psi^2 as an exact quadratic: the root on that support is found in one step and
verified by one more evaluation; elsewhere a safeguarded (bisection) step is taken.
"""

import math

import numpy as np

from paretomtl._kernels._jit import entry, jit
from paretomtl._kernels.simplex_qp import solve_exact, wolfe

STATUS_CONVERGED = 0
STATUS_MAX_ITER = 1
STATUS_UNBOUNDED = 2  # psi stays below rho: the origin is in the hull (see caller)

_MU_CHECK = 1e4
_SMALL_CORRAL = 1e-4  # (as in simplex_qp)


@jit
def _gram_norm2(G, e):
    K = G.shape[0]
    v = 0.0
    for i in range(K):
        s = 0.0
        for j in range(K):
            s += G[i, j] * e[j]
        v += e[i] * s
    return max(v, 0.0)


@jit
def _evaluate(G, mu, qp_tol, qp_iter):
    """z(mu), e(mu) = (1 + mu) z - 1/K, psi(mu) = ||g_e||, and the support mask."""
    K = G.shape[0]
    tau = 1.0 / (1.0 + mu)
    c = np.full(K, tau / K)
    # Wolfe's entering test compares (G z)_j with the corral's level; those scale
    # with ||g_z||, which is ~tau times the gradients' at large mu: the tolerance
    # follows (an absolute one could not tell tiny tasks apart, 9 decades down).
    z, _, _, obj, kkt = solve_exact(G, c, qp_tol * tau, qp_iter)
    # Where every free coordinate's gradient is tiny next to the largest one, the
    # corral's 1 1^T augmentation drowns their differences (solve_exact rescues
    # that only when no bound is active; here every bound is > 0): solve again
    # with the augmentation at their scale and keep the better point.
    sigma = 0.0
    for i in range(K):
        if z[i] > c[i] and G[i, i] > sigma:
            sigma = G[i, i]
    if 0.0 < sigma < _SMALL_CORRAL:
        z2, _, _ = wolfe(G, c, qp_tol * tau * math.sqrt(sigma), qp_iter, sigma)
        v2 = _gram_norm2(G, z2)
        if v2 < obj:
            z, obj = z2, v2
    # At large mu the optimum's value is far below max_i G_ii and a certificate
    # that is small on G's scale can be large on the optimum's: solve again with
    # the augmentation at the optimum's scale and keep the better point.
    if 0.0 < obj < 1e-6 and kkt > 1e-6 * obj:
        z3, _, _ = wolfe(G, c, qp_tol * tau * math.sqrt(obj), 4 * qp_iter, obj)
        if _gram_norm2(G, z3) < obj:
            z = z3
    e = np.empty(K)
    free = np.zeros(K, dtype=np.bool_)
    for i in range(K):
        e[i] = (1.0 + mu) * z[i] - 1.0 / K
        free[i] = z[i] > c[i]
    return z, e, math.sqrt(_gram_norm2(G, e)), free


@jit
def _same(a, b):
    for i in range(a.shape[0]):
        if a[i] != b[i]:
            return False
    return True


@entry
def cagrad_search(G, rho, tol, max_iter, mu_start, mu_max):
    """Find mu* with psi(mu*) = rho on G scaled to max_i G_ii = 1, rho > 0, searching
    up from ``mu_start`` (times 16 each step) to ``mu_max``.

    Returns ``(z, mu, iterations, status, psi, nu, lam)``: z the bounded-QP solution
    at mu (the direction's weights are (1 + mu) z), ``nu`` and ``lam`` the min-norm
    value and point of the hull (MGDA's) when computed (mu* beyond 1e4, or no root
    below ``mu_max``), else -1 and zeros. ``status`` is STATUS_UNBOUNDED when psi < rho
    up to ``mu_max``.
    """
    K = G.shape[0]
    qp_tol = 1e-15 * K
    qp_iter = max(100, 20 * K)
    nu = -1.0
    lo = 0.0
    e_lo = np.zeros(K)
    psi_lo = 0.0
    f_lo = np.zeros(K, dtype=np.bool_)
    first = True
    hi = mu_start
    it = 0
    z, e_hi, psi_hi, f_hi = _evaluate(G, hi, qp_tol, qp_iter)
    it += 1
    while psi_hi < rho:
        lo, e_lo, psi_lo, f_lo = hi, e_hi, psi_hi, f_hi
        first = False
        if hi >= mu_max:
            lam, _, _, obj, _ = solve_exact(G, np.zeros(K), qp_tol, qp_iter)
            return z, hi, it, STATUS_UNBOUNDED, psi_hi, obj, lam
        hi *= 16.0
        z, e_hi, psi_hi, f_hi = _evaluate(G, hi, qp_tol, qp_iter)
        it += 1
    status = STATUS_MAX_ITER
    mu_best, z_best, psi_best = hi, z, psi_hi
    if abs(psi_hi - rho) <= tol * rho:
        status = STATUS_CONVERGED
    # The last two evaluations (a, b), for the exact model on a common support.
    mu_a, e_a, f_a = lo, e_lo, f_lo
    mu_b, e_b, f_b = hi, e_hi, f_hi
    have_a = not first
    while status != STATUS_CONVERGED and it < max_iter:
        mu = -1.0
        if have_a and _same(f_a, f_b):
            # e is affine in mu on this support: psi^2 = rho^2 is a quadratic in s,
            # mu = mu_a + s (mu_b - mu_a); take its root inside the bracket.
            de = e_b - e_a
            a = _gram_norm2(G, de)
            bb = 0.0
            for i in range(K):
                t = 0.0
                for j in range(K):
                    t += G[i, j] * de[j]
                bb += e_a[i] * t
            cc = _gram_norm2(G, e_a) - rho * rho
            if a > 0.0:
                disc = bb * bb - a * cc
                if disc >= 0.0:
                    root = math.sqrt(disc)
                    for s in ((-bb + root) / a, (-bb - root) / a):
                        cand = mu_a + s * (mu_b - mu_a)
                        if lo < cand < hi:
                            mu = cand
                            break
        if mu < 0.0:
            if first:
                # secant on psi from (0, 0): psi ~ proportional to mu near 0
                mu = hi * rho / psi_hi if psi_hi > 0.0 else 0.5 * hi
                if not lo < mu < hi:
                    mu = 0.5 * (lo + hi)
            elif hi > 4.0 * lo:
                mu = math.sqrt(lo * hi)
            else:
                mu = lo + (hi - lo) * (rho - psi_lo) / (psi_hi - psi_lo)
                if not lo < mu < hi:
                    mu = 0.5 * (lo + hi)
        if not lo < mu < hi:
            break  # the bracket has shrunk to rounding
        z, e, psi, f = _evaluate(G, mu, qp_tol, qp_iter)
        it += 1
        mu_a, e_a, f_a = mu_b, e_b, f_b
        mu_b, e_b, f_b = mu, e, f
        have_a = True
        if abs(psi - rho) < abs(psi_best - rho):
            mu_best, z_best, psi_best = mu, z, psi
        if abs(psi - rho) <= tol * rho:
            status = STATUS_CONVERGED
            break
        if psi < rho:
            lo, psi_lo = mu, psi
            first = False
        else:
            hi, psi_hi = mu, psi
        if hi - lo <= 4e-16 * hi:
            break
    lam = np.zeros(K)
    if mu_best > _MU_CHECK:
        lam, _, _, obj, _ = solve_exact(G, np.zeros(K), qp_tol, qp_iter)
        nu = obj
    return z_best, mu_best, it, status, psi_best, nu, lam


@entry
def inner_certificate(G, z, mu, rho):
    """The inner weights w* = ((1 + mu) z - 1/K) / mu (exact zeros where z sits on its
    bound), the inner problem's KKT residual at w* and its objective F(w*).

    With n = ||g_w||, gamma = G 1 / K + rho G w / n and lambda = w . gamma, the
    residual is max(|gamma_i - lambda| where w_i > 0, lambda - gamma_i elsewhere),
    relative to max_i G_ii (inf when g_w = 0).
    """
    K = G.shape[0]
    bound = (1.0 / (1.0 + mu)) / K  # as _evaluate forms it: z_i >= bound exactly
    w = np.zeros(K)
    total = 0.0
    for i in range(K):
        if z[i] > bound:
            w[i] = max(((1.0 + mu) * z[i] - 1.0 / K) / mu, 0.0)
            total += w[i]
    scale = 0.0
    for i in range(K):
        w[i] /= total
        if G[i, i] > scale:
            scale = G[i, i]
    gw = np.empty(K)
    b = np.empty(K)
    nsq = 0.0
    lin = 0.0
    for i in range(K):
        s = 0.0
        t = 0.0
        for j in range(K):
            s += G[i, j] * w[j]
            t += G[i, j]
        gw[i] = s
        b[i] = t / K
        nsq += w[i] * s
        lin += w[i] * b[i]
    n = math.sqrt(max(nsq, 0.0))
    objective = lin + rho * n
    if n == 0.0:
        return w, math.inf, objective
    lam = 0.0
    for i in range(K):
        lam += w[i] * (b[i] + rho * gw[i] / n)
    res = 0.0
    for i in range(K):
        g = b[i] + rho * gw[i] / n
        v = abs(g - lam) if w[i] > 0.0 else max(lam - g, 0.0)
        if v > res:
            res = v
    return w, res / scale, objective
