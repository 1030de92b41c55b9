"""Krum's scores from a Gram matrix."""

import numpy as np

from paretomtl._kernels._jit import jit

# Above this many excluded neighbours per row, sort the row instead of tracking them.
_TRACK = 16


@jit
def krum_scores(G, neighbours, squared):
    """Score of each row: the sum of its ``neighbours`` smallest distances to the
    other rows, squared (``squared``) or not, with d_ij^2 = G_ii + G_jj - 2 G_ij
    clipped at 0.

    The r = K - 1 - neighbours largest distances of a row are excluded: tracked in a
    small buffer (O(K r) work per row) when r <= 16, else found by sorting the row;
    the kept distances are then summed in index order either way.
    """
    K = G.shape[0]
    scores = np.empty(K)
    row = np.empty(K)
    r = K - 1 - neighbours
    big = np.empty(max(r, 1), dtype=np.int64)
    for i in range(K):
        for j in range(K):
            d2 = max(G[i, i] + G[j, j] - 2.0 * G[i, j], 0.0)
            row[j] = d2 if squared else np.sqrt(d2)
        row[i] = np.inf  # never kept: itself
        if r == 0:
            pass
        elif r <= _TRACK:
            # big[0..r) holds the indices of the r largest among j != i, descending.
            m = 0
            for j in range(K):
                if j == i:
                    continue
                x = row[j]
                if m < r:
                    p = m
                    m += 1
                elif x > row[big[r - 1]]:
                    p = r - 1
                else:
                    continue
                while p > 0 and row[big[p - 1]] < x:
                    big[p] = big[p - 1]
                    p -= 1
                big[p] = j
            for k in range(r):
                row[big[k]] = np.inf
        else:
            order = np.argsort(row)  # itself (inf) last; ties: any order, same sum
            for k in range(neighbours, K - 1):
                row[order[k]] = np.inf
        s = 0.0
        for j in range(K):
            if row[j] < np.inf:
                s += row[j]
        scores[i] = s
    return scores
