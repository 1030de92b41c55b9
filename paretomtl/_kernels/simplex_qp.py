"""Exact and iterative solvers of the lower-bounded simplex QP on a Gram matrix.

    minimise  w^T G w   subject to  w_i >= c_i,  sum_i w_i = 1

With c = 0 this is MGDA's min-norm problem (the point of the convex hull of the task
gradients closest to the origin); with c > 0 it is PE-LTR's constrained Pareto step.

The exact solver is Wolfe's minimum-norm-point algorithm (Wolfe, "Finding the nearest
point in a polytope", Math. Programming 11, 1976), written for the bounded problem
directly: the "corral" is the set F of free coordinates (w_i > c_i); on F the weights
solve the equality-constrained problem

    min (c + x)^T G (c + x)   s.t.  x_i = 0 off F,  sum_F x_i = s = 1 - sum c,

whose solution is x_F = nu * M^{-1} 1 - M^{-1} (G c)_F with M = G_FF + 1 1^T and nu
fixed by the sum. M is positive definite exactly when the gradients in F are affinely
independent, which Wolfe's rules maintain, so its Cholesky factor is kept and updated
in O(|F|^2) per added or removed coordinate. A coordinate j enters when its multiplier
(G w)_j - mu is negative (mu the common value of (G w)_i on F); a minor cycle steps
towards the affine minimiser and drops the first coordinate that reaches its bound.
The method terminates in finitely many steps with the exact optimum (up to rounding).
"""

import numpy as np

from paretomtl._kernels._jit import entry, jit
from paretomtl._kernels.linalg import (
    chol_append,
    chol_delete,
    chol_factor,
    chol_solve,
    matvec,
)

STATUS_OPTIMAL = 0
STATUS_MAX_ITER = 1
STATUS_STALLED = 2  # rounding stops progress; the KKT residual says how close we are


@jit
def _slack(c):
    """``(1 - sum(c), any(c != 0))``: the weight left above the bounds, and whether
    there are bounds at all (c = 0 is MGDA)."""
    s = 1.0
    bounded = False
    for i in range(c.size):
        s -= c[i]
        if c[i] != 0.0:
            bounded = True
    return s, bounded


@jit
def _min(x):
    """The smallest entry of x (NaN if one is NaN), as ``np.min``."""
    m = x[0]
    if m != m:
        return m
    for i in range(1, x.size):
        v = x[i]
        if v != v:
            return v
        if v < m:
            m = v
    return m


@entry
def kkt_residual(G, w, c):
    """Return ``(mu, residual)`` for the bounded simplex QP at a feasible ``w``.

    mu is the weighted mean of (G w)_i over the free coordinates (the multiplier of
    the sum constraint); the residual is the largest violation of
    (G w)_i >= mu for all i and (G w)_i = mu where w_i > c_i.
    """
    K = G.shape[0]
    Gw = np.empty(K)
    matvec(G, w, Gw)
    s = 0.0
    acc = 0.0
    for i in range(K):
        x = w[i] - c[i]
        if x > 0.0:
            s += x
            acc += x * Gw[i]
    if s <= 0.0:
        # Every coordinate sits on its bound: any mu <= min (G w)_i satisfies KKT.
        return _min(Gw), 0.0
    mu = acc / s
    res = 0.0
    for i in range(K):
        if w[i] - c[i] > 0.0:
            r = abs(Gw[i] - mu)
        else:
            r = mu - Gw[i]
        if r > res:
            res = r
    return mu, res


@jit
def _affine_minimiser(R, k, e, h, s, u, z, x, shifted):
    """x = nu M^{-1} 1 - M^{-1} h with nu chosen so that sum(x) = s (h = 0 unless shifted)."""
    chol_solve(R, k, e, u)
    su = 0.0
    sz = 0.0
    if shifted:
        chol_solve(R, k, h, z)
        for i in range(k):
            sz += z[i]
    else:
        for i in range(k):
            z[i] = 0.0
    for i in range(k):
        su += u[i]
    nu = (s + sz) / su
    for i in range(k):
        x[i] = nu * u[i] - z[i]


