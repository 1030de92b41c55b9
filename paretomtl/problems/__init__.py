"""Differentiable multi-objective test problems with known Pareto fronts.

Each problem is a :class:`Problem`: box bounds, values and analytic Jacobians
(``evaluate``, ``evaluate_batch``), Hessian-vector products (``hvp``), and its true
Pareto front and set sampled to any density (``pareto_front``, ``pareto_set``).
They are reachable by name through :func:`get_problem` and listed by
:func:`available_problems`. This layer imports numpy and scipy only.

- ``paretomtl-toy``: the synthetic problem of Pareto MTL (Lin et al., NeurIPS 2019).
- ``zdt1``, ``zdt2``, ``zdt3``: convex, concave, disconnected fronts (Zitzler, Deb
  & Thiele, Evolutionary Computation 2000); their Pareto sets lie on the boundary
  of the box, :math:`x_2 = \\dots = x_n = 0`.
- ``dtlz2``: three objectives, the sphere octant (Deb, Thiele, Laumanns & Zitzler,
  2005).
- ``convex-quadratic``: two convex quadratics, front in closed form.

Example:
    >>> from paretomtl.problems import get_problem
    >>> problem = get_problem("zdt2", n_var=5)
    >>> problem.n_obj, problem.n_var, problem.lower[0], problem.upper[0]
    (2, 5, np.float64(0.0), np.float64(1.0))
"""

from paretomtl.problems._base import Problem
from paretomtl.problems._registry import available_problems, get_problem, register_problem
from paretomtl.problems.custom import FunctionProblem, PymooProblem, from_functions, from_pymoo
from paretomtl.problems.dtlz2 import DTLZ2
from paretomtl.problems.quadratic import ConvexQuadratic
from paretomtl.problems.toy import ParetoMTLToy
from paretomtl.problems.zdt import ZDT1, ZDT2, ZDT3

__all__ = [
    "DTLZ2",
    "ZDT1",
    "ZDT2",
    "ZDT3",
    "ConvexQuadratic",
    "FunctionProblem",
    "ParetoMTLToy",
    "Problem",
    "PymooProblem",
    "available_problems",
    "from_functions",
    "from_pymoo",
    "get_problem",
    "register_problem",
]
