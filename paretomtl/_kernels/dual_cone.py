"""Exact projections onto the dual cone of the task gradients, in Gram space.

For a Gram matrix G = J J^T and a weight vector u, the projection of J^T u onto the
dual cone {x : J x >= 0} is J^T v with

    v = argmin_{v >= u} v^T G v            (KKT: G v >= 0, v >= u, (v - u)_i (G v)_i = 0)

(Quinton & Rey 2024, Proposition 1). With v = u + x this is a non-negative least
squares problem in Gram form, min_{x >= 0} ||J^T (u + x)||^2, solved here by the
Lawson-Hanson active-set method: the free set F holds the coordinates with x_i > 0,
on which the multipliers (G v)_F vanish. Each round enters the index j with the most
negative multiplier (G v)_j (ties to the lowest index) together with every other
index whose multiplier is at most half of it, in index order (entering several at
once saves rounds, each of which costs O(K |F|)); then x moves towards the optimum
on F, and a step that would push a coordinate to or below 0 stops at the first one
and drops it, as does an entering coordinate whose optimum on F is not positive.
If no entering index stays, the next round enters j alone, which in exact
arithmetic always stays: its gradient is never in the span of the free ones (every
free g_i is orthogonal to d = J^T v while <g_j, d> < 0), so G_FF stays positive
definite and its Cholesky factor is updated in O(|F|^2) per change. The objective
decreases strictly from round to round, so no free set repeats.

Rounding can make an entering gradient numerically dependent on the free ones
(duplicated or near-duplicated tasks): its new pivot is then tiny and the index is
set aside ("blocked") until the free set loses a member; if the run ends with a
blocked index whose multiplier is still below -1e-9 (relative), the status says so
(STATUS_STALLED), and the residual measures the violation either way.

Private: :mod:`paretomtl.solvers._dual_cone` validates the input and calls these on
contiguous float64 arrays.
"""

import numpy as np

from paretomtl._kernels._jit import entry, jit
from paretomtl._kernels.linalg import chol_append, chol_delete, chol_solve

STATUS_OPTIMAL = 0
STATUS_MAX_ITER = 1
STATUS_STALLED = 2

# An entering column whose squared pivot is at most this fraction of its diagonal
# entry is numerically in the span of the free columns (its angle to that span is
# below about 3e-7 rad; cancellation in the pivot is about 1e-16 of the diagonal).
_DEPENDENT = 1e-13
# A blocked index whose multiplier stays below -_STALL * max_i G_ii * ||u||_1 at the end
# marks the row STATUS_STALLED (smaller violations are the rounding of G v itself).
_STALL = 1e-9
# A round enters every index whose multiplier is at most this fraction of the most
# negative one (measured on MTL-like and rank-deficient Gram matrices, K = 32..128:
# 0.5 is within 10 % of 0.2 and ahead of 0.8; 0, all negatives, is twice as slow at
# K = 128, most of its entries being dropped again).
_ENTER = 0.5


@jit
def _multipliers(Gs, b, free, xf, f, y):
    """y = b + G[:, F] x_F, the multipliers G v at v = u + x."""
    K = Gs.shape[0]
    for i in range(K):
        y[i] = b[i]
    for p in range(f):
        row = Gs[free[p]]  # G is symmetric: row free[p] is column free[p]
        a = xf[p]
        for i in range(K):
            y[i] += a * row[i]


@jit
def _refine(Gs, R, b, free, xf, f, y, rhs, step):
    """One step of iterative refinement of x_F (G_FF x_F = -b_F), kept only if it
    leaves every free coordinate positive and does not increase max |(G v)_F|."""
    if f == 0:
        return
    before = 0.0
    for p in range(f):
        rhs[p] = -y[free[p]]
        before = max(before, abs(y[free[p]]))
    if before == 0.0:
        return
    chol_solve(R, f, rhs, step)
    for p in range(f):
        if not xf[p] + step[p] > 0.0:
            return
    for p in range(f):
        xf[p] += step[p]
    _multipliers(Gs, b, free, xf, f, y)
    after = 0.0
    for p in range(f):
        after = max(after, abs(y[free[p]]))
    if after > before:  # rounding only: undo
        for p in range(f):
            xf[p] -= step[p]
        _multipliers(Gs, b, free, xf, f, y)


