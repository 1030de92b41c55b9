""":func:`trace`, which runs a registered front method over a set of rays, and its result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from paretomtl.front._common import PointResult, starts
from paretomtl.front._registry import REGISTRY


@dataclass(frozen=True, eq=False)
class TraceResult:
    """A front method run over a set of rays.

    Attributes:
        points: (n_points, n_obj) the objective values found; for per-ray methods row
            k belongs to ray k.
        xs: (n_points, n_var) the points of the box that give them.
        rays: (n_rays, n_obj) the preference vectors.
        stationarity: (n_points,) bound-aware stationarity at each point.
        converged: (n_points,) whether each run met its stopping test.
        iterations: (n_points,) iterations of each run.
        method: the method's name.
        results: the per-point :class:`PointResult` objects.
    """

    points: np.ndarray
    xs: np.ndarray
    rays: np.ndarray
    stationarity: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    method: str
    results: tuple[PointResult, ...] = field(repr=False)

    @classmethod
    def from_results(cls, results, rays: np.ndarray, method: str) -> TraceResult:
        """Stack per-point results into one TraceResult."""
        results = tuple(results)
        return cls(
            points=np.array([res.values for res in results]),
            xs=np.array([res.x for res in results]),
            rays=np.array(rays, dtype=np.float64),
            stationarity=np.array([res.stationarity for res in results]),
            converged=np.array([res.converged for res in results]),
            iterations=np.array([res.iterations for res in results]),
            method=method,
            results=results,
        )


def trace(
    problem,
    method: str,
    rays: object,
    x0: object = None,
    *,
    seed: object = 0,
    progress: Callable[[int, int], None] | None = None,
    **options: object,
) -> TraceResult:
    """Run a front method over a set of preference vectors.

    ``python -m paretomtl methods`` and :func:`paretomtl.front.available_front_methods`
    list the methods. Per-ray methods run once per ray. Walk methods
    (``"continuation"``) find as many points as there are rays, along the front from
    one start.

    *Starts.* ``trace`` draws them, once, before any method runs: without ``x0``,
    run k starts at the k-th point drawn uniformly in the box by
    ``numpy.random.default_rng(seed)`` (one draw per ray, in ray order; a walk starts
    at the first), so the same seed gives the same points, bit for bit. Each method
    gets its start as ``x0`` and never sees the seed. (The methods' own ``seed``
    parameter, for calls without ``trace``, draws the same way: a method called
    with ``seed=s`` starts where ray 0 of ``trace(..., seed=s)`` does.)

    Args:
        problem: a :class:`paretomtl.problems.Problem`.
        method: the method's name.
        rays: (n_rays, n_obj) preference vectors, e.g.
            :func:`paretomtl.front.simplex_rays`.
        x0: one start (n_var,) for every ray, or one per ray (n_rays, n_var) (per-ray
            and ray-set methods); clipped into the box.
        seed: seed or ``numpy.random.Generator`` for the random starts.
        progress: called as ``progress(done, total)`` after each point.
        **options: passed to the method (e.g. ``ideal``, ``mu``, ``max_iter``, ``tol``).

    Returns:
        A :class:`TraceResult`.

    Example:
        >>> from paretomtl.front import simplex_rays, trace
        >>> from paretomtl.problems import ZDT1
        >>> out = trace(ZDT1(n_var=5), "tchebycheff", simplex_rays(2, 3), seed=0)
        >>> out.points.round(4)  # the end rays find the front's ends
        array([[1.   , 0.   ],
               [0.382, 0.382],
               [0.   , 1.   ]])
        >>> bool(out.stationarity.max() < 1e-12)
        True
    """
    info = REGISTRY.info(method)
    R = np.asarray(rays, dtype=np.float64)
    if R.ndim != 2 or R.shape[1] != problem.n_obj or R.shape[0] < 1:
        raise ValueError(f"rays must have shape (n_rays >= 1, {problem.n_obj}); got {R.shape}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None; got {type(progress).__name__}")
    if info.kind == "walk":
        x = starts(problem, x0, seed)[0]
        return info.obj(problem, len(R), x, progress=progress, **options)
    results = []
    for k, (r, x) in enumerate(zip(R, starts(problem, x0, seed, len(R)), strict=True)):
        if info.kind == "ray-set":
            results.append(info.obj(problem, r, x, rays=R, index=k, **options))
        else:
            results.append(info.obj(problem, r, x, **options))
        if progress is not None:
            progress(k + 1, len(R))
    return TraceResult.from_results(results, R, info.name)
