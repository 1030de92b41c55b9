"""The quadratic program of Priority-Constrained Descent, in Gram space.

With N the Gram matrix of the normalised gradients (task 0 the primary one) and the
secondary tasks j = 1..K-1, PCD's direction is d = g_0 + sum_j mu_j g_j where mu >= 0
solves the dual of its projection problem,

    min_{mu >= 0} 1/2 mu^T Q mu - b^T mu,    Q = N[1:, 1:],  b_j = tau_j N_jj - N_j0,

whose KKT conditions are those of the primal: the slack s = Q mu - b of every
constraint g_j^T d >= tau_j ||g_j||^2 is >= 0, mu >= 0, mu_j s_j = 0. The solver
divides each constraint by ||g_j|| first (see :func:`solve_pcd_qp`).

It is solved by the dual active-set method of Goldfarb & Idnani (Math. Programming 27,
1983) for an identity Hessian: the active set A holds the constraints met with
equality, Q_AA is kept as an upper Cholesky factor (updated by one column on entry,
by Givens rotations on exit), and each round takes the most violated constraint p
into A. Its entry moves mu along (e_p - r on A), r = Q_AA^{-1} Q_Ap, whose effect on
the slack of p is the squared norm z2 = Q_pp - Q_pA r of the part of g_p off the span
of the active gradients. The move stops where p is met (the full step, -s_p / z2) or
where an active multiplier reaches 0 first (the partial step: that constraint leaves
A and p is tried again). When g_p is in the span (z2 <= dep_tol Q_pp) and no active
multiplier decreases along the move (r <= 0), the ray mu + t (e_p - r), t >= 0,
stays feasible and the dual objective falls without bound: v = e_p - r >= 0 is a
Farkas certificate, sum_j v_j g_j = 0 and sum_j v_j tau_j ||g_j||^2 > 0, and the
constraints cannot all hold (reported as ROUTE_INFEASIBLE).

Private: :mod:`paretomtl.solvers.pcd` validates the input and calls :func:`pcd_step`
on contiguous float64 arrays.
"""

import numpy as np

from paretomtl._kernels._jit import entry, jit
from paretomtl._kernels.linalg import chol_append, chol_delete, chol_solve

ROUTE_QP = 0
ROUTE_INFEASIBLE = 1
ROUTE_ZERO_PRIMARY = 2
ROUTE_ZERO_DIRECTION = 3


@jit
def _back(R, f, y, out):
    """Solve R[:f, :f] out = y (upper triangular), y the column written by chol_append."""
    for i in range(f - 1, -1, -1):
        t = R[i, f]
        for q in range(i + 1, f):
            t -= R[i, q] * out[q]
        out[i] = t / R[i, i]


@jit
def _slacks(Q, b, act, mu, f, p_extra, s):
    """s = Q mu - b, mu supported on the active set and, when p_extra >= 0, on p_extra."""
    n = b.shape[0]
    for j in range(n):
        s[j] = -b[j]
    for q in range(f):
        a = act[q]
        m = mu[a]
        row = Q[a]
        for j in range(n):
            s[j] += m * row[j]
    if p_extra >= 0 and mu[p_extra] != 0.0:
        m = mu[p_extra]
        row = Q[p_extra]
        for j in range(n):
            s[j] += m * row[j]


@jit
def _residual(s, mu, in_act, ref):
    """The KKT residual: the largest violation of s >= 0, and of s = 0 where mu > 0,
    relative to ``ref + sum mu``."""
    n = s.shape[0]
    res = 0.0
    total = ref
    for j in range(n):
        total += mu[j]
        if mu[j] > 0.0 or in_act[j]:
            res = max(res, abs(s[j]))
        elif s[j] < 0.0:
            res = max(res, -s[j])
    return res / total if total > 0.0 else 0.0


