"""Small dense linear algebra on K x K float64 arrays, compiled with numba.

Private: the wrappers in ``paretomtl.solvers`` validate input once and call these on
contiguous float64 arrays. Nothing here is compiled at import time (see
:mod:`paretomtl._kernels._jit`). Every kernel here is compiled without fast-math, as
entry points need: loops that sum run in order, and the long ones are written so
that they vectorise all the same (along contiguous rows, one sum per entry).
"""

import numpy as np

from paretomtl._kernels._jit import entry, jit

# Fast-math, for the kernels that Python never runs (no entry point reaches them: see
# paretomtl._kernels._jit), where it pays: the blocked passes over J and GradVac's
# O(K^3) dot products. Reassociation lets sums vectorise. No "nnan"/"ninf", which
# would compile finiteness tests away.
FAST = {"reassoc", "contract", "nsz", "arcp"}

# Status codes returned by ``check_gram``.
GRAM_OK = 0
GRAM_NOT_FINITE = 1
GRAM_NOT_SYMMETRIC = 2
GRAM_NOT_PSD = 3


@entry
def check_gram(G, rtol, out):
    """Classify a square matrix as a usable Gram matrix; write its symmetric part.

    ``out`` receives (G + G^T) / 2 when the status is GRAM_OK. Returns
    ``(status, scale)`` where ``scale = max_i G_ii`` and ``status`` is one of
    the ``GRAM_*`` codes. Symmetry is accepted within ``rtol * scale`` elementwise;
    positive semi-definiteness within ``rtol * trace(G)`` on the smallest eigenvalue,
    tested by a Cholesky factorisation of ``G + rtol * trace(G) * I`` (it exists
    exactly when every eigenvalue of G exceeds ``-rtol * trace(G)``).
    """
    K = G.shape[0]
    scale = 0.0
    trace = 0.0
    for i in range(K):
        for j in range(K):
            if not np.isfinite(G[i, j]):
                return GRAM_NOT_FINITE, 0.0
        d = G[i, i]
        trace += d
        if d > scale:
            scale = d
    for i in range(K):
        if G[i, i] < -rtol * scale:
            return GRAM_NOT_PSD, scale
    if scale == 0.0:
        # All diagonal entries are zero: only the zero matrix is PSD.
        for i in range(K):
            for j in range(K):
                if G[i, j] != 0.0:
                    return GRAM_NOT_PSD, scale
        for i in range(K):
            for j in range(K):
                out[i, j] = 0.0
        return GRAM_OK, scale
    for i in range(K):
        for j in range(i + 1, K):
            if abs(G[i, j] - G[j, i]) > rtol * scale:
                return GRAM_NOT_SYMMETRIC, scale
    shift = rtol * trace / scale
    M = np.empty((K, K))
    for i in range(K):
        for j in range(K):
            sym = 0.5 * (G[i, j] + G[j, i])
            out[i, j] = sym
            M[i, j] = sym / scale
        M[i, i] += shift
    ok, _ = chol_factor(M)
    if not ok:
        return GRAM_NOT_PSD, scale
    return GRAM_OK, scale


@jit
def chol_factor(M):
    """Upper-triangular R with R^T R = M, as ``(ok, R)``; ok is False if M is not PD.

    Right-looking, in panels of four rows: each panel is factored row by row, then
    the trailing block takes one fused rank-4 update per row (contiguous, vectorised),
    which halves the memory traffic of the row-by-row version. Single-threaded on
    purpose: LAPACK's threaded factorisation of a 128 x 128 matrix slows down tenfold
    when the other cores are busy (a training loop's data loaders); this does not.
    """
    n = M.shape[0]
    R = M.copy()
    k = 0
    while k < n:
        b = min(4, n - k)
        for p in range(k, k + b):
            d = R[p, p]
            if not d > 0.0:
                return False, R
            d = np.sqrt(d)
            R[p, p] = d
            inv = 1.0 / d
            for j in range(p + 1, n):
                R[p, j] *= inv
            for q in range(p + 1, k + b):
                a = R[p, q]
                for j in range(q, n):
                    R[q, j] -= a * R[p, j]
        if b == 4:
            r0, r1, r2, r3 = R[k], R[k + 1], R[k + 2], R[k + 3]
            for i in range(k + 4, n):
                a0, a1, a2, a3 = r0[i], r1[i], r2[i], r3[i]
                ri = R[i]
                for j in range(i, n):
                    ri[j] -= a0 * r0[j] + a1 * r1[j] + a2 * r2[j] + a3 * r3[j]
        k += b
    for i in range(n):
        for j in range(i):
            R[i, j] = 0.0
    return True, R


@jit
def matvec(G, x, out):
    """out = G @ x for a symmetric G, with plain loops (no BLAS threads for small
    matrices): out = sum_j x_j G[j, :], row j of G added in turn, so that each entry is
    the sum over j in order that the loop over a row of G would form, while the inner
    loop runs along a contiguous row and vectorises without reassociation."""
    n = G.shape[0]
    for i in range(n):
        out[i] = 0.0
    for j in range(n):
        xj = x[j]
        row = G[j]
        for i in range(n):
            out[i] += row[i] * xj


@jit
def chol_append(R, k, col, diag):
    """Grow the upper-triangular factor ``R[:k, :k]`` (``R^T R = M``) by one column.

    ``col`` holds the new off-diagonal column of M (length >= k) and ``diag`` its new
    diagonal entry. The new column of R is written into ``R[:k, k]``; the return value
    is the squared new pivot ``diag - ||R[:k, k]||^2``. The caller stores its square
    root in ``R[k, k]`` when it is safely positive. Uses ``col`` as scratch.
    """
    # Forward substitution R^T r = col, row-oriented so that R is read by rows.
    ss = 0.0
    for p in range(k):
        rp = col[p] / R[p, p]
        R[p, k] = rp
        ss += rp * rp
        for i in range(p + 1, k):
            col[i] -= R[p, i] * rp
    return diag - ss


@jit
def chol_delete(R, k, p):
    """Remove row/column ``p`` of M from its factor ``R[:k, :k]`` in place.

    Deleting column p of R leaves an upper Hessenberg block; Givens rotations on
    neighbouring rows restore the triangle. O(k^2).
    """
    for j in range(p, k - 1):
        for i in range(k):
            R[i, j] = R[i, j + 1]
    for i in range(k):
        R[i, k - 1] = 0.0
    for j in range(p, k - 1):
        a = R[j, j]
        b = R[j + 1, j]
        r = np.hypot(a, b)
        if r == 0.0:
            continue
        c = a / r
        s = b / r
        for q in range(j, k - 1):
            x = R[j, q]
            y = R[j + 1, q]
            R[j, q] = c * x + s * y
            R[j + 1, q] = -s * x + c * y
        R[j + 1, j] = 0.0
    for q in range(k):
        R[k - 1, q] = 0.0


@jit
def chol_solve(R, k, b, out):
    """Solve ``R^T R x = b`` for the leading ``k`` entries; writes x into ``out``.

    Both triangular solves read R by rows (contiguous): the forward one updates the
    remaining entries along a row (it vectorises), the backward one sums along a row.
    """
    for i in range(k):
        out[i] = b[i]
    for p in range(k):
        y = out[p] / R[p, p]
        out[p] = y
        for i in range(p + 1, k):
            out[i] -= R[p, i] * y
    for i in range(k - 1, -1, -1):
        t = out[i]
        for p in range(i + 1, k):
            t -= R[i, p] * out[p]
        out[i] = t / R[i, i]