@jit
def project_dual_cone(G, U, tol, max_iter):
    """Solve ``v_r = argmin_{v >= U[r]} v^T G v`` for every row r of U.

    G: K x K symmetric PSD float64 (any positive scale); U: B x K float64; tol: the
    entering threshold, relative to ``max_i G_ii * ||u||_1``; max_iter: cap on the
    iterations (entering plus dropping steps) of each row.

    Returns ``(V, iterations, status, residual)``: V (B x K) the solutions, the
    iterations and ``STATUS_*`` code of each row, and each row's KKT residual
    ``max(max_{i not free} (-(G v)_i)^+, max_{i free} |(G v)_i|) / (max_i G_ii ||u||_1)``
    (0 for u = 0); primal feasibility v >= u and complementarity hold exactly by
    construction (v_i = u_i off the free set, v_i > u_i on it). Zero rows of G keep
    v_i = u_i; for G = 0, V = U.
    """
    K = G.shape[0]
    B = U.shape[0]
    V = U.copy()
    iterations = np.zeros(B, dtype=np.int64)
    status = np.zeros(B, dtype=np.int64)
    residual = np.zeros(B)
    scale = 0.0
    for i in range(K):
        scale = max(scale, G[i, i])
    if not scale > 0.0:
        return V, iterations, status, residual
    inv = 1.0 / scale
    Gs = np.empty((K, K))
    for i in range(K):
        for k in range(K):
            Gs[i, k] = G[i, k] * inv
    R = np.zeros((K, K))
    free = np.empty(K, dtype=np.int64)
    old_free = np.empty(K, dtype=np.int64)
    in_free = np.zeros(K, dtype=np.bool_)
    blocked = np.zeros(K, dtype=np.bool_)
    b = np.empty(K)
    y = np.empty(K)
    xf = np.empty(K)
    xn = np.empty(K)
    col = np.empty(K)
    rhs = np.empty(K)
    for r in range(B):
        u = U[r]
        unorm = 0.0
        for i in range(K):
            unorm += abs(u[i])
        if unorm == 0.0:
            continue
        # b = G u, summed over the nonzero entries of u only (one for UPGrad).
        for i in range(K):
            b[i] = 0.0
        for k in range(K):
            uk = u[k]
            if uk != 0.0:
                row = Gs[k]
                for i in range(K):
                    b[i] += uk * row[i]
        for i in range(K):
            y[i] = b[i]
            in_free[i] = False
            blocked[i] = False
        threshold = tol * unorm
        f = 0
        it = 0
        st = STATUS_OPTIMAL
        single = False
        while True:
            j = -1
            best = -threshold
            for i in range(K):
                if not in_free[i] and not blocked[i] and y[i] < best:
                    best = y[i]
                    j = i
            if j < 0:
                break
            if it >= max_iter:
                st = STATUS_MAX_ITER
                break
            it += 1
            f_old = f
            for p in range(f):
                old_free[p] = free[p]
            # Enter j, and unless the last round made no progress, every other index
            # whose multiplier is below cut (in index order).
            cut = best if single else _ENTER * best
            for i in range(K):
                if i != j and (single or in_free[i] or blocked[i] or not y[i] <= cut):
                    continue
                for p in range(f):
                    col[p] = Gs[free[p], i]
                pivot2 = chol_append(R, f, col, Gs[i, i])
                if not pivot2 > _DEPENDENT * Gs[i, i]:
                    if single:
                        blocked[i] = True  # in the span of the free set: set aside
                    continue  # (in a multiple entry, perhaps only of this round's)
                R[f, f] = np.sqrt(pivot2)
                free[f] = i
                in_free[i] = True
                xf[f] = 0.0
                f += 1
            if f == f_old:
                single = True
                continue
            dropped_any = False
            while True:
                for p in range(f):
                    rhs[p] = -b[free[p]]
                chol_solve(R, f, rhs, xn)
                alpha = 1.0
                drop = -1
                for p in range(f):
                    if not xn[p] > 0.0:
                        den = xf[p] - xn[p]
                        a = xf[p] / den if den > 0.0 else 0.0
                        if a < alpha or drop < 0:
                            alpha = a
                            drop = p
                if drop < 0:
                    for p in range(f):
                        xf[p] = xn[p]
                    break
                for p in range(f):
                    xf[p] += alpha * (xn[p] - xf[p])
                xf[drop] = 0.0
                xn[drop] = 0.0
                # Leave the set: the coordinates the step brought to 0, and those at 0
                # that the subproblem would push below it. An index of this round at 0
                # whose subproblem value is positive stays (a multiple entry).
                p = f - 1
                while p >= 0:
                    if not xf[p] > 0.0 and not xn[p] > 0.0:
                        i = free[p]
                        in_free[i] = False
                        dropped_any = True
                        chol_delete(R, f, p)
                        for q in range(p, f - 1):
                            free[q] = free[q + 1]
                            xf[q] = xf[q + 1]
                        f -= 1
                    p -= 1
                it += 1
                if f == 0 or it >= max_iter:
                    break
            if dropped_any:  # the span of the free set changed
                for i in range(K):
                    blocked[i] = False
            # Back at the old free set: the entering indices all came out at 0 (no
            # progress). Next round enters one index alone; if that one fails too,
            # its value is rounding (its gradient in the span): set it aside.
            unchanged = f == f_old
            for p in range(f):
                if not unchanged:
                    break
                unchanged = free[p] == old_free[p]
            if unchanged:
                if single:
                    blocked[j] = True
                single = True
            else:
                single = False
            _multipliers(Gs, b, free, xf, f, y)
            if it >= max_iter:
                st = STATUS_MAX_ITER
                break
        _refine(Gs, R, b, free, xf, f, y, rhs, xn)
        res = 0.0
        for i in range(K):
            if in_free[i]:
                res = max(res, abs(y[i]))
            elif y[i] < 0.0:
                res = max(res, -y[i])
                if blocked[i] and st == STATUS_OPTIMAL and y[i] < -_STALL * unorm:
                    st = STATUS_STALLED
        for p in range(f):
            V[r, free[p]] = u[free[p]] + xf[p]
        iterations[r] = it
        status[r] = st
        residual[r] = res / unorm
    return V, iterations, status, residual