@jit
def solve_pcd_qp(N, tau, tol, dep_tol, max_iter):
    """Solve PCD's QP on the K x K normalised Gram matrix N (N_00 > 0).

    Every secondary constraint is first divided by its gradient's norm r_j (zero
    gradients, whose constraint 0 >= 0 always holds, are left out): the QP is solved on
    the unit gradients u_j = g_j / r_j, Q = (u_j^T u_k), b_j = tau_j r_j - u_j^T g_0,
    with mu_j = nu_j / r_j, so that each slack is a distance (a violation of u_j^T d >=
    tau_j r_j) whatever the norms, and a constraint's weight in the tolerances does
    not depend on its gradient's length.

    tau: K - 1 floats in [0, 1]; tol: a constraint counts as met when its slack is
    above ``-tol * (ref + sum nu)``, ref = ||g_0|| + max_j tau_j r_j (a bound on the
    size of d and of the slacks' terms); dep_tol: u_p counts as in the span of the
    active unit gradients when the squared norm of its part off that span is at most
    dep_tol; max_iter: cap on the steps.

    Returns ``(mu, infeasible, certificate, iterations, capped, residual)``: the K - 1
    multipliers of the original constraints (zero when infeasible), whether the
    constraints were found infeasible, the Farkas vector v on the original
    gradients (K - 1 entries, zero unless infeasible), the steps taken, whether the
    cap stopped the run, and the KKT residual (see :func:`_residual`, with the slacks
    of the unit-gradient constraints; for an infeasible run, of the last iterate).
    """
    K = N.shape[0]
    n = K - 1
    mu = np.zeros(n)
    cert = np.zeros(n)
    if n == 0:
        return mu, False, cert, 0, False, 0.0
    r0 = np.sqrt(N[0, 0])
    rn = np.empty(n)
    inv = np.empty(n)
    ref = r0
    for j in range(n):
        d = N[j + 1, j + 1]
        rn[j] = np.sqrt(d) if d > 0.0 else 0.0
        inv[j] = 1.0 / rn[j] if rn[j] > 0.0 else 0.0
        ref = max(ref, r0 + tau[j] * rn[j])
    Q = np.empty((n, n))
    b = np.empty(n)
    for j in range(n):
        for k in range(n):
            Q[j, k] = N[j + 1, k + 1] * inv[j] * inv[k]
        b[j] = (tau[j] * rn[j] - N[j + 1, 0] * inv[j]) if rn[j] > 0.0 else 0.0
    R = np.zeros((n, n))
    act = np.empty(n, dtype=np.int64)
    in_act = np.zeros(n, dtype=np.bool_)
    nu = np.zeros(n)
    s = np.empty(n)
    col = np.empty(n)
    r = np.empty(n)
    f = 0
    it = 0
    capped = False
    infeasible = False
    p_open = -1  # a constraint with nu_p > 0 whose entry the cap interrupted
    while True:
        _slacks(Q, b, act, nu, f, p_open, s)
        total = ref
        for j in range(n):
            total += nu[j]
        atol = tol * total
        p = -1
        worst = -atol
        for j in range(n):
            if not in_act[j] and s[j] < worst:
                worst = s[j]
                p = j
        if p < 0:
            break
        if it >= max_iter:
            capped = True
            break
        slack_p = s[p]
        while True:
            it += 1
            for q in range(f):
                col[q] = Q[act[q], p]
            qpp = Q[p, p]
            z2 = chol_append(R, f, col, qpp)
            _back(R, f, col, r)  # col is scratch; R[:f, f] holds R^-T Q_Ap
            partial = np.inf
            k = -1
            for q in range(f):
                if r[q] > 0.0:
                    ratio = nu[act[q]] / r[q]
                    if ratio < partial:
                        partial = ratio
                        k = q
            full = np.inf
            if z2 > dep_tol * qpp:
                full = -slack_p / z2
            if k < 0 and full == np.inf:
                infeasible = True
                cert[p] = inv[p]
                for q in range(f):
                    cert[act[q]] = -r[q] * inv[act[q]]
                break
            t = min(partial, full)
            for q in range(f):
                nu[act[q]] -= t * r[q]
            nu[p] += t
            if full <= partial:
                R[f, f] = np.sqrt(z2)
                act[f] = p
                in_act[p] = True
                f += 1
                p_open = -1
                break
            # the partial step: constraint act[k] leaves, and p is tried again
            gone = act[k]
            nu[gone] = 0.0
            in_act[gone] = False
            chol_delete(R, f, k)
            for q in range(k, f - 1):
                act[q] = act[q + 1]
            f -= 1
            p_open = p
            t_s = -b[p] + nu[p] * qpp
            row = Q[p]
            for q in range(f):
                t_s += nu[act[q]] * row[act[q]]
            slack_p = t_s
            if it >= max_iter:
                capped = True
                break
        if infeasible or capped:
            break
    if infeasible:
        _slacks(Q, b, act, nu, f, p_open, s)
        res = _residual(s, nu, in_act, ref)
        return mu, True, cert, it, capped, res
    for j in range(n):
        if nu[j] < 0.0:
            nu[j] = 0.0
    _slacks(Q, b, act, nu, f, p_open, s)
    res = _residual(s, nu, in_act, ref)
    if f > 0 and p_open < 0:
        # Re-solve Q_AA nu_A = b_A from the factor (the moves above accumulate
        # rounding); keep it if every multiplier stays positive and it fits better.
        for q in range(f):
            col[q] = b[act[q]]
        chol_solve(R, f, col, r)
        ok = True
        for q in range(f):
            if not r[q] > 0.0:
                ok = False
        if ok:
            trial = np.zeros(n)
            for q in range(f):
                trial[act[q]] = r[q]
            s2 = np.empty(n)
            _slacks(Q, b, act, trial, f, -1, s2)
            res2 = _residual(s2, trial, in_act, ref)
            if res2 <= res:
                nu = trial
                res = res2
    for j in range(n):
        mu[j] = nu[j] * inv[j]
    return mu, False, cert, it, capped, res


