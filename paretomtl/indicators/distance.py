"""Distance indicators between a point set and a reference front: GD, IGD, IGD+.

Computed by moocore where it is installed, else by the numpy route here (the same
definitions; the tests check that the two agree within 1e-12): these three need no
library, unlike the hypervolume.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from paretomtl.indicators._input import as_point_set, check_same_objectives, moocore

_BLOCK = 1 << 20  # entries of one (rows, others, m) block of differences: 8 MB


def _moocore_if_installed() -> ModuleType | None:
    try:
        return moocore()
    except ImportError:
        return None


def mean_nearest_distance(targets: np.ndarray, candidates: np.ndarray, plus: bool = False) -> float:
    r"""The mean over the rows z of ``targets`` of the distance to the nearest row p of
    ``candidates``: :math:`\frac{1}{|Z|}\sum_{z} \min_p \|p - z\|_2`, or with ``plus``
    the dominance-aware :math:`\|\max(p - z, 0)\|_2` (IGD+'s :math:`d^+`).

    The numpy route of :func:`gd`, :func:`igd` and :func:`igd_plus` (``igd(P, R) =
    mean_nearest_distance(R, P)``, ``gd(P, R) = mean_nearest_distance(P, R)``): every
    pair's difference is formed directly (no :math:`\|a\|^2 + \|b\|^2 - 2 a^\top b`,
    which loses the small distances), in blocks of about 10**6 entries, O(|Z| |P| m)
    time.

    Args:
        targets: (k, m) finite points, k >= 1.
        candidates: (n, m) finite points, n >= 1.
        plus: use :math:`d^+` instead of the Euclidean distance.

    Example:
        >>> import numpy as np
        >>> from paretomtl.indicators.distance import mean_nearest_distance
        >>> R, P = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0.0, 1.0]])
        >>> mean_nearest_distance(R, P), mean_nearest_distance(R, P, plus=True)
        (0.7071067811865476, 0.5)
    """
    Z = np.asarray(targets, dtype=np.float64)
    P = np.asarray(candidates, dtype=np.float64)
    rows = max(1, _BLOCK // max(1, P.size))
    nearest = np.empty(Z.shape[0])
    for start in range(0, Z.shape[0], rows):
        block = Z[start : start + rows]
        diff = P[None, :, :] - block[:, None, :]  # p - z
        if plus:
            np.maximum(diff, 0.0, out=diff)
        nearest[start : start + rows] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff).min(axis=1))
    return float(nearest.mean())


def _pair(points: object, front: object) -> tuple[np.ndarray, np.ndarray]:
    P = as_point_set(points, "points")
    R = as_point_set(front, "front")
    check_same_objectives(P, "points", R, "front")
    return P, R


def gd(points: object, front: object) -> float:
    r"""Generational distance: the mean distance from each point to the front.

    .. math::

        GD(P, R) = \frac{1}{|P|} \sum_{p \in P} \min_{z \in R} \|p - z\|_2,

    the p = 1 form of Schütze, Esquivel, Lara & Coello Coello (IEEE TEVC 2012)
    (Van Veldhuizen & Lamont, GP 1998 late-breaking papers, introduced it with a
    root mean square). It measures convergence only: one point on the front has
    GD 0. Computed by moocore's ``igd`` with the two sets' roles swapped, or without
    moocore by :func:`mean_nearest_distance` (numpy).

    Args:
        points: the found points, shape (n, m), n >= 1.
        front: the reference front (e.g. a dense sample of the true front), shape
            (k, m), k >= 1.

    Returns:
        GD, a float >= 0.

    Example:
        >>> from paretomtl.indicators import gd
        >>> gd([[0.0, 1.0], [1.0, 1.0]], front=[[0.0, 1.0], [1.0, 0.0]])
        0.5
    """
    P, R = _pair(points, front)
    mc = _moocore_if_installed()
    return mean_nearest_distance(P, R) if mc is None else float(mc.igd(R, ref=P))


def igd(points: object, front: object) -> float:
    r"""Inverted generational distance: the mean distance from the front to the points.

    .. math::

        IGD(P, R) = \frac{1}{|R|} \sum_{z \in R} \min_{p \in P} \|z - p\|_2

    (p = 1; Coello Coello & Reyes Sierra, MICAI 2004; Zhang & Li, MOEA/D, IEEE TEVC
    2007). It measures convergence and spread together: how well the points cover
    the reference front R, so R should be a dense, even sample of the true front.
    Computed by moocore's ``igd``, or without moocore by
    :func:`mean_nearest_distance` (numpy).

    Args:
        points: the found points, shape (n, m), n >= 1.
        front: the reference front, shape (k, m), k >= 1.

    Returns:
        IGD, a float >= 0.

    Example:
        >>> from paretomtl.indicators import igd
        >>> igd([[0.0, 1.0]], front=[[0.0, 1.0], [1.0, 0.0]])
        0.7071067811865476
    """
    P, R = _pair(points, front)
    mc = _moocore_if_installed()
    return mean_nearest_distance(R, P) if mc is None else float(mc.igd(P, ref=R))


def igd_plus(points: object, front: object) -> float:
    r"""IGD+: IGD with a dominance-aware distance, weakly Pareto compliant.

    .. math::

        IGD^+(P, R) = \frac{1}{|R|} \sum_{z \in R} \min_{p \in P} d^+(z, p),\qquad
        d^+(z, p) = \Bigl(\textstyle\sum_i \max(p_i - z_i, 0)^2\Bigr)^{1/2},

    so only the amounts by which p is worse than z count (Ishibuchi, Masuda,
    Tanigaki & Nojima, "Modified Distance Calculation in Generational Distance and
    Inverted Generational Distance", EMO 2015). Computed by moocore's ``igd_plus``,
    or without moocore by :func:`mean_nearest_distance` (numpy).

    Args:
        points: the found points, shape (n, m), n >= 1.
        front: the reference front, shape (k, m), k >= 1.

    Returns:
        IGD+, a float >= 0, never above IGD.

    Example:
        >>> from paretomtl.indicators import igd_plus
        >>> igd_plus([[0.0, 1.0]], front=[[0.0, 1.0], [1.0, 0.0]])
        0.5
    """
    P, R = _pair(points, front)
    mc = _moocore_if_installed()
    return mean_nearest_distance(R, P, plus=True) if mc is None else float(mc.igd_plus(P, ref=R))
