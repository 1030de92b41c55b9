"""MoCo's step on the weights of its tracked gradients: one gradient step, then back
onto the simplex (by projection or by the softmax)."""

import numpy as np
from numba import njit


@njit(cache=True)
def lambda_step(YY, lam, gamma, rho, project, out):
    """``out`` = P(lam - gamma (YY + rho I) lam), P the Euclidean projection onto the
    simplex (``project``) or the softmax; returns False, with ``out`` untouched, when
    the step is not finite.

    The projection shifts the step by its largest entry (a common shift moves only
    the threshold), finds the threshold theta by sorting (the largest k entries whose
    mean minus 1/k stays below the k-th), sets max(v - theta, 0) and divides by the
    sum (rounding leaves it within a few ulps of 1). The softmax is shifted the same
    way. Float64 throughout; O(K^2 + K log K).
    """
    K = lam.shape[0]
    v = np.empty(K)
    top = -np.inf
    for i in range(K):
        s = 0.0
        for j in range(K):
            s += YY[i, j] * lam[j]
        v[i] = lam[i] - gamma * (s + rho * lam[i])
        if not np.isfinite(v[i]):
            return False
        top = max(top, v[i])
    for i in range(K):
        v[i] -= top
    total = 0.0
    if project:
        u = np.sort(v)
        cumulative = 0.0
        theta = 0.0
        for k in range(1, K + 1):
            cumulative += u[K - k]
            candidate = (cumulative - 1.0) / k
            if u[K - k] - candidate > 0.0:
                theta = candidate
        for i in range(K):
            w = v[i] - theta
            v[i] = w if w > 0.0 else 0.0
            total += v[i]
    else:
        for i in range(K):
            v[i] = np.exp(v[i])
            total += v[i]
    for i in range(K):
        out[i] = v[i] / total
    return True
