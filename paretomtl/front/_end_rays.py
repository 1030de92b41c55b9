r"""The end-ray pass: a second pass for preference vectors with zeros.

A per-ray method given a preference r with :math:`r_i = 0` drops objective i, and
its single pass ends at a weakly Pareto optimal point :math:`x^*` (on ZDT, ray
(1, 0) at any :math:`x_1 = 0`). :func:`run_with_end_rays` runs such a pass, then a
second one from :math:`x^*`, with the zeros lifted to ``EDGE_WEIGHT * max(r)``
and the binding bounds held: the coordinates at a bound of the box at
:math:`x^*` that a kept objective (:math:`r_i > 0`) would rise by leaving. It
lowers the dropped objectives without undoing what the first pass reached (on
ZDT1, ray (1, 0): :math:`x_1 = 0` stays, :math:`g` falls to 1, the front's end
(0, 1); on DTLZ2, ray (0, 0, 1): :math:`x_1 = 0` stays and the distance
variables, which :math:`f_3 = 0` left wherever the first pass threw them, return
to 1/2). Holding the binding bounds keeps the second pass well conditioned:
lifting the zeros from the start instead makes the problem's curvature grow like
1/EDGE_WEIGHT (ZDT1's :math:`\sqrt{x_1}` at :math:`x_1 \approx 10^{-8}`) and
stalls the descent.

A ray with two or more zeros (a vertex of the simplex with three or more
objectives) has a first-pass set with several faces (DTLZ2, ray (1, 0, 0):
:math:`x_1 = 1` or :math:`x_2 = 1`); held on the wrong one, the second pass ends
in a corner of the front ((0, 0, 1)) that no first-order step leaves. Such rays
get ``_EXTRA_STARTS`` more starts, whose first passes are the caller's
``vertex_pass`` (linear scalarisation's: steps that stop at the first bound they
meet, so different starts reach different faces; a min-max step solves its
box-constrained model exactly and throws :math:`x_1` and :math:`x_2` onto their
bounds together, always into the corner), capped at ``_EXTRA_ITER`` iterations;
the converged end with the smallest lifted Tchebycheff value wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from paretomtl.front._common import (
    EDGE_WEIGHT,
    PointResult,
    check_ideal,
    check_preference,
    finish,
    starts,
)
from paretomtl.front.stationarity import active_bounds

_BINDING_TOL = 1e-8  # relative distance to a bound within which pass 1 "reached" it
_EXTRA_STARTS = 7  # more starts for rays with two or more zeros (DTLZ2: each lands on
# the right face about half the time, so all 8 miss about once in 256 vertex rays)
_EXTRA_ITER = 300  # their iteration cap (a start that reaches the right face needs ~50)

SinglePass = Callable[..., PointResult]  # (problem, preference, x0, **options)


class _HeldCoordinates:
    """A view of a problem with some coordinates held where they are.

    The held coordinates' bounds collapse to their values and their Jacobian
    columns read 0 (they cannot move, and a non-finite partial there, such as ZDT1's
    :math:`\\partial f_2/\\partial x_1 = -\\infty` at :math:`x_1 = 0`, must not
    poison the step). Hessian-vector products, where the problem has them, are
    those of the free coordinates (held rows and columns read 0), so that the
    second pass takes Newton steps as the first does.
    """

    def __init__(self, problem, x: np.ndarray, held: np.ndarray) -> None:
        self.problem, self.held = problem, held
        self.n_var, self.n_obj = problem.n_var, problem.n_obj
        self.ideal_point = getattr(problem, "ideal_point", np.zeros(problem.n_obj))
        self.has_hvp = bool(getattr(problem, "has_hvp", False))
        self.lower = np.where(held, x, problem.lower)
        self.upper = np.where(held, x, problem.upper)

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, jacobian = self.problem.evaluate(x)
        jacobian = jacobian.copy()
        jacobian[:, self.held] = 0.0
        return values, jacobian

    def hvp_batch(self, X: np.ndarray, V: np.ndarray) -> np.ndarray:
        V = np.array(V, dtype=np.float64)
        V[:, self.held] = 0.0
        H = self.problem.hvp_batch(X, V).copy()
        H[:, :, self.held] = 0.0
        return H


def _binding_bounds(problem, x: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Coordinates at a bound that some kept objective would rise by leaving."""
    at_lower, at_upper = active_bounds(problem, x, _BINDING_TOL)
    jacobian = problem.evaluate(x)[1][kept]
    with np.errstate(invalid="ignore"):
        tiny = 1e-12 * np.nanmax(np.abs(np.where(np.isfinite(jacobian), jacobian, np.nan)))
    rises_in = (jacobian > tiny).any(axis=0)  # a larger x_k raises a kept objective
    rises_out = (jacobian < -tiny).any(axis=0)
    return (at_lower & rises_in) | (at_upper & rises_out)