# From this K on, the exact solver starts from a guessed corral (see _warm_start).
_WARM_START_K = 12


@jit
def _warm_start(G, c, Gc, s, bounded, aug, w, R, S, in_S):
    """Guess the optimal corral from the equality-constrained optimum; return its size.

    Solve the affine problem on all coordinates (one LAPACK factorisation); keep the
    coordinates whose solution is positive and solve again, until every coordinate
    is positive. The result, the affine minimiser of its corral with positive
    weights, is a valid state of Wolfe's method, often close to the optimum (exactly
    it when the optimum is interior, as for many roughly orthogonal gradients).
    Returns 0, leaving the buffers alone, when a system is singular (rank-deficient
    G): the caller then starts from a vertex.
    """
    K = G.shape[0]
    idx = np.empty(K, dtype=np.int64)  # the candidate corral, in its first n entries
    e = np.empty(K)
    for i in range(K):
        idx[i] = i
        e[i] = 1.0
    n = K
    for _ in range(8):
        M = np.empty((n, n))
        h = np.empty(n)
        for a in range(n):
            h[a] = Gc[idx[a]]
            for b in range(n):
                M[a, b] = G[idx[a], idx[b]] + aug
        ok, Rs = chol_factor(M)
        if not ok:
            return 0
        u = np.empty(n)
        z = np.empty(n)
        x = np.empty(n)
        _affine_minimiser(Rs, n, e, h, s, u, z, x, bounded)
        positive = 0
        for a in range(n):
            if x[a] > 0.0:
                idx[positive] = idx[a]  # keep the positive ones, in order
                positive += 1
        if positive == n:
            for i in range(K):
                w[i] = c[i]
                in_S[i] = False
            for a in range(n):
                w[idx[a]] += x[a]
                S[a] = idx[a]
                in_S[idx[a]] = True
                for b in range(n):
                    R[a, b] = Rs[a, b]
            return n
        n = positive
        if n == 0:
            return 0
    return 0