@entry
def pcd_step(G, ema, beta, correction, eps, tau, precision, tol, dep_tol, max_iter):
    """One PCD step on the K x K Gram matrix G of the raw gradients.

    ``ema``: the moving average of the squared norms before this step; ``correction``
    = 1 - beta**step (step counted after this one); ``precision``: the relative
    precision of G, under which d~ counts as zero.

    Returns ``(new_ema, weights, route, mu, certificate, iterations, capped,
    residual, scales)``.
    """
    K = G.shape[0]
    new_ema = np.empty(K)
    scales = np.empty(K)
    for i in range(K):
        new_ema[i] = beta * ema[i] + (1.0 - beta) * G[i, i]
        den = np.sqrt(new_ema[i] / correction + eps)
        scales[i] = 1.0 / den if den > 0.0 else 0.0
    w = np.zeros(K)
    if not G[0, 0] > 0.0:
        return (
            new_ema,
            w,
            ROUTE_ZERO_PRIMARY,
            np.zeros(K - 1),
            np.zeros(K - 1),
            0,
            False,
            0.0,
            scales,
        )
    N = np.empty((K, K))
    for i in range(K):
        for k in range(K):
            N[i, k] = G[i, k] * scales[i] * scales[k]
    mu, infeasible, cert, it, capped, res = solve_pcd_qp(N, tau, tol, dep_tol, max_iter)
    route = ROUTE_INFEASIBLE if infeasible else ROUTE_QP
    v = np.empty(K)
    v[0] = 1.0
    for j in range(K - 1):
        v[j + 1] = mu[j]
    dsq = 0.0
    mag = 0.0
    for i in range(K):
        t = 0.0
        for k in range(K):
            t += N[i, k] * v[k]
        dsq += v[i] * t
        mag += abs(v[i]) * np.sqrt(N[i, i])
    if not dsq > precision * mag * mag:
        return new_ema, w, ROUTE_ZERO_DIRECTION, mu, cert, it, capped, res, scales
    factor = np.sqrt(G[0, 0] / dsq)
    for i in range(K):
        w[i] = v[i] * scales[i] * factor
    return new_ema, w, route, mu, cert, it, capped, res, scales
