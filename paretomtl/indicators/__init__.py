"""Quality indicators of a found point set against a true Pareto front.

All objectives are minimised. Definitions (P the found points, R the reference
front, a dense sample of the true front such as ``problem.pareto_front(1000)``;
distances Euclidean, means with exponent p = 1):

- :func:`hypervolume`: the volume dominated by P and bounded by a reference point
  (Zitzler & Thiele, PPSN 1998); points that do not strictly dominate the reference
  point add nothing (so it is 0.0 when none does).
- :func:`gd`: mean over P of the distance to the nearest point of R (convergence).
- :func:`igd`: mean over R of the distance to the nearest point of P (convergence and
  spread).
- :func:`igd_plus`: IGD with :math:`d^+(z, p) = \\|\\max(p - z, 0)\\|`, weakly
  Pareto compliant (Ishibuchi, Masuda, Tanigaki & Nojima, EMO 2015).

The computation is moocore's (López-Ibáñez et al., https://multi-objective.github.io/
moocore), a maintained C library with Python bindings, where it is installed. Without
it, :func:`gd`, :func:`igd` and :func:`igd_plus` are computed in numpy
(:func:`paretomtl.indicators.distance.mean_nearest_distance`: the same definitions,
equal to moocore's within 1e-12 in the tests); only :func:`hypervolume` needs moocore.
Its licence is LGPL-2.1-or-later (most of its C files are MPL-2.0; the AVL-tree code
makes the combined library LGPL). Using it as an unmodified, separately installed
dependency is compatible with paretomtl's MIT licence: nothing of it is copied into
this package, and users can swap in any other build of it. pymoo (Apache-2.0) is no
alternative: its own indicators call moocore since 0.6.2. moocore ships compiled
(cffi, abi3) wheels rather than a pure-Python one, so it is an optional extra,
``pip install 'paretomtl[indicators]'`` (also in ``dev``), imported on first use;
the rest of paretomtl works without it.

Timing of :func:`hypervolume` (moocore 0.3.2; best of 5, one core of a shared
x86-64 machine; points on the true front, all non-dominated: ZDT1's in 2-D,
DTLZ2's in 3-D, reference point 1.1 in every objective):

=======  ==========  ===========  =============
n_obj    100 points  1000 points  10 000 points
=======  ==========  ===========  =============
2        7 µs        24 µs        0.19 ms
3        11 µs       67 µs        1.3 ms
=======  ==========  ===========  =============

:func:`igd` and :func:`igd_plus` are O(|P| |R|): 100 points against a 1000-point
front take 0.2-0.3 ms.

Reference numbers on ZDT1 (checked in the tests): the exact points of preference
vectors r = (t, 1 - t), t = ``linspace(0, 1, K)`` (ends included), i.e. the front
points with :math:`r_1 f_1 = r_2 f_2`, have IGD 0.026 (K = 16) and 0.006 (K = 64)
against ``ZDT1().pareto_front(1000)`` (evenly spaced in :math:`f_1`), and 96.0 % and
99.1 % of the true front's hypervolume :math:`1.21 - 1/3` for the reference point
(1.1, 1.1).

Example:
    >>> from paretomtl.indicators import gd, hypervolume, igd, igd_plus
    >>> from paretomtl.problems import ZDT1
    >>> front = ZDT1().pareto_front(1001)  # f1 = 0, 0.001, ..., 1
    >>> found = front[::100] + [0.0, 0.01]  # 11 points, each 0.01 above the front
    >>> round(gd(found, front), 4), round(igd(found, front), 4), round(igd_plus(found, front), 4)
    (0.0081, 0.0384, 0.0295)
    >>> round(hypervolume(found, reference=[1.1, 1.1]) / (1.21 - 1 / 3), 4)
    0.9234
"""

from paretomtl.indicators.distance import gd, igd, igd_plus
from paretomtl.indicators.hypervolume import hypervolume

__all__ = ["gd", "hypervolume", "igd", "igd_plus"]
