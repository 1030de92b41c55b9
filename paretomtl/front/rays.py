"""Preference vectors (rays) spread evenly on the probability simplex."""

from __future__ import annotations

import itertools
import math

import numpy as np

from paretomtl.front._common import check_int


def das_dennis(n_obj: int, divisions: int) -> np.ndarray:
    r"""The Das-Dennis lattice: every point of the simplex with coordinates in steps of 1/H.

    .. math::

        \Bigl\{ r = \tfrac{1}{H}(k_1, \dots, k_m) :
                k_i \in \{0, 1, \dots, H\},\ \textstyle\sum_i k_i = H \Bigr\},

    :math:`\binom{H + m - 1}{m - 1}` points for m objectives and H divisions (Das &
    Dennis, "Normal-Boundary Intersection: A New Method for Generating the Pareto
    Surface in Nonlinear Multicriteria Optimization Problems", SIAM J. Optim. 8(3),
    1998). Rows are in lexicographic order of :math:`(k_1, \dots, k_m)`, descending
    (the first row is :math:`e_1`); entries are exact multiples of 1/H summing to 1
    up to rounding.

    Args:
        n_obj: m >= 2, the number of objectives.
        divisions: H >= 1, the number of divisions of each edge.

    Returns:
        An array of shape (C(H + m - 1, m - 1), m).

    Example:
        >>> from paretomtl.front import das_dennis
        >>> das_dennis(3, 2)
        array([[1. , 0. , 0. ],
               [0.5, 0.5, 0. ],
               [0.5, 0. , 0.5],
               [0. , 1. , 0. ],
               [0. , 0.5, 0.5],
               [0. , 0. , 1. ]])
        >>> len(das_dennis(3, 4)), len(das_dennis(3, 12))
        (15, 91)
    """
    m = check_int(n_obj, "n_obj", 2)
    H = check_int(divisions, "divisions", 1)
    rows = []
    # Stars and bars: choose m - 1 bar positions among H + m - 1 slots.
    for bars in itertools.combinations(range(H + m - 1), m - 1):
        edges = (-1, *bars, H + m - 1)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(m)])
    out = np.array(rows[::-1], dtype=np.float64) / H
    assert len(out) == math.comb(H + m - 1, m - 1)
    return out


def simplex_rays(n_obj: int, count: int) -> np.ndarray:
    r"""``count`` preference vectors evenly spread on the simplex of ``n_obj`` objectives.

    For two objectives, :math:`r_k = (t_k, 1 - t_k)` with
    :math:`t = \mathrm{linspace}(0, 1, \text{count})`, both ends included (the
    convention of the issue's ZDT1 reference numbers; a single ray is
    :math:`(\tfrac12, \tfrac12)`). For three or more objectives, the Das-Dennis
    lattice (:func:`das_dennis`) with the largest number of divisions H whose
    :math:`\binom{H + m - 1}{m - 1}` points do not exceed ``count``; ``count`` must
    then be exactly such a size (15 or 91 for m = 3, for instance), otherwise a
    ValueError lists the nearest ones, so that the lattice is never silently cut.
    ``count = 1`` gives the centre :math:`(1/m, \dots, 1/m)` for any m.

    Args:
        n_obj: m >= 2, the number of objectives.
        count: the number of rays, >= 1.

    Returns:
        An array of shape (count, n_obj), rows non-negative and summing to 1.

    Example:
        >>> from paretomtl.front import simplex_rays
        >>> simplex_rays(2, 3)
        array([[0. , 1. ],
               [0.5, 0.5],
               [1. , 0. ]])
        >>> simplex_rays(3, 15).shape
        (15, 3)
    """
    m = check_int(n_obj, "n_obj", 2)
    n = check_int(count, "count", 1)
    if n == 1:
        return np.full((1, m), 1.0 / m)
    if m == 2:
        t = np.linspace(0.0, 1.0, n)
        return np.stack([t, 1.0 - t], axis=1)
    H, size = 1, m
    while size < n:
        H += 1
        size = math.comb(H + m - 1, m - 1)
    if size != n:
        below = math.comb(H + m - 2, m - 1)
        raise ValueError(
            f"count must be a Das-Dennis lattice size for n_obj={m} "
            f"(C(H + {m - 1}, {m - 1}) for H divisions); got {n}, nearest sizes "
            f"{below} (H={H - 1}) and {size} (H={H}); or pass das_dennis(n_obj, H)"
        )
    return das_dennis(m, H)