@jit
def wolfe(G, c, tol, max_iter, aug):
    """Exact minimiser of w^T G w over {w >= c, sum w = 1} (Wolfe's corral method).

    G must be symmetric PSD, scaled so that max_i G_ii is about 1; c >= 0 with
    s = 1 - sum(c) > 0. The corral's systems use M = G_FF + aug 1 1^T: any aug > 0
    gives the same affine minimiser, and aug of the order of the corral's squared
    norms keeps M well conditioned (1 for ordinary problems; the optimum's value
    when it is far below max_i G_ii). Returns ``(w, iterations, status)``.
    """
    K = G.shape[0]
    s, bounded = _slack(c)
    Gc = np.empty(K)
    matvec(G, c, Gc)
    e = np.empty(K)
    u = np.empty(K)
    z = np.empty(K)
    x = np.empty(K)
    w = np.empty(K)
    R = np.empty((K, K))
    S = np.empty(K, dtype=np.int64)
    in_S = np.empty(K, dtype=np.bool_)
    for i in range(K):
        e[i] = 1.0
        w[i] = c[i]
        in_S[i] = False
        for j in range(K):
            R[i, j] = 0.0
    k = 0
    if K >= _WARM_START_K:
        k = _warm_start(G, c, Gc, s, bounded, aug, w, R, S, in_S)
    if k == 0:
        # Start at the best vertex c + s e_j.
        j0 = 0
        best = np.inf
        for j in range(K):
            val = 2.0 * Gc[j] + s * G[j, j]
            if val < best:
                best = val
                j0 = j
        w[j0] += s
        R[0, 0] = np.sqrt(G[j0, j0] + aug)
        S[0] = j0
        in_S[j0] = True
        k = 1
    h = np.empty(K)
    col = np.empty(K)
    lam = np.empty(K)
    Gw = np.empty(K)
    it = 0
    status = STATUS_MAX_ITER
    while it < max_iter:
        it += 1
        # Major cycle: is some coordinate off the corral worth freeing?
        # G w = G c + sum over the corral of (w - c)_q G[q, :] (G symmetric).
        for j in range(K):
            Gw[j] = Gc[j]
        for i in range(k):
            q = S[i]
            xq = w[q] - c[q]
            if xq != 0.0:
                for j in range(K):
                    Gw[j] += xq * G[q, j]
        acc = 0.0
        for i in range(k):
            acc += (w[S[i]] - c[S[i]]) * Gw[S[i]]
        mu = acc / s
        jn = -1
        best = mu - tol
        for j in range(K):
            if not in_S[j] and Gw[j] < best:
                best = Gw[j]
                jn = j
        if jn < 0:
            status = STATUS_OPTIMAL
            break
        for i in range(k):
            col[i] = G[S[i], jn] + aug
        diag = G[jn, jn] + aug
        piv2 = chol_append(R, k, col, diag)
        if piv2 <= 1e-12 * diag:
            # jn lies in the affine hull of the corral to working precision, so its
            # pivot is rounding noise. Exchange instead: with p_jn = sum_i lam_i p_i
            # (sum lam = 1), moving weight along e_jn - lam changes the objective at
            # first order by 2 ((G w)_jn - mu) < 0 and at second order by almost
            # nothing; go until the first corral member reaches its bound and swap it
            # for jn (Wolfe's step with the degenerate direction made explicit).
            for i in range(k):
                u[i] = R[i, k]
                R[i, k] = 0.0
            for i in range(k - 1, -1, -1):
                t = u[i]
                for p in range(i + 1, k):
                    t -= R[i, p] * lam[p]
                lam[i] = t / R[i, i]
            t_max = np.inf
            out = -1
            for i in range(k):
                if lam[i] > 0.0:
                    t = (w[S[i]] - c[S[i]]) / lam[i]
                    if t < t_max:
                        t_max = t
                        out = i
            # Curvature along the exchange direction d = e_jn - lam.
            curv = G[jn, jn]
            for i in range(k):
                curv -= 2.0 * lam[i] * G[S[i], jn]
                for p in range(k):
                    curv += lam[i] * lam[p] * G[S[i], S[p]]
            slope = mu - Gw[jn]
            if out < 0 or curv * t_max > slope:
                # The bound is not reached before the objective turns up: nothing
                # more can be gained at working precision.
                status = STATUS_STALLED
                break
            for i in range(k):
                w[S[i]] -= t_max * lam[i]
            w[S[out]] = c[S[out]]
            w[jn] = c[jn] + t_max
            in_S[S[out]] = False
            S[out] = jn
            in_S[jn] = True
            # Refactor the corral from scratch (rare; O(k^3)).
            ok = True
            for q in range(k):
                for p in range(q):
                    col[p] = G[S[p], S[q]] + aug
                d2 = chol_append(R, q, col, G[S[q], S[q]] + aug)
                if d2 <= 0.0:
                    ok = False
                    break
                R[q, q] = np.sqrt(d2)
            if not ok:
                status = STATUS_STALLED
                break
            _renormalise(w, c, S, k, s)
        else:
            R[k, k] = np.sqrt(piv2)
            S[k] = jn
            in_S[jn] = True
            k += 1
        # Minor cycles: move to the affine minimiser of the corral, dropping
        # coordinates that reach their bound on the way.
        stalled = False
        while it < max_iter:
            for i in range(k):
                h[i] = Gc[S[i]]
            _affine_minimiser(R, k, e, h, s, u, z, x, bounded)
            inside = True
            for i in range(k):
                if x[i] <= 0.0:
                    inside = False
                    break
            if inside:
                for i in range(k):
                    w[S[i]] = c[S[i]] + x[i]
                _renormalise(w, c, S, k, s)
                break
            it += 1
            theta = 1.0
            for i in range(k):
                if x[i] <= 0.0:
                    cur = w[S[i]] - c[S[i]]
                    den = cur - x[i]
                    t = cur / den if den > 0.0 else 0.0
                    if t < theta:
                        theta = t
            for i in range(k):
                cur = w[S[i]] - c[S[i]]
                w[S[i]] = c[S[i]] + cur + theta * (x[i] - cur)
            # Drop every coordinate at (or numerically below) its bound.
            removed_new = False
            i = k - 1
            while i >= 0:
                j = S[i]
                if w[j] - c[j] <= 1e-15 * s:
                    w[j] = c[j]
                    in_S[j] = False
                    if j == jn and theta == 0.0:
                        removed_new = True
                    chol_delete(R, k, i)
                    for q in range(i, k - 1):
                        S[q] = S[q + 1]
                    k -= 1
                i -= 1
            if k == 0:
                # Rounding removed everything (cannot happen in exact arithmetic):
                # fall back to the entering vertex.
                for j in range(K):
                    w[j] = c[j]
                w[jn] += s
                R[0, 0] = np.sqrt(G[jn, jn] + aug)
                S[0] = jn
                in_S[jn] = True
                k = 1
                stalled = True
                break
            if removed_new:
                # The entering coordinate left at once without moving w: the corral
                # is optimal to working precision.
                stalled = True
                break
            _renormalise(w, c, S, k, s)
        if stalled:
            status = STATUS_STALLED
            break
    _renormalise(w, c, S, k, s)
    _refine(G, c, w, R, S, k)
    return w, it, status