def _second_pass(single_pass: SinglePass, problem, r, first: PointResult, options) -> PointResult:
    """From the first pass's end, the lifted preference with the binding bounds held."""
    lifted = np.maximum(r, EDGE_WEIGHT * r.max())
    held = _binding_bounds(problem, first.x, r > 0)
    at_lower, _ = active_bounds(problem, first.x, _BINDING_TOL)
    x = first.x.copy()  # held coordinates sit exactly on their bound
    x[held] = np.where(at_lower, problem.lower, problem.upper)[held]
    second = single_pass(_HeldCoordinates(problem, x, held), lifted, x, **options)
    values, jacobian = problem.evaluate(second.x)
    out = finish(
        problem,
        second.x,
        values,
        jacobian,
        second.objective,
        first.iterations + second.iterations,
        False,
        second.method,
        r,
    )
    # The lifted preference cannot be met with the binding bounds held (EPO
    # reports that as not converged), and the first pass may stop short of its
    # weakly Pareto point (its line search ending at rounding); what counts is
    # that the end point is stationary. But not when a pass ran out of
    # iterations: more of them might have taken it elsewhere, so that result is
    # not converged, stationary or not.
    finite = np.where(np.isfinite(jacobian), jacobian, 0.0)
    scale = max(float(np.linalg.norm(finite, axis=1).max()), np.finfo(float).tiny)
    stationary = out.stationarity <= (1e-8 * scale) ** 2
    cap = options.get("max_iter")
    capped = _ran_out(first, cap) or _ran_out(second, cap)
    return replace(out, converged=not capped and (second.converged or stationary))


def _ran_out(res: PointResult, max_iter: object) -> bool:
    """Whether a pass used its ``max_iter`` iterations without meeting its test.

    A pass that meets its test stops before its cap (the loops count from 0), so
    an unconverged pass with ``iterations >= max_iter`` ran out. Passes with a
    finish or a retry (EPO, Tchebycheff's corner retry) add the iterations of
    their runs, so this can also flag an unconverged pass whose runs each stopped
    short of the cap: it then stays unconverged, as it said.
    """
    return not res.converged and max_iter is not None and res.iterations >= int(max_iter)


def run_with_end_rays(
    single_pass: SinglePass,
    problem,
    preference: object,
    x: np.ndarray,
    *,
    vertex_pass: SinglePass,
    **options: object,
) -> PointResult:
    """``single_pass(problem, preference, x, **options)``, with the end-ray pass for zeros.

    A preference with every entry > 0 gets the single pass alone. One with zeros
    gets the second pass (module docstring); one with two or more zeros also the
    extra starts, whose first passes are ``vertex_pass(problem, r, x0,
    max_iter=...)``. Their starts are drawn by :func:`paretomtl.front._common.starts`
    from the bits of the first end point, so that runs repeat.

    ``iterations`` counts every pass run, the extra starts' included. ``converged``
    is the second pass's, or True where that pass stopped short of its test at a
    stationary point (EPO: the lifted preference cannot be met with the binding
    bounds held); False wherever a pass ran out of iterations (``max_iter``)
    without meeting its test, stationary or not.
    """
    r = check_preference(preference, problem.n_obj)
    if (r > 0).all():
        return single_pass(problem, r, x, **options)
    first = single_pass(problem, r, x, **options)
    best = _second_pass(single_pass, problem, r, first, options)
    if (r == 0).sum() < 2:
        return best
    lifted = np.maximum(r, EDGE_WEIGHT * r.max())
    z = check_ideal(options.get("ideal"), problem)

    def rank(res: PointResult) -> tuple[bool, float]:
        return (not res.converged, float(np.max(lifted * (res.values - z))))

    quick = {**options, "max_iter": min(int(options.get("max_iter", _EXTRA_ITER)), _EXTRA_ITER)}
    seed = np.frombuffer(best.x.tobytes(), dtype=np.uint32)
    iterations = best.iterations
    for x0 in starts(problem, None, seed, _EXTRA_STARTS):
        first = vertex_pass(problem, r, x0, max_iter=quick["max_iter"])
        other = _second_pass(single_pass, problem, r, first, quick)
        iterations += other.iterations
        if rank(other) < rank(best):
            best = other
    return replace(best, iterations=iterations)  # every start's passes count
