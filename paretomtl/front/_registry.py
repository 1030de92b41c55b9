"""The registry of front methods (:func:`paretomtl.front.trace` runs them by name).

Kinds: ``"per-ray"``: ``obj(problem, preference, x0, **options)`` returns a
:class:`paretomtl.front.PointResult` for one ray; ``"ray-set"``: the same, but each
ray's problem depends on all of them, and ``obj`` also gets ``rays=`` (the whole set)
and ``index=`` (this ray's row); ``"walk"``: ``obj(problem, n_points, x0, *,
progress, **options)`` returns a whole :class:`paretomtl.front.TraceResult` (the
rays set only how many points).
"""

from __future__ import annotations

from paretomtl._registry import Registry

REGISTRY = Registry("paretomtl.front", kinds=("per-ray", "ray-set", "walk"), what="front method")
