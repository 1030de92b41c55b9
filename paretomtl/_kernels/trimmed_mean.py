"""TrimmedMean's coordinate-wise sums without the extremes (trim 0 or 1), one pass."""

import numpy as np

from paretomtl._kernels._jit import jit

# Columns per inner block: the block's running extremes and sums stay in L1.
_WIDTH = 512


@jit
def trimmed_sums(J, trim, out):
    """``out[m]``: the sum of column m of the K x M float64 ``J``, tasks in order,
    without (``trim`` = 1) its first smallest and its last largest entry, rows that
    differ whenever K >= 2 (one of two equal extremes is dropped: a multiset), or
    with every entry (``trim`` = 0). The entries are left out, not subtracted:
    nothing cancels. (trim >= 2 is sorted by the caller.)"""
    K, M = J.shape
    low = np.empty(_WIDTH)
    high = np.empty(_WIDTH)
    at_low = np.empty(_WIDTH, dtype=np.int64)
    at_high = np.empty(_WIDTH, dtype=np.int64)
    for start in range(0, M, _WIDTH):
        stop = min(start + _WIDTH, M)
        for m in range(start, stop):
            out[m] = 0.0
        if trim == 1:
            for m in range(start, stop):
                low[m - start] = J[0, m]
                high[m - start] = J[0, m]
                at_low[m - start] = 0
                at_high[m - start] = 0
            for i in range(1, K):
                for m in range(start, stop):
                    g = J[i, m]
                    b = m - start
                    if g < low[b]:  # strict: the first smallest
                        low[b] = g
                        at_low[b] = i
                    if g >= high[b]:  # not strict: the last largest
                        high[b] = g
                        at_high[b] = i
        for i in range(K):
            for m in range(start, stop):
                b = m - start
                skip = trim == 1 and (i == at_low[b] or i == at_high[b])
                out[m] += 0.0 if skip else J[i, m]
