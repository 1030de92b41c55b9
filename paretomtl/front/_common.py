"""What every front method shares: argument checks, the starts, the per-point result."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from paretomtl.front.stationarity import active_bounds, stationarity_from_jacobian

EDGE_WEIGHT = 1e-8
"""The weight given to a zero entry of a preference vector in the second pass.

With :math:`r_i = 0` the preference :math:`r_i f_i = r_j f_j` says nothing about
:math:`f_i`, and a method that drops objective i stops at any minimiser of the
others: a weakly Pareto optimal point (on ZDT, ray (1, 0) stops at any
:math:`x_1 = 0`, with :math:`f_2` up to 10). The end-ray pass
(:mod:`paretomtl.front._end_rays`) therefore runs a second pass from that point,
with the zeros lifted to ``EDGE_WEIGHT * max(r)``.
"""


@dataclass(frozen=True, eq=False)
class PointResult:
    """One run of a front method for one preference vector.

    Attributes:
        x: (n_var,) the point found, in the box.
        values: (n_obj,) the objective values there.
        objective: the method's own objective there (the scalarised value; for EPO
            the non-uniformity, for Pareto MTL the min-norm value).
        iterations: iterations taken.
        converged: whether the run met its stopping test. True when its
            stationarity measure fell to ``tol`` (relative to the gradients'
            scale; each method's ``tol`` says which measure), and also when it
            stopped at float64's floor with that measure at most 1e-6: no trial
            step changed x, the line search fell below its smallest step, or the
            objective's rounding hid every gain (:mod:`paretomtl.front._steps`).
            False otherwise: ``max_iter`` ran out first, or such a stop came
            with the measure above 1e-6. On top of that, EPO needs its finish
            converged and :math:`\\mu_r \\le \\max(\\text{preference\\_tol},
            10^{-9})`, Pareto MTL the point inside its sub-region; with zeros in
            the preference (:mod:`paretomtl.front._end_rays`) it is False where
            any pass ran out of iterations, else the second pass's value, or True
            where the bound-aware stationarity is at most
            :math:`(10^{-8} \\max_i \\|\\nabla f_i\\|)^2`.
        stationarity: :func:`paretomtl.front.bound_aware_stationarity` at ``x``.
        method: the method's registry name.
        preference: (n_obj,) the preference vector as given.
    """

    x: np.ndarray
    values: np.ndarray
    objective: float
    iterations: int
    converged: bool
    stationarity: float
    method: str
    preference: np.ndarray = field(repr=False)


def check_int(value: object, name: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum``: a TypeError (not an int) or ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def check_preference(preference: object, n_obj: int) -> np.ndarray:
    """r as float64 (n_obj,), finite, >= 0 and not all zero."""
    r = np.array(preference, dtype=np.float64)
    if r.shape != (n_obj,):
        raise ValueError(f"preference must have shape ({n_obj},); got {r.shape}")
    if not np.isfinite(r).all() or (r < 0).any() or not (r > 0).any():
        raise ValueError(
            f"preference must be finite, >= 0 and not all zero; got {np.array2string(r)}"
        )
    return r


def check_ideal(ideal: object, problem) -> np.ndarray:
    """z as float64 (n_obj,): None means the problem's ideal point, a scalar is broadcast."""
    n_obj = problem.n_obj
    if ideal is None:
        return np.array(getattr(problem, "ideal_point", np.zeros(n_obj)), dtype=np.float64)
    z = np.asarray(ideal, dtype=np.float64)
    if z.ndim == 0:
        z = np.full(n_obj, float(z))
    if z.shape != (n_obj,) or not np.isfinite(z).all():
        raise ValueError(f"ideal must be None, a scalar or finite of shape ({n_obj},); got {z}")
    return z


def check_start(problem, x0: object) -> np.ndarray:
    """A given start: float64 (n_var,), finite, clipped into the box."""
    x = np.asarray(x0, dtype=np.float64)
    if x.shape != (problem.n_var,) or not np.isfinite(x).all():
        raise ValueError(f"x0 must be finite with shape ({problem.n_var},); got {x.shape}")
    return np.clip(x, problem.lower, problem.upper)


def starts(problem, x0: object, seed: object, count: int = 1) -> np.ndarray:
    """The starts of ``count`` runs, shape (count, n_var): the one place they are drawn.

    Without ``x0``, row k is the k-th draw of
    ``numpy.random.default_rng(seed).uniform(problem.lower, problem.upper)`` (one
    draw per run, in order), so the same seed gives the same starts, bit for bit,
    and run 0 starts where a single run with that seed does. A given ``x0`` of
    shape (n_var,) starts every run; one of shape (count, n_var) starts run k at
    row k; given starts are clipped into the box. :func:`paretomtl.front.trace`
    draws the starts of all its rays here once; the methods draw here only when
    called on their own without ``x0``, and their passes take the start as given.
    """
    if x0 is None:
        rng = np.random.default_rng(seed)
        return np.array([rng.uniform(problem.lower, problem.upper) for _ in range(count)])
    X = np.asarray(x0, dtype=np.float64)
    if X.shape == (count, problem.n_var):
        return np.array([check_start(problem, x) for x in X])
    if count > 1 and X.shape != (problem.n_var,):
        raise ValueError(
            f"x0 must have shape ({problem.n_var},) or ({count}, {problem.n_var}); got {X.shape}"
        )
    return np.tile(check_start(problem, X), (count, 1))


def finish(problem, x, values, jacobian, objective, it, converged, method, r) -> PointResult:
    """The PointResult at x, with its bound-aware stationarity."""
    at_lower, at_upper = active_bounds(problem, x, 1e-12)
    theta = stationarity_from_jacobian(jacobian, at_lower, at_upper).value
    return PointResult(x, values, float(objective), it, bool(converged), theta, method, r.copy())
