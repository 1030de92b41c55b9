"""The unit-gradient solve of IMTL-G and ConFIG, by Cholesky with a certificate."""

import numpy as np

from paretomtl._kernels._jit import entry


@entry
def unit_solve(G, rhs, bound, v):
    """v = N^-1 C^-1 rhs for the cosine matrix C = N^-1 G N^-1, where C is certified
    well conditioned; returns 1 then, else 0 (v is then unspecified).

    N = diag(sqrt(G_ii)). Certified: every G_ii > 0, C's Cholesky factor L exists, and
    trace(C^-1) = ||L^-1||_F^2 < ``bound``; since trace(C^-1) >= 1 / lambda_min(C),
    every eigenvalue of C then exceeds 1 / bound. O(K^3 / 2) work.
    """
    K = G.shape[0]
    n = np.empty(K)
    for i in range(K):
        if not G[i, i] > 0.0:
            return 0
        n[i] = np.sqrt(G[i, i])
    L = np.empty((K, K))
    for i in range(K):
        for j in range(K):
            c = (G[i, j] / n[i]) / n[j]
            L[i, j] = min(1.0, max(-1.0, c))
        L[i, i] = 1.0
    # Cholesky, lower triangle, in place.
    for j in range(K):
        s = L[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > 0.0:
            return 0
        d = np.sqrt(s)
        L[j, j] = d
        for i in range(j + 1, K):
            t = L[i, j]
            for k in range(j):
                t -= L[i, k] * L[j, k]
            L[i, j] = t / d
    # trace(C^-1) = sum of squares of L^-1, column by column (forward substitution).
    x = np.empty(K)
    trace = 0.0
    for c in range(K):
        for i in range(c, K):
            t = 1.0 if i == c else 0.0
            for k in range(c, i):
                t -= L[i, k] * x[k]
            x[i] = t / L[i, i]
            trace += x[i] * x[i]
        if not trace < bound:
            return 0
    # y = C^-1 rhs: L z = rhs, L^T y = z.
    z = np.empty(K)
    for i in range(K):
        t = rhs[i]
        for k in range(i):
            t -= L[i, k] * z[k]
        z[i] = t / L[i, i]
    for i in range(K - 1, -1, -1):
        t = z[i]
        for k in range(i + 1, K):
            t -= L[k, i] * v[k]
        v[i] = t / L[i, i]
    for i in range(K):
        v[i] = v[i] / n[i]
    return 1


@entry
def projection_spread(G, w):
    """(max - min) / max |.| of (G w)_i / sqrt(G_ii) over the rows with G_ii > 0
    (0 if there are none or all are 0): how unequal the projections of d = w @ J
    onto the unit gradients are."""
    K = G.shape[0]
    lo = np.inf
    hi = -np.inf
    top = 0.0
    for i in range(K):
        if G[i, i] > 0.0:
            r = 0.0
            for j in range(K):
                r += G[i, j] * w[j]
            r /= np.sqrt(G[i, i])
            lo = min(lo, r)
            hi = max(hi, r)
            top = max(top, abs(r))
    return (hi - lo) / top if top > 0.0 else 0.0
