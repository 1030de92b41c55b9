"""Preference-guided methods that find Pareto points, and the tools to run them.

- Rays: :func:`simplex_rays` (evenly spread; Das-Dennis for 3+ objectives),
  :func:`das_dennis`.
- Stationarity on the box: :func:`bound_aware_stationarity`.
- Scalarisations: :func:`linear_scalarization`, :func:`tchebycheff`,
  :func:`smooth_tchebycheff`.
- The registry: :func:`available_front_methods`, :func:`front_method_info`;
  :func:`trace` runs any registered method over a set of rays.

This layer imports numpy, scipy and paretomtl.solvers only.

Example:
    >>> from paretomtl.front import simplex_rays, trace
    >>> from paretomtl.problems import ZDT2
    >>> out = trace(ZDT2(n_var=5), "linear", simplex_rays(2, 5), seed=0)
    >>> out.points[:, 0].round(3)  # a concave front: only its ends are found
    array([1., 0., 0., 0., 0.])
"""

from paretomtl.front._common import EDGE_WEIGHT, PointResult
from paretomtl.front._continuation import continuation
from paretomtl.front._registry import (
    FrontMethodInfo,
    TraceResult,
    available_front_methods,
    front_method_info,
    register_front_method,
    trace,
)
from paretomtl.front.epo import epo_search
from paretomtl.front.exact import preference_points
from paretomtl.front.pareto_mtl import directions_from_rays, pareto_mtl
from paretomtl.front.rays import das_dennis, simplex_rays
from paretomtl.front.scalarization import (
    linear_scalarization,
    smooth_tchebycheff,
    tchebycheff,
)
from paretomtl.front.stationarity import Stationarity, bound_aware_stationarity

__all__ = [
    "EDGE_WEIGHT",
    "FrontMethodInfo",
    "PointResult",
    "Stationarity",
    "TraceResult",
    "available_front_methods",
    "bound_aware_stationarity",
    "continuation",
    "das_dennis",
    "directions_from_rays",
    "epo_search",
    "front_method_info",
    "linear_scalarization",
    "pareto_mtl",
    "preference_points",
    "register_front_method",
    "simplex_rays",
    "smooth_tchebycheff",
    "tchebycheff",
    "trace",
]
