"""GradVac's adjustments carried out on the coefficient matrix in Gram space."""

import numpy as np

from paretomtl._kernels._jit import jit
from paretomtl._kernels.linalg import FAST


@jit(fastmath=FAST)
def gradvac_coefficients(G, orders, targets, beta, every_pair):
    """Coefficients A with g_i' = sum_j A_ij g_j after GradVac's adjustments.

    Row i starts as e_i. For each j in ``orders[i]`` (the other tasks, K - 1 of them),
    with r = (A G)_i (so <g_i', g_q> = r[q]) and ||g_i'||^2 = A_i . r:

    - phi = r[j] / (||g_i'|| ||g_j||), clipped to [-1, 1]; 0 if either norm is 0;
    - if phi < targets[i, j] and both norms are positive and the target is not +-1,
      A_ij += w with w = ||g_i'|| (t sqrt(1 - phi^2) - phi sqrt(1 - t^2)) /
      (||g_j|| sqrt(1 - t^2)), t = targets[i, j], and r += w G_j;
    - targets[i, j] = (1 - beta) t + beta phi (the pre-adjustment phi), for every
      pair if ``every_pair``, else only when phi < t.

    ``targets`` is updated in place. Returns ``(A, number_of_adjustments, phi)`` with
    phi[i, j] the cosine met for the pair (i, j) (diagonal 0). O(K^3) work.
    """
    K = G.shape[0]
    A = np.eye(K)
    phis = np.zeros((K, K))
    r = np.empty(K)  # row i of A G: <g_i', g_q> = r[q]
    n_adj = 0
    for i in range(K):
        for q in range(K):
            r[q] = G[i, q]
        for s in range(K - 1):
            j = orders[i, s]
            gjj = G[j, j]
            nsq = 0.0
            for q in range(K):
                nsq += A[i, q] * r[q]
            ni = np.sqrt(nsq) if nsq > 0.0 else 0.0
            nj = np.sqrt(gjj) if gjj > 0.0 else 0.0
            phi = 0.0
            if ni > 0.0 and nj > 0.0:
                phi = r[j] / ni / nj
                phi = min(1.0, max(-1.0, phi))
            t = targets[i, j]
            below = phi < t
            if below and ni > 0.0 and nj > 0.0:
                s_t = np.sqrt(max(1.0 - t * t, 0.0))
                if s_t > 0.0:
                    s_phi = np.sqrt(max(1.0 - phi * phi, 0.0))
                    w = ni * (t * s_phi - phi * s_t) / (nj * s_t)
                    A[i, j] += w
                    for q in range(K):
                        r[q] += w * G[j, q]
                    n_adj += 1
            if every_pair or below:
                targets[i, j] = (1.0 - beta) * t + beta * phi
            phis[i, j] = phi
    return A, n_adj, phis