@jit
def _renormalise(w, c, S, k, s):
    """Rescale the free part of w so that it sums to s exactly."""
    tot = 0.0
    for i in range(k):
        tot += w[S[i]] - c[S[i]]
    if tot > 0.0:
        for i in range(k):
            w[S[i]] = c[S[i]] + (w[S[i]] - c[S[i]]) * (s / tot)


@jit
def _refine(G, c, w, R, S, k):
    """Iterative refinement of the corral's weights (at most two steps).

    The residual rho_i = (G w)_i - mu on the corral is computed in working precision;
    the correction solves G_FF d = -rho + t 1 with sum d = 0 through the same factor.
    A step is kept only when it leaves the weights feasible and lowers the residual.
    """
    if k < 2:
        return
    K = w.size
    e = np.empty(k)
    for i in range(k):
        e[i] = 1.0
    rho = np.empty(k)
    u = np.empty(k)
    z = np.empty(k)
    d = np.empty(k)
    trial = np.empty(K)
    Gw = np.empty(K)
    _, res = kkt_residual(G, w, c)
    for _ in range(2):
        matvec(G, w, Gw)
        s = 0.0
        acc = 0.0
        for i in range(k):
            x = w[S[i]] - c[S[i]]
            s += x
            acc += x * Gw[S[i]]
        mu = acc / s
        for i in range(k):
            rho[i] = Gw[S[i]] - mu
        # shifted = True, passed as a value (k > 1 holds here): a literal True would
        # make numba compile a second version of _affine_minimiser.
        _affine_minimiser(R, k, e, rho, 0.0, u, z, d, k > 1)
        for i in range(K):
            trial[i] = w[i]
        ok = True
        for i in range(k):
            v = w[S[i]] + d[i]
            if v <= c[S[i]]:
                ok = False
                break
            trial[S[i]] = v
        if not ok:
            return
        _renormalise(trial, c, S, k, s)
        _, res_new = kkt_residual(G, trial, c)
        if res_new >= res:
            return
        for i in range(K):
            w[i] = trial[i]
        res = res_new


@entry
def frank_wolfe(G, w0, tol, max_iter):
    """Frank-Wolfe with exact line search for min w^T G w on the simplex.

    Stops when the duality gap w^T G w - min_j (G w)_j is at most ``tol`` or after
    ``max_iter`` iterations. Returns ``(w, iterations, converged)``.
    """
    K = G.shape[0]
    w = w0.copy()
    Gw = np.empty(K)
    matvec(G, w, Gw)
    it = 0
    converged = False
    while True:
        v = 0.0
        for i in range(K):
            v += w[i] * Gw[i]
        j = 0
        for i in range(1, K):
            if Gw[i] < Gw[j]:
                j = i
        gap = v - Gw[j]
        if gap <= tol:
            converged = True
            break
        if it >= max_iter:
            break
        it += 1
        den = v - 2.0 * Gw[j] + G[j, j]
        gamma = 1.0 if den <= 0.0 else min(1.0, gap / den)
        for i in range(K):
            w[i] *= 1.0 - gamma
            Gw[i] = (1.0 - gamma) * Gw[i] + gamma * G[i, j]
        w[j] += gamma
    return w, it, converged


