"""Preference-guided methods that find Pareto points, and the tools to run them.

- Rays: :func:`simplex_rays` (evenly spread; Das-Dennis for 3+ objectives),
  :func:`das_dennis`.
- Stationarity on the box: :func:`bound_aware_stationarity`.
- Scalarisations: :func:`linear_scalarization`, :func:`tchebycheff`,
  :func:`smooth_tchebycheff`.
- The registry: :func:`available_front_methods`, :func:`front_method_info`;
  :func:`trace` runs any registered method over a set of rays.

This layer imports numpy, paretomtl.solvers, paretomtl.problems (the
:class:`~paretomtl.problems.Problem` type; problems never import front) and the
shared registry (paretomtl._registry) only.

Example:
    >>> from paretomtl.front import simplex_rays, trace
    >>> from paretomtl.problems import ZDT2
    >>> out = trace(ZDT2(n_var=5), "linear", simplex_rays(2, 5), seed=0)
    >>> out.points[:, 0].round(3)  # a concave front: only its ends are found
    array([1., 0., 0., 0., 0.])
"""

from collections.abc import Callable

from paretomtl._registry import Entry as FrontMethodInfo
from paretomtl.front._common import EDGE_WEIGHT, PointResult
from paretomtl.front._continuation import continuation
from paretomtl.front._registry import REGISTRY
from paretomtl.front._trace import TraceResult, trace
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


def available_front_methods() -> tuple[str, ...]:
    """Sorted names of the registered front methods.

    Example:
        >>> from paretomtl.front import available_front_methods
        >>> "tchebycheff" in available_front_methods()
        True
    """
    return REGISTRY.available()


def front_method_info(name: str) -> FrontMethodInfo:
    """What the registry knows about a front method: a :class:`FrontMethodInfo`.

    Its ``name`` is the registry name (``trace(problem, name, rays)``, the CLI's
    ``--method``), ``obj`` the method's function, ``paper`` and ``summary`` say what
    it implements, and ``kind`` how :func:`trace` calls it: ``"per-ray"``:
    ``obj(problem, preference, x0, **options)`` returns a :class:`PointResult` for
    one ray; ``"ray-set"``: the same, but each ray's problem depends on all of them,
    and ``obj`` also gets ``rays=`` (the whole set) and ``index=`` (this ray's row);
    ``"walk"``: ``obj(problem, n_points, x0, *, progress, **options)`` returns a
    whole :class:`TraceResult` (the rays set only how many points). Names are
    case-insensitive, ``_`` read as ``-``; an unknown name is a ValueError listing
    the registered ones.

    Example:
        >>> from paretomtl.front import front_method_info
        >>> front_method_info("stch").kind
        'per-ray'
    """
    return REGISTRY.info(name)


def register_front_method(name: str, *, kind: str, paper: str, summary: str) -> Callable:
    """Function decorator that adds a front method to the registry under ``name``.

    ``kind`` is one of ``"per-ray"``, ``"ray-set"``, ``"walk"``
    (:func:`front_method_info` says how :func:`trace` calls each); ``name`` is
    lower case with ``-``.

    Example:
        >>> from paretomtl.front import register_front_method
        >>> register_front_method("mine", kind="grid", paper="", summary="")
        Traceback (most recent call last):
        ...
        ValueError: kind must be one of ('per-ray', 'ray-set', 'walk'); got 'grid'
    """
    return REGISTRY.register(name, kind=kind, paper=paper, summary=summary)


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
