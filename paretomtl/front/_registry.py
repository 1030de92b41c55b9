"""The front methods by name, and :func:`trace`, which runs one over a set of rays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from paretomtl.front._common import PointResult

KINDS = ("per-ray", "ray-set", "walk")


@dataclass(frozen=True)
class FrontMethodInfo:
    """What the registry knows about a front method.

    Attributes:
        name: the registry name (``trace(problem, name, rays)``, the CLI's ``--method``).
        obj: the method's function.
        kind: ``"per-ray"``: ``obj(problem, preference, x0, **options)`` returns a
            :class:`PointResult` for one ray; ``"ray-set"``: the same, but each ray's
            problem depends on all of them, and ``obj`` also gets ``rays=`` (the whole
            set) and ``index=`` (this ray's row); ``"walk"``: ``obj(problem, n_points,
            x0, *, seed, progress, **options)`` returns a whole :class:`TraceResult`
            (the rays set only how many points).
        paper: the paper it implements.
        summary: one line of what it does.
    """

    name: str
    obj: Callable
    kind: str
    paper: str
    summary: str


_REGISTRY: dict[str, FrontMethodInfo] = {}


def register_front_method(name: str, *, kind: str, paper: str, summary: str) -> Callable:
    """Function decorator that adds a front method to the registry under ``name``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")

    def decorator(obj: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"front method {name!r} is already registered")
        _REGISTRY[name] = FrontMethodInfo(name, obj, kind, paper, summary)
        return obj

    return decorator


def _ensure_loaded() -> None:
    # The methods register themselves on import; importing the package imports them.
    import paretomtl.front  # noqa: F401


def available_front_methods() -> tuple[str, ...]:
    """Sorted names of the registered front methods.

    Example:
        >>> from paretomtl.front import available_front_methods
        >>> "tchebycheff" in available_front_methods()
        True
    """
    _ensure_loaded()
    return tuple(sorted(_REGISTRY))


def front_method_info(name: str) -> FrontMethodInfo:
    """The :class:`FrontMethodInfo` of a registered front method.

    Example:
        >>> from paretomtl.front import front_method_info
        >>> front_method_info("stch").kind
        'per-ray'
    """
    _ensure_loaded()
    key = name.lower().replace("_", "-") if isinstance(name, str) else name
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown front method {name!r}; available: {', '.join(available_front_methods())}"
        )
    return _REGISTRY[key]


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

    ``python -m paretomtl methods`` and :func:`available_front_methods` list the
    methods. Per-ray methods run once per ray. Without ``x0``, run k starts from a
    point drawn uniformly in the box by ``numpy.random.default_rng(seed)`` (one draw
    per ray, in ray order), so the same seed gives the same points, bit for bit.
    Walk methods (``"continuation"``) find as many points as there are rays, along
    the front from one start.

    Args:
        problem: a :class:`paretomtl.problems.Problem`.
        method: the method's name.
        rays: (n_rays, n_obj) preference vectors, e.g.
            :func:`paretomtl.front.simplex_rays`.
        x0: one start (n_var,) for every ray, or one per ray (n_rays, n_var).
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
    info = front_method_info(method)
    R = np.asarray(rays, dtype=np.float64)
    if R.ndim != 2 or R.shape[1] != problem.n_obj or R.shape[0] < 1:
        raise ValueError(f"rays must have shape (n_rays >= 1, {problem.n_obj}); got {R.shape}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None; got {type(progress).__name__}")
    if info.kind == "walk":
        return info.obj(problem, len(R), x0, seed=seed, progress=progress, **options)
    starts: list[object]
    if x0 is None:
        rng = np.random.default_rng(seed)
        starts = [rng.uniform(problem.lower, problem.upper) for _ in range(len(R))]
    else:
        X0 = np.asarray(x0, dtype=np.float64)
        if X0.shape == (problem.n_var,):
            starts = [X0] * len(R)
        elif X0.shape == (len(R), problem.n_var):
            starts = list(X0)
        else:
            raise ValueError(
                f"x0 must have shape ({problem.n_var},) or ({len(R)}, {problem.n_var}); "
                f"got {X0.shape}"
            )
    results = []
    for k, (r, x) in enumerate(zip(R, starts, strict=True)):
        if info.kind == "ray-set":
            results.append(info.obj(problem, r, x, rays=R, index=k, **options))
        else:
            results.append(info.obj(problem, r, x, **options))
        if progress is not None:
            progress(k + 1, len(R))
    return TraceResult.from_results(results, R, info.name)
