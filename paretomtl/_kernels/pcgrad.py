"""PCGrad's projections carried out on the coefficient matrix in Gram space."""

import numpy as np

from paretomtl._kernels._jit import entry


@entry
def pcgrad_coefficients(G, orders, allowed):
    """Coefficients A with g_i^PC = sum_j A_ij g_j after PCGrad's projections.

    Row i starts as e_i. For each j in ``orders[i]`` (a permutation of the tasks), if
    ``allowed[i, j]`` and <g_i^PC, g_j> = (A G)_ij < 0 (and G_jj > 0), the projection
    g_i^PC -= <g_i^PC, g_j> / ||g_j||^2 g_j becomes A_ij -= (A G)_ij / G_jj, and row
    i of A G is updated by the same multiple of row j of G. PCGrad allows every pair;
    momentum PCGrad gates them (and passes its expected Gram matrix as G). Returns
    ``(A, number_of_projections)``; O(K^2 + K P) work for P projections.
    """
    K = G.shape[0]
    A = np.eye(K)
    r = np.empty(K)  # row i of A G, kept up to date: <g_i^PC, g_j> = r[j]
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
                    r[q] -= coef * G[j, q]  # G symmetric: row j is column j
                n_proj += 1
    return A, n_proj