# 1 - sum(c) at or below this is rounding: the bounds pin the weights to c.
_PINNED = 1e-13

# Squared norms (relative to max_i G_ii) of the answer's gradients below which
# solve_exact solves again at their scale.
_SMALL_CORRAL = 1e-4


@jit
def _objective(G, w):
    K = G.shape[0]
    v = 0.0
    for i in range(K):
        if w[i] != 0.0:
            t = 0.0
            for j in range(K):
                t += G[i, j] * w[j]
            v += w[i] * t
    return v


@entry
def solve_exact(G, c, tol, max_iter):
    """The whole exact route in one compiled call (Python overhead is the budget).

    Scales G by its largest diagonal entry, handles the closed-form cases, runs
    :func:`wolfe` otherwise, and certifies the answer. ``c`` all zero means MGDA.
    Returns ``(w, iterations, status, objective, kkt_residual)``; the objective is
    w^T G w on the caller's scale, the residual relative to max_i G_ii.
    """
    K = G.shape[0]
    s, bounded = _slack(c)
    scale = 0.0
    n_zero = 0
    for i in range(K):
        if G[i, i] > scale:
            scale = G[i, i]
        if G[i, i] == 0.0:
            n_zero += 1
    it = 0
    status = STATUS_OPTIMAL
    pinned = s <= _PINNED
    Gs = G
    if scale > 0.0:
        Gs = np.empty((K, K))
        for i in range(K):
            for j in range(K):
                Gs[i, j] = G[i, j] / scale
    w = np.empty(K)
    if pinned or scale <= 0.0 or K == 1:
        # Pinned: bounds summing to one (within rounding), the single feasible point;
        # its rounding excess, if any, is spread evenly so that w >= c holds exactly.
        # Else zero gradients (every point optimal: take the most even one), or one task.
        share = (max(s, 0.0) if pinned else s) / K
        for i in range(K):
            w[i] = c[i] + share
    else:
        if not bounded and n_zero > 0:
            # A zero gradient puts the origin in the hull: spread over the zero rows.
            for i in range(K):
                w[i] = 1.0 / n_zero if G[i, i] == 0.0 else 0.0
        elif not bounded and K == 2:
            den = Gs[0, 0] + Gs[1, 1] - 2.0 * Gs[0, 1]  # ||g_1 - g_2||^2
            if den > 0.0:
                a = min(1.0, max(0.0, (Gs[1, 1] - Gs[0, 1]) / den))
            elif Gs[0, 0] != Gs[1, 1]:
                # The two gradients coincide to rounding in G: take the shorter.
                a = 1.0 if Gs[0, 0] < Gs[1, 1] else 0.0
            else:
                a = 0.5
            w[0] = a
            w[1] = 1.0 - a
        else:
            w, it, status = wolfe(Gs, c, tol, max_iter, 1.0)
            sigma = 0.0
            for i in range(K):
                if w[i] > 0.0 and Gs[i, i] > sigma:
                    sigma = Gs[i, i]
            if 0.0 < sigma < _SMALL_CORRAL:
                # Every gradient in the answer is tiny next to the largest one: next
                # to the 1 1^T term their differences drown in rounding. Solve again
                # with the augmentation and tolerance at their scale; keep the better.
                w2, it2, status2 = wolfe(Gs, c, tol * np.sqrt(sigma), max_iter, sigma)
                it += it2
                if _objective(Gs, w2) < _objective(Gs, w):
                    w, status = w2, status2
    # The certificate; at pinned bounds there is nothing to certify (one point).
    res = 0.0 if pinned else kkt_residual(Gs, w, c)[1]
    obj = 0.0
    for i in range(K):
        for j in range(K):
            obj += w[i] * G[i, j] * w[j]
    return w, it, status, max(obj, 0.0), res  # a squared norm: no rounding below 0
