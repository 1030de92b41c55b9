"""PCGrad's projections on a given Gram matrix, restricted to allowed pairs."""

import numpy as np
from numba import njit

from paretomtl._kernels.linalg import FAST


@njit(cache=True, fastmath=FAST)
def gated_pcgrad_coefficients(G, orders, allowed):
    """PCGrad's coefficient matrix on ``G``, projecting i off j only where ``allowed[i, j]``.

    Row i starts as e_i. For each j in ``orders[i]`` (a permutation of the tasks), if
    ``allowed[i, j]``, G_jj > 0 and (A G)_ij < 0, then A_ij -= (A G)_ij / G_jj (the
    projection of sum_q A_iq g_q off g_j, for vectors whose Gram matrix is G). With
    every pair allowed it is ``pcgrad_coefficients``. Returns ``(A, projections)``.
    """
    K = G.shape[0]
    A = np.eye(K)
    r = np.empty(K)  # row i of A G
    n_proj = 0
    for i in range(K):
        for q in range(K):
            r[q] = G[i, q]
        for t in range(K):
            j = orders[i, t]
            d = r[j]
            if d < 0.0 and G[j, j] > 0.0 and allowed[i, j]:
                coef = d / G[j, j]
                A[i, j] -= coef
                for q in range(K):
                    r[q] -= coef * G[j, q]
                n_proj += 1
    return A, n_proj
