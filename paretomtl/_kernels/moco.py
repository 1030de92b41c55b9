"""MoCo's step on the weights of its tracked gradients: one gradient step, then back
onto the simplex (by projection or by the softmax)."""

import math

import numpy as np

from paretomtl._kernels._jit import entry
from paretomtl._kernels.simplex_steps import project_into


@entry
def lambda_step(YY, lam, gamma, rho, project, out):
    """``out`` = P(lam - gamma (YY + rho I) lam), P the Euclidean projection onto the
    simplex (``project``) or the softmax; returns False, with ``out`` untouched, when
    the step is not finite.

    The projection is :func:`paretomtl._kernels.simplex_steps.project_into` (sorting,
    shifted by the largest entry); the softmax is shifted by the largest entry too.
    Float64 throughout; O(K^2 + K log K).
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
    if project:  # the exact sort-based projection MoDo and SDMGrad use
        project_into(v, out, np.empty(K))
        return True
    total = 0.0
    for i in range(K):
        v[i] = math.exp(v[i])  # libm's exp, compiled or run as Python
        total += v[i]
    for i in range(K):
        out[i] = v[i] / total
    return True
