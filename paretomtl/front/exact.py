r"""The exact preference points of a problem's true Pareto front.

For a preference vector r, the exact Pareto optimal point (Mahapatra & Rajan,
"Multi-Task Learning with User Preferences: Gradient Descent with Controlled
Ascent in Pareto Optimization", ICML 2020) is the point of the true front where
:math:`r_i f_i` is the same for every objective i: the point on the ray through
:math:`1/r` (EPO's target). It is the best any preference-guided method can do
with those rays, which makes :func:`preference_points` the yardstick of the
front methods (``benchmarks/fronts.py`` reports their indicators relative to it).
It reads the true fronts of :mod:`paretomtl.problems`, imported on first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import brentq

from paretomtl.front._common import EDGE_WEIGHT, check_preference

if TYPE_CHECKING:
    from paretomtl.problems import Problem

_RTOL = 4.0 * np.finfo(np.float64).eps  # brentq's smallest relative tolerance
_XTOL = 1e-300  # no absolute floor: roots near t = 0 are found to full relative precision


def preference_points(problem: Problem, rays: object) -> np.ndarray:
    r"""The points of the true Pareto front where :math:`r_i f_i` is equal for all i.

    For each preference vector r (a row of ``rays``) this is the exact Pareto
    optimal point of EPO: the front point F with
    :math:`r_1 F_1 = r_2 F_2 = \dots = r_m F_m`.

    *Zeros.* With :math:`r_i = 0` the condition says nothing about :math:`f_i`.
    As the front methods do (:func:`paretomtl.front._common.end_ray_pass`), the
    zeros are lifted, :math:`r' = \max(r, \text{EDGE\_WEIGHT} \cdot \max_i r_i)`,
    and the point of :math:`r'` is computed exactly (not its limit as the lift
    goes to 0): it is what EPO reaches. On ZDT1, ray (1, 0) gives
    :math:`(10^{-8}, 0.9999)`, next to the :math:`f_1 = 0` end (:math:`f_2 = 1 -
    \sqrt{f_1}` moves :math:`10^{-4}` for :math:`f_1 = 10^{-8}`); on DTLZ2, ray
    (0, 0, 1) gives :math:`(0.7071, 0.7071, 7 \cdot 10^{-9})`. The scalarisations
    hold the bounds that bind after their first pass, and where the front's end
    lies on a bound of the box they reach the end itself: (0, 1) on ZDT1, up to
    :math:`10^{-4}` from the point given here.

    *How.*

    - DTLZ2 (the front is the unit sphere's positive octant): the closed form
      :math:`F = (1/r') / \|1/r'\|`.
    - Two-objective problems (ZDT1-3, the Pareto MTL toy, the convex quadratic,
      and any problem that describes its front by ``_pieces()`` and
      ``_front_at(t)``): along the front's parameter t, :math:`f_1` rises and
      :math:`f_2` falls (the front is sorted by increasing :math:`f_1`), so
      :math:`h(t) = r_1 f_1(t) - r_2 f_2(t)` is increasing and changes sign on at
      most one piece; there ``scipy.optimize.brentq`` solves :math:`h(t) = 0` to
      full precision in t. If no piece changes sign, the crossing falls in a gap of
      a disconnected front (ZDT3), and no front point meets the preference: the
      point returned is then the front point that minimises
      :math:`\max_i r'_i f_i`, the Tchebycheff point of the front, which is the
      end of one of the two pieces next to the gap (:math:`\max_i r'_i f_i` falls
      along the piece before the gap and rises along the piece after it). Where the
      crossing exists it is also the Tchebycheff point, so the rule is one: the
      minimiser of :math:`\max_i r'_i f_i` over the true front. Values are
      measured from the problem's ``ideal_point`` z, as the front methods do by
      default: :math:`r_i (f_i - z_i)` equal (z = 0 but for ZDT3, whose
      :math:`f_2` goes down to -0.7734).

    The values are those of the problem's front parametrisation, so :math:`r_i f_i`
    agree to rounding of ``_front_at`` (about 1e-15 relative, less where
    ``_front_at`` cancels, e.g. ZDT1's :math:`f_2 = 1 - \sqrt{f_1}` near
    :math:`f_1 = 1`).

    Args:
        problem: a :class:`paretomtl.problems.Problem`: DTLZ2, or a two-objective
            problem with a parametrised front.
        rays: (n_rays, n_obj) preference vectors, entries >= 0, each row with a
            positive entry (e.g. :func:`paretomtl.front.simplex_rays`).

    Returns:
        An (n_rays, n_obj) array, row k the point of ray k.

    Raises:
        ValueError: ``rays`` of the wrong shape, or a row that is negative, not
            finite or all zero.
        TypeError: a problem whose true front is not known to this function.

    Example:
        >>> import numpy as np
        >>> from paretomtl.front import preference_points, simplex_rays
        >>> from paretomtl.problems import ZDT1, DTLZ2
        >>> F = preference_points(ZDT1(), simplex_rays(2, 3))
        >>> F.round(4)
        array([[1.    , 0.    ],
               [0.382 , 0.382 ],
               [0.    , 0.9999]])
        >>> preference_points(DTLZ2(), [[0.0, 0.0, 1.0]]).round(4)
        array([[0.7071, 0.7071, 0.    ]])
    """
    # Imported here: the front layer itself needs only numpy, scipy and the solvers.
    from paretomtl.problems import DTLZ2, Problem

    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a paretomtl.problems.Problem; got {type(problem)!r}")
    R = np.asarray(rays, dtype=np.float64)
    if R.ndim != 2 or R.shape[1] != problem.n_obj or R.shape[0] < 1:
        raise ValueError(f"rays must have shape (n_rays >= 1, {problem.n_obj}); got {R.shape}")
    lifted = np.empty_like(R)
    for k, row in enumerate(R):
        r = check_preference(row, problem.n_obj)
        lifted[k] = np.maximum(r, EDGE_WEIGHT * r.max())
    if isinstance(problem, DTLZ2):
        inv = 1.0 / lifted
        return inv / np.linalg.norm(inv, axis=1, keepdims=True)
    if problem.n_obj == 2:
        try:
            pieces = problem._pieces()
        except NotImplementedError:
            pieces = None
        if pieces:
            z = np.asarray(problem.ideal_point, dtype=np.float64)
            return np.array([_two_objective_point(problem, pieces, r, z) for r in lifted])
    raise TypeError(
        f"preference_points does not know the true front of {problem!r}: it handles DTLZ2 "
        "and two-objective problems that describe their front by _pieces() and "
        "_front_at(t) (zdt1, zdt2, zdt3, paretomtl-toy, convex-quadratic)"
    )


def _two_objective_point(problem: Problem, pieces, r: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The minimiser of max_i r_i (f_i - z_i) over a two-objective front (r > 0)."""

    def front(t: float) -> np.ndarray:
        return problem._front_at(np.array([t]))[0]

    def h(t: float) -> float:
        f = front(t)
        return float(r[0] * (f[0] - z[0]) - r[1] * (f[1] - z[1]))

    candidates = []
    for lo, hi in pieces:
        h_lo, h_hi = h(lo), h(hi)
        if h_lo <= 0.0 <= h_hi:  # h rises along the piece: the crossing is here
            t = brentq(h, lo, hi, xtol=_XTOL, rtol=_RTOL, maxiter=500)
            return front(t)
        candidates += [front(lo), front(hi)]
    # No crossing on the front (a gap of a disconnected front): its Tchebycheff point.
    F = np.array(candidates)
    return F[np.argmin(((F - z) * r).max(axis=1))]
