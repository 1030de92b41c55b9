"""Distance indicators between a point set and a reference front: GD, IGD, IGD+."""

from __future__ import annotations

import numpy as np

from paretomtl.indicators._input import as_point_set, check_same_objectives, moocore


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
    GD 0. Computed by moocore's ``igd`` with the two sets' roles swapped.

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
    return float(moocore().igd(R, ref=P))


def igd(points: object, front: object) -> float:
    r"""Inverted generational distance: the mean distance from the front to the points.

    .. math::

        IGD(P, R) = \frac{1}{|R|} \sum_{z \in R} \min_{p \in P} \|z - p\|_2

    (p = 1; Coello Coello & Reyes Sierra, MICAI 2004; Zhang & Li, MOEA/D, IEEE TEVC
    2007). It measures convergence and spread together: how well the points cover
    the reference front R, so R should be a dense, even sample of the true front.
    Computed by moocore's ``igd``.

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
    return float(moocore().igd(P, ref=R))


def igd_plus(points: object, front: object) -> float:
    r"""IGD+: IGD with a dominance-aware distance, weakly Pareto compliant.

    .. math::

        IGD^+(P, R) = \frac{1}{|R|} \sum_{z \in R} \min_{p \in P} d^+(z, p),\qquad
        d^+(z, p) = \Bigl(\textstyle\sum_i \max(p_i - z_i, 0)^2\Bigr)^{1/2},

    so only the amounts by which p is worse than z count (Ishibuchi, Masuda,
    Tanigaki & Nojima, "Modified Distance Calculation in Generational Distance and
    Inverted Generational Distance", EMO 2015). Computed by moocore's ``igd_plus``.

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
    return float(moocore().igd_plus(P, ref=R))
