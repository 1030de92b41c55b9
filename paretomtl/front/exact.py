r"""The exact preference points of a problem's true Pareto front.

For a preference vector r, the exact Pareto optimal point (Mahapatra & Rajan,
"Multi-Task Learning with User Preferences: Gradient Descent with Controlled
Ascent in Pareto Optimization", ICML 2020) is the point of the true front where
:math:`r_i f_i` is the same for every objective i: the point on the ray through
:math:`1/r` (EPO's target). It is the best any preference-guided method can do
with those rays, which makes :func:`preference_points` the yardstick of the
front methods (``benchmarks/fronts.py`` reports their indicators relative to it).
The problem computes the points (:meth:`paretomtl.problems.Problem.preference_points`,
from what it knows of its true front); this function checks the rays and lifts
their zeros, as the front methods do.
"""

from __future__ import annotations

import numpy as np

from paretomtl.front._common import EDGE_WEIGHT, check_preference
from paretomtl.problems import Problem


def preference_points(problem: Problem, rays: object) -> np.ndarray:
    r"""The points of the true Pareto front where :math:`r_i f_i` is equal for all i.

    For each preference vector r (a row of ``rays``) this is the exact Pareto
    optimal point of EPO: the front point F with
    :math:`r_1 F_1 = r_2 F_2 = \dots = r_m F_m`.

    *Zeros.* With :math:`r_i = 0` the condition says nothing about :math:`f_i`.
    As the front methods do (their end-ray pass, :mod:`paretomtl.front._end_rays`),
    the zeros are lifted, :math:`r' = \max(r, \text{EDGE\_WEIGHT} \cdot \max_i r_i)`,
    and the point of :math:`r'` is computed exactly (not its limit as the lift
    goes to 0): it is what EPO reaches. On ZDT1, ray (1, 0) gives
    :math:`(10^{-8}, 0.9999)`, next to the :math:`f_1 = 0` end (:math:`f_2 = 1 -
    \sqrt{f_1}` moves :math:`10^{-4}` for :math:`f_1 = 10^{-8}`); on DTLZ2, ray
    (0, 0, 1) gives :math:`(0.7071, 0.7071, 7 \cdot 10^{-9})`. The scalarisations
    hold the bounds that bind after their first pass, and where the front's end
    lies on a bound of the box they reach the end itself: (0, 1) on ZDT1, up to
    :math:`10^{-4}` from the point given here.

    *How.* The lifted rays go to the problem's
    :meth:`~paretomtl.problems.Problem.preference_points`:

    - DTLZ2 (the front is the unit sphere's positive octant): the closed form
      :math:`F = (1/r') / \|1/r'\|`.
    - Two-objective problems (ZDT1-3, the Pareto MTL toy, the convex quadratic,
      and any problem that describes its front by
      :meth:`~paretomtl.problems.Problem.front_pieces`): the minimiser of
      :math:`\max_i r'_i (f_i - z_i)` over the true front, found by
      ``scipy.optimize.brentq`` along the front's parameter to full precision.
      Where the ray crosses the front, that is the crossing; where it falls in a
      gap of a disconnected front (ZDT3), no front point meets the preference and
      it is the end of one of the two pieces next to the gap. Values are measured
      from the problem's ``ideal_point`` z, as the front methods do by default:
      :math:`r_i (f_i - z_i)` equal (z = 0 but for ZDT3, whose :math:`f_2` goes
      down to -0.7734); they agree to the rounding of the front's
      parametrisation (about 1e-15 relative).

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
        TypeError: a problem whose true front is not known to it (its
            ``preference_points`` raises NotImplementedError).

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
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a paretomtl.problems.Problem; got {type(problem)!r}")
    R = np.asarray(rays, dtype=np.float64)
    if R.ndim != 2 or R.shape[1] != problem.n_obj or R.shape[0] < 1:
        raise ValueError(f"rays must have shape (n_rays >= 1, {problem.n_obj}); got {R.shape}")
    lifted = np.empty_like(R)
    for k, row in enumerate(R):
        r = check_preference(row, problem.n_obj)
        lifted[k] = np.maximum(r, EDGE_WEIGHT * r.max())
    try:
        return problem.preference_points(lifted)
    except NotImplementedError as err:
        raise TypeError(
            f"preference_points does not know the true front of {problem!r}: its "
            "Problem.preference_points is not implemented (DTLZ2 has a closed form, and "
            "two-objective problems with front_pieces() have it: zdt1, zdt2, zdt3, "
            "paretomtl-toy, convex-quadratic)"
        ) from err
