"""Preference-guided methods that find one Pareto point per preference vector (ray).

- Rays: :func:`simplex_rays` (evenly spread; Das-Dennis for 3+ objectives),
  :func:`das_dennis`.
- Stationarity on the box: :func:`bound_aware_stationarity`.
- Scalarisations: :func:`linear_scalarization`, :func:`tchebycheff`,
  :func:`smooth_tchebycheff`; :func:`trace` runs one per ray.

This layer imports numpy (and paretomtl.solvers) only.

Example:
    >>> from paretomtl.front import simplex_rays, trace
    >>> from paretomtl.problems import ZDT2
    >>> out = trace(ZDT2(n_var=5), "linear", simplex_rays(2, 5), seed=0)
    >>> out.points[:, 0].round(3)  # a concave front: only its ends (ray (0, 1) minimises f2)
    array([1., 1., 1., 0., 0.])
"""

from paretomtl.front.rays import das_dennis, simplex_rays
from paretomtl.front.scalarization import (
    ScalarizationResult,
    TraceResult,
    linear_scalarization,
    smooth_tchebycheff,
    tchebycheff,
    trace,
)
from paretomtl.front.stationarity import Stationarity, bound_aware_stationarity

__all__ = [
    "ScalarizationResult",
    "Stationarity",
    "TraceResult",
    "bound_aware_stationarity",
    "das_dennis",
    "linear_scalarization",
    "simplex_rays",
    "smooth_tchebycheff",
    "tchebycheff",
    "trace",
]