@entry
def dual_cone_weights(G, U, coef, tol, max_iter, accept):
    """:func:`project_dual_cone` on every row of U, combined and summarised.

    Returns ``(V, w, iterations, residual, unsolved, stalled, violation)``: the
    solutions V, ``w = coef @ V``, the iterations summed over the rows, the largest
    row residual, the number of rows stopped by ``max_iter`` with a residual above
    ``accept``, the number of STATUS_STALLED rows, and
    ``max(0, -min_i (G w)_i) / (max_i G_ii ||w||_1)`` (0 for G = 0 or w = 0), how
    far ``J^T w`` is from the dual cone.
    """
    V, its, status, residual = project_dual_cone(G, U, tol, max_iter)
    K = G.shape[0]
    B = U.shape[0]
    w = np.zeros(K)
    total = 0
    worst = 0.0
    unsolved = 0
    stalled = 0
    for r in range(B):
        c = coef[r]
        for i in range(K):
            w[i] += c * V[r, i]
        total += its[r]
        worst = max(worst, residual[r])
        if status[r] == STATUS_MAX_ITER and residual[r] > accept:
            unsolved += 1
        if status[r] == STATUS_STALLED:
            stalled += 1
    scale = 0.0
    wsum = 0.0
    for i in range(K):
        scale = max(scale, G[i, i])
        wsum += abs(w[i])
    low = 0.0
    for i in range(K):
        t = 0.0
        for k in range(K):
            t += G[i, k] * w[k]
        low = min(low, t)
    violation = 0.0
    if scale > 0.0 and wsum > 0.0:
        violation = -low / (scale * wsum)
    return V, w, total, worst, unsolved, stalled, violation
