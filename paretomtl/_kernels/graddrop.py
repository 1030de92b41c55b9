"""GradDrop's per-coordinate sums and sign choice, one pass over a float64 block."""

from paretomtl._kernels._jit import jit

# Columns per inner block: the five accumulators of a block stay in L1.
_WIDTH = 512


@jit
def sign_sums(J, leak, pos, neg, pos_kept, neg_kept, leaked, with_leak):
    """Per column m of the K x M float64 ``J``, added into the (M,) outputs:
    ``pos`` / ``neg`` the sums of the positive / negative entries; with ``with_leak``
    also ``pos_kept`` / ``neg_kept`` the same weighted by 1 - leak_i and ``leaked``
    the sum of leak_i * J_im. Tasks are added in order 0..K-1."""
    K, M = J.shape
    for start in range(0, M, _WIDTH):
        stop = min(start + _WIDTH, M)
        for i in range(K):
            share = 1.0 - leak[i]
            li = leak[i]
            if with_leak:
                for m in range(start, stop):
                    g = J[i, m]
                    up = max(g, 0.0)  # branch-free: the signs are random
                    down = min(g, 0.0)
                    pos[m] += up
                    neg[m] += down
                    pos_kept[m] += share * up
                    neg_kept[m] += share * down
                    leaked[m] += li * g
            else:
                for m in range(start, stop):
                    g = J[i, m]
                    pos[m] += max(g, 0.0)
                    neg[m] += min(g, 0.0)


@jit
def sign_choice(pos, neg, pos_kept, neg_kept, leaked, fp, U, identity, with_leak, d):
    """``d[m]``: the kept sign's sum (positive if f(P) > U, negative if f(P) < U) plus
    the leaked part. With ``identity``, f(P) = P = pos / (pos - neg), 1/2 where both
    are 0; else f(P) is read from ``fp``. Returns how many columns kept each sign."""
    n_pos = 0
    n_neg = 0
    for m in range(pos.shape[0]):
        if identity:
            den = pos[m] - neg[m]
            p = pos[m] / den if den > 0.0 else 0.5
        else:
            p = fp[m]
        up = p > U[m]  # branch-free selections: the draws are random
        down = p < U[m]
        if with_leak:
            out = (pos_kept[m] if up else 0.0) + (neg_kept[m] if down else 0.0) + leaked[m]
        else:
            out = (pos[m] if up else 0.0) + (neg[m] if down else 0.0)
        n_pos += up
        n_neg += down
        d[m] = out
    return n_pos, n_neg
