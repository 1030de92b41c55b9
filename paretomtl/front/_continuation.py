r"""Continuation: walk along a bi-objective Pareto front from one Pareto-critical point.

The Pareto-critical points of a smooth two-objective problem form, away from
degenerate points, a curve: the solutions :math:`(x, s)` of the Karush-Kuhn-Tucker
(KKT) equations

.. math::

    G(x_F, s) = (1 - s)\,\nabla_F f_1(x) + s\,\nabla_F f_2(x) = 0,
    \qquad s \in [0, 1],

on the free coordinates F (those not held at a binding bound of the box), with
:math:`\lambda = (1 - s, s)` the KKT weights: :math:`|F|` equations in
:math:`|F| + 1` unknowns. Hillermeier (Nonlinear Multiobjective Optimization: A
Generalized Homotopy Approach, Birkhäuser, International Series of Numerical
Mathematics 135, 2001) shows that, under a rank condition, this set is a
differentiable manifold of dimension m - 1 (here 1), and traces it by a homotopy
(predictor-corrector) method; the Pareto Tracer of Martín & Schütze (Engineering Optimization 50(3),
2018) does the same with a corrector built on the multi-objective Newton method,
and handles box constraints. :func:`continuation` is such a predictor-corrector
walk for two objectives on a box. The KKT conditions themselves are those of
Kuhn & Tucker (1951); Schäffler, Schultz & Weinzierl (J. Optim. Theory Appl.
114(1), 2002) use the same min-norm weights to define their descent direction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from paretomtl.front._common import PointResult, check_int, finish
from paretomtl.front._registry import REGISTRY
from paretomtl.front._trace import TraceResult
from paretomtl.front.scalarization import tchebycheff, tchebycheff_pass
from paretomtl.front.stationarity import active_bounds

_BOUND_TOL = 1e-12  # relative distance to a bound under which it is active
_NEWTON_MAX = 40  # Newton iterations of one corrector run
_NEWTON_TOL = 1e-12  # relative KKT residual at which the corrector stops
_HALVINGS = 10  # walk-step halvings before a walk gives up
_MIN_STEPS = 32  # the default walk step is at most 1/32 of the end-start-end polyline


@dataclass(frozen=True, eq=False)
class _Node:
    """A corrected point of the critical curve: x, its values/Jacobian, weight s, held set."""

    x: np.ndarray
    values: np.ndarray
    jacobian: np.ndarray
    s: float
    held: np.ndarray
    iterations: int


def _weight(jacobian: np.ndarray, free: np.ndarray) -> float:
    """The s in [0, 1] minimising ||(1 - s) g1_F + s g2_F|| (least squares)."""
    g1, g2 = jacobian[0, free], jacobian[1, free]
    d = g2 - g1
    dd = float(d @ d)
    if not np.isfinite(dd) or dd == 0.0:
        return 0.5
    return float(np.clip(-(g1 @ d) / dd, 0.0, 1.0))


def _binding(problem, x: np.ndarray, jacobian: np.ndarray, s: float) -> np.ndarray:
    """Coordinates at a bound that the KKT combination pushes against (held there)."""
    at_lower, at_upper = active_bounds(problem, x, _BOUND_TOL)
    with np.errstate(invalid="ignore"):
        v = (1.0 - s) * jacobian[0] + s * jacobian[1]
        tiny = 1e-12 * max(float(np.nanmax(np.abs(np.where(np.isfinite(v), v, 0.0)))), 1e-300)
    return (at_lower & (v > tiny)) | (at_upper & (v < -tiny))


def _kkt_hessian(problem, x: np.ndarray, s: float, free: np.ndarray) -> np.ndarray:
    """((1 - s) H_1 + s H_2) restricted to F x F, one Hessian-vector product per column."""
    idx = np.flatnonzero(free)
    M = np.empty((len(idx), len(idx)))
    e = np.zeros(problem.n_var)
    for j, k in enumerate(idx):
        e[k] = 1.0
        hv = problem.hvp(x, e)
        e[k] = 0.0
        M[:, j] = ((1.0 - s) * hv[0] + s * hv[1])[idx]
    return M


def _tangent(problem, node: _Node) -> tuple[np.ndarray, float, np.ndarray] | None:
    """Unit objective-space tangent of the curve at node, f_1 increasing: (dx, ds, dF)."""
    free = ~node.held
    if not free.any():
        return None
    J_F = node.jacobian[:, free]
    if not np.isfinite(J_F).all():
        return None
    M = _kkt_hessian(problem, node.x, node.s, free)
    A = np.column_stack([M, J_F[1] - J_F[0]])
    if not np.isfinite(A).all():
        return None
    null = np.linalg.svd(A)[2][-1]  # a unit vector spanning the kernel of A
    dF = J_F @ null[:-1]
    norm = float(np.linalg.norm(dF))
    if not norm > 1e-14 * max(float(np.abs(J_F).max()), 1e-300):
        return None  # the curve does not move in objective space here
    sign = 1.0 if dF[0] - dF[1] >= 0 else -1.0  # along the front, f_1 rises as f_2 falls
    dx = np.zeros(problem.n_var)
    dx[free] = sign * null[:-1] / norm
    return dx, sign * float(null[-1]) / norm, sign * dF / norm


def _correct(
    problem, x: np.ndarray, s: float, held: np.ndarray, target: np.ndarray, normal: np.ndarray
) -> _Node | None:
    """Newton on the KKT equations plus normal . (F(x) - target) = 0; None if it fails."""
    lo, hi = problem.lower, problem.upper
    x = np.clip(np.asarray(x, dtype=np.float64), lo, hi)
    held = held.copy()
    x[held] = np.where(x[held] - lo[held] <= hi[held] - x[held], lo[held], hi[held])
    f_scale = max(float(np.abs(target).max()), 1.0)
    total, releases = 0, 0
    while True:
        for it in range(_NEWTON_MAX):  # noqa: B007 - the count is reported
            values, jacobian = problem.evaluate(x)
            free = ~held
            J_F = jacobian[:, free]
            if not free.any() or not np.isfinite(J_F).all():
                return None
            G = (1.0 - s) * J_F[0] + s * J_F[1]
            phi = float(normal @ (values - target))
            g_scale = max(float(np.linalg.norm(J_F, axis=1).max()), 1e-300)
            if np.linalg.norm(G) <= _NEWTON_TOL * g_scale and abs(phi) <= _NEWTON_TOL * f_scale:
                break
            M = _kkt_hessian(problem, x, s, free)
            n = M.shape[0]
            A = np.zeros((n + 1, n + 1))
            A[:n, :n], A[:n, n], A[n, :n] = M, J_F[1] - J_F[0], normal @ J_F
            rhs = -np.concatenate([G, [phi]])
            if not np.isfinite(A).all():
                return None
            step = np.linalg.lstsq(A, rhs, rcond=None)[0]
            dx = step[:n]
            # Fraction to the boundary: a free coordinate goes at most half way to a
            # bound per step; one already at a bound and pushed out is held there.
            xf, lf, hf = x[free], lo[free], hi[free]
            with np.errstate(divide="ignore", invalid="ignore"):
                room = np.where(dx > 0, (hf - xf) / dx, np.where(dx < 0, (lf - xf) / dx, np.inf))
            stuck = room <= 0.0
            if stuck.any():
                idx = np.flatnonzero(free)[stuck]
                held[idx] = True
                continue
            alpha = min(1.0, 0.5 * float(room.min())) if room.min() < 1.0 else 1.0
            x = x.copy()
            x[free] = np.clip(xf + alpha * dx, lf, hf)
            s += alpha * float(step[n])
        else:
            return None
        total += it
        if not -1e-9 <= s <= 1.0 + 1e-9:  # not Pareto critical: weights off the simplex
            return None
        s = float(np.clip(s, 0.0, 1.0))
        # A held coordinate whose KKT multiplier changed sign leaves its bound.
        v = (1.0 - s) * jacobian[0] + s * jacobian[1]
        at_lower, at_upper = active_bounds(problem, x, _BOUND_TOL)
        tiny = 1e-10 * g_scale
        wrong = held & ((at_lower & (v < -tiny)) | (at_upper & (v > tiny)))
        if not wrong.any() or releases >= 2:
            return _Node(x, values, jacobian, s, held, total)
        held &= ~wrong
        releases += 1


def _walk(problem, node: _Node, sense: float, end: np.ndarray, h0: float) -> list[_Node]:
    """Corrected points from node towards the end (sense +1: f_1 rising), node excluded."""
    out: list[_Node] = []
    lo, hi = problem.lower, problem.upper
    h, h_min = h0, h0 * 0.5**_HALVINGS
    for _ in range(int(100 * np.linalg.norm(node.values - end) / h0) + 100):
        if np.linalg.norm(node.values - end) <= h:
            break
        try:
            tangent = _tangent(problem, node)
        except ValueError:  # e.g. an unbounded Hessian at the box's edge (ZDT1's x_1 = 0)
            break
        if tangent is None:
            break
        dx, ds, dF = (sense * t for t in tangent)
        new = None
        while h >= h_min:
            x_pred = node.x + h * dx
            leaving = (x_pred < lo) | (x_pred > hi)
            target = node.values + h * dF
            try:
                new = _correct(problem, x_pred, node.s + h * ds, node.held | leaving, target, dF)
            except ValueError:
                new = None
            if new is not None:
                ahead = float(dF @ (new.values - node.values))
                if ahead > 0.25 * h and np.linalg.norm(new.values - node.values) < 2.0 * h:
                    break
                new = None
            h *= 0.5
        if new is None or float(dF @ (end - new.values)) < 0.0:
            break  # no step left, or it passed the end of the front
        out.append(new)
        node = new
        if new.iterations <= 4:  # an easy step: let h grow back towards h0
            h = min(2.0 * h, h0)
    return out


def _polish_end(problem, res: PointResult, i: int) -> PointResult | None:
    r"""Newton on :math:`\nabla_F f_i = 0` from ``res``; None unless it ends at a strict minimiser.

    An end of the front minimises :math:`f_i` (weights :math:`\lambda = e_i`).
    Where :math:`\nabla^2_{FF} f_i` is positive definite at the result (F: the
    coordinates not held at a bound that :math:`\nabla f_i` pushes against), the
    point is a strict local minimiser of :math:`f_i`, hence locally Pareto
    optimal, and Newton has reached it to rounding. Otherwise (ZDT's linear
    :math:`f_1`: a zero block, whose minimisers of :math:`f_1` alone are only
    weakly Pareto optimal) it returns None.
    """
    lo, hi = problem.lower, problem.upper
    x = res.x.copy()
    try:
        for _ in range(_NEWTON_MAX):
            values, jacobian = problem.evaluate(x)
            free = ~_binding(problem, x, jacobian, float(i))
            g = jacobian[i, free]
            if not free.any() or not np.isfinite(g).all():
                return None
            M = _kkt_hessian(problem, x, float(i), free)
            if not np.isfinite(M).all():
                return None
            eig = np.linalg.eigvalsh(0.5 * (M + M.T))
            if eig[0] <= 1e-10 * max(abs(float(eig[-1])), 1e-300):
                return None  # not a strict minimiser (or a saddle)
            if not g.any():
                break
            x_new = x.copy()
            x_new[free] = np.clip(x[free] + np.linalg.solve(M, -g), lo[free], hi[free])
            done = np.linalg.norm(x_new - x) <= 1e-15 * (1.0 + np.linalg.norm(x))
            x = x_new
            if done:
                break
        else:
            return None
    except (ValueError, np.linalg.LinAlgError):
        return None
    values, jacobian = problem.evaluate(x)
    return finish(
        problem, x, values, jacobian, values[i], res.iterations, True, res.method, res.preference
    )


def _end(problem, i: int, x: np.ndarray, max_iter: int) -> PointResult:
    """The end of the front that minimises f_i, from the start x.

    First :math:`f_i` alone (the end ray's first pass,
    :func:`paretomtl.front.scalarization.tchebycheff_pass`) and Newton
    (:func:`_polish_end`); where that is not a strict minimiser, the full end-ray
    run with its second pass (:mod:`paretomtl.front._end_rays`).
    """
    r = np.eye(2)[i]
    alone = tchebycheff_pass(problem, r, x, max_iter=max_iter)
    polished = _polish_end(problem, alone, i)
    if polished is not None:
        return polished
    return tchebycheff(problem, r, x, max_iter=max_iter)


def _node_from(problem, res: PointResult) -> _Node:
    """The start as a node: s from all finite columns, then the binding bounds held."""
    values, jacobian = problem.evaluate(res.x)
    finite = np.isfinite(jacobian).all(axis=0)
    held = _binding(problem, res.x, jacobian, _weight(jacobian, finite))
    s = _weight(jacobian, ~held & finite)
    return _Node(res.x, values, jacobian, s, held, res.iterations)


def _ray(values: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The Tchebycheff preference a point meets: r ∝ 1/(F - z), i.e. (F_2 - z_2, F_1 - z_1)."""
    d = np.maximum(values - z, 0.0)
    total = float(d.sum())
    return d[::-1] / total if total > 0 else np.array([0.5, 0.5])


@REGISTRY.register(
    "continuation",
    kind="walk",
    paper=(
        "Hillermeier, Nonlinear Multiobjective Optimization: A Generalized Homotopy "
        "Approach, Birkhauser 2001"
    ),
    summary=(
        "walk along the front from one Pareto-critical point: tangent predictor, "
        "corrector back to stationarity"
    ),
)
def continuation(
    problem,
    n_points: int,
    x0: object = None,
    *,
    seed: object = 0,
    progress: Callable[[int, int], None] | None = None,
    walk_step: float | None = None,
    max_iter: int = 2000,
) -> TraceResult:
    r"""Trace a bi-objective Pareto front by predictor-corrector continuation.

    Hillermeier's generalized homotopy approach (Nonlinear Multiobjective
    Optimization: A Generalized Homotopy Approach, Birkhäuser 2001) for two
    objectives on a box, with the box handled as in the Pareto Tracer (Martín &
    Schütze, Engineering Optimization 50(3), 2018): coordinates held at a binding
    bound leave the system.

    *The curve.* At a Pareto-critical x with KKT weights :math:`\lambda = (1-s,
    s)` and free coordinates F (not held at a bound that
    :math:`\sum_i \lambda_i \nabla f_i` pushes against; on ZDT,
    :math:`x_2 = \dots = x_n = 0` are held and :math:`x_1` is free),

    .. math::

        G(x_F, s) = \sum_i \lambda_i \nabla_F f_i(x) = 0,\qquad
        \sum_i \lambda_i = 1.

    Differentiating along the curve, its tangent :math:`(\dot x_F, \dot s)`
    spans the kernel of the :math:`|F| \times (|F|+1)` matrix
    :math:`[\,H_\lambda \mid \nabla_F f_2 - \nabla_F f_1\,]`,
    :math:`H_\lambda = \sum_i \lambda_i \nabla^2_{FF} f_i` (built from
    :math:`|F|` Hessian-vector products): equivalently
    :math:`H_\lambda \dot x_F + J_F^\top \mu = 0`, :math:`\mathbf 1^\top \mu = 0`
    with :math:`\mu = \dot s\,(-1, 1)`. The kernel is taken from an SVD, so turning
    points of s (where :math:`H_\lambda` is singular) do not break it; ZDT2's and
    the Pareto MTL toy's concave fronts have indefinite :math:`H_\lambda`, which
    does not matter either. It is scaled to a unit objective-space tangent
    :math:`\dot F = J_F \dot x_F`, oriented so that :math:`f_1` rises.

    *Predictor.* :math:`x + h \dot x`, :math:`s + h \dot s`: an objective-space
    step of about h; coordinates the step takes out of the box are clipped and
    held at their bound for the corrector.

    *Corrector.* Newton's method on the square system

    .. math::

        G(x_F, s) = 0,\qquad \dot F^\top \bigl(F(x) - (F(x_k) + h\dot F)\bigr) = 0,

    which keeps the point on the line through the predicted objective point normal
    to the tangent (a pseudo-arclength condition written in objective space, so the
    objective-space spacing is what is controlled). Newton rather than a
    Tchebycheff run with :math:`r \propto 1/F_{pred}`: the Hessian products are at
    hand, it converges quadratically from the predictor (two or three iterations)
    to a KKT residual at rounding level, where the first-order min-max iteration
    takes tens of iterations on the flat Pareto MTL toy, and its second equation
    fixes where along the front the point lands (a Tchebycheff run goes to the
    front along its ray, wherever that is). A free coordinate moves at most half way to a bound
    per Newton step (one already at a bound and pushed out is held); after
    convergence a held coordinate whose multiplier changed sign is released, and
    s outside [0, 1] (not Pareto critical) rejects the point. A failed corrector
    halves h (down to :math:`2^{-10}` of the walk step).

    *The walk and the ends.* The start is the Tchebycheff point of ray (1/2, 1/2)
    (:func:`paretomtl.front.tchebycheff` from ``x0``, or from a uniform draw by
    ``seed``). The two ends come from the end rays (1, 0) and (0, 1) (Tchebycheff
    with its second pass), never from the tangent: at ZDT1's :math:`x_1 = 0`
    :math:`\partial f_2/\partial x_1 = -\infty` and the Hessian is unbounded. Each
    end ray's first pass (minimise :math:`f_i` alone) is followed by Newton on
    :math:`\nabla_F f_i = 0`; where :math:`\nabla^2_{FF} f_i` is positive definite
    there (the quadratics, the toy) that is a strict minimiser of :math:`f_i`, a
    locally Pareto optimal end, exact to rounding (the second pass would stop
    about ``EDGE_WEIGHT`` short of it, and on an ill-conditioned quadratic only
    after thousands of iterations). Elsewhere (ZDT's linear :math:`f_1`) the full
    end-ray run with its second pass gives the end. The
    walk goes from the start both ways until an end lies within one step, with
    steps of ``walk_step`` (default: the polyline end-start-end's length divided by
    :math:`\max(2(\text{n\_points}-1), 32)`). The walked polyline is then resampled
    at ``n_points`` equal arclength positions; each interior one is corrected
    by the same Newton system, with the normal being the direction of the chord it
    lies on (so it lands on the front where the normal line through the sample
    crosses it), and a Tchebycheff run with :math:`r \propto 1/F` is the fallback
    if Newton fails. The first and last points are the ends; ``n_points = 1``
    returns the start.

    The method follows the curve of Pareto-*critical* points, which is the front
    when that is connected and its points are all critical for one connected
    piece of the curve (ZDT1, ZDT2, the quadratics, the Pareto MTL toy). On a
    disconnected front (ZDT3) the critical curve also holds dominated pieces, and
    the walk can step across a gap onto them: every returned point is still
    critical, but some are dominated; use a per-ray method there.

    Cost: per corrector iteration one evaluation and :math:`|F|` Hessian-vector
    products (on ZDT, :math:`|F| = 1`), usually two or three iterations a point;
    three Tchebycheff runs (start and ends) besides.

    Args:
        problem: a :class:`paretomtl.problems.Problem` with 2 objectives and
            Hessian-vector products (``has_hvp``).
        n_points: how many points to return, >= 1.
        x0: the start of the first Tchebycheff run, shape (n_var,); default uniform
            in the box from ``seed``.
        seed: seed or ``numpy.random.Generator`` for the default start.
        progress: called as ``progress(done, n_points)`` after each returned point.
        walk_step: the walk's objective-space step, > 0; default above.
        max_iter: iteration cap of the Tchebycheff runs.

    Returns:
        A :class:`paretomtl.front.TraceResult` with ``n_points`` points sorted by
        increasing :math:`f_1`. Its ``rays`` are the Tchebycheff preferences the
        points meet, :math:`r \propto 1/(F - z)` normalised to sum 1, with
        :math:`z = \min(0, \min_k F_k)` per objective (so (1, 0) and (0, 1) at the
        ends of a front in the positive quadrant); each point's ``objective`` is
        :math:`\max_i r_i (f_i - z_i)`, and ``iterations`` its corrector's Newton
        iterations (or its Tchebycheff run's iterations).

    Raises:
        ValueError: if the problem does not have 2 objectives or has no
            Hessian-vector products, or for a bad ``n_points`` / ``walk_step``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.front import continuation
        >>> from paretomtl.problems import ConvexQuadratic
        >>> out = continuation(ConvexQuadratic(n_var=3), 5, seed=0)
        >>> out.points.round(3)  # sqrt(f1) + sqrt(f2) = 1, evenly spaced along it
        array([[0.   , 1.   ],
               [0.051, 0.599],
               [0.25 , 0.25 ],
               [0.599, 0.051],
               [1.   , 0.   ]])
        >>> bool(out.stationarity.max() < 1e-20)
        True
    """
    n_points = check_int(n_points, "n_points", 1)
    if problem.n_obj != 2:
        raise ValueError(
            f"continuation traces bi-objective fronts: the problem must have n_obj = 2; "
            f"{problem!r} has n_obj = {problem.n_obj} (use a per-ray method such as "
            "'tchebycheff' for more objectives)"
        )
    if not getattr(problem, "has_hvp", False):
        raise ValueError(
            f"continuation needs Hessian-vector products, and {problem!r} has no "
            "Hessian-vector products (has_hvp is False); use a per-ray method such as "
            "'tchebycheff'"
        )
    if walk_step is not None and not (
        isinstance(walk_step, (int, float)) and np.isfinite(walk_step) and walk_step > 0
    ):
        raise ValueError(f"walk_step must be None or a positive finite number; got {walk_step!r}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None; got {type(progress).__name__}")

    first = tchebycheff(problem, [0.5, 0.5], x0, seed=seed, max_iter=max_iter)
    if n_points == 1:
        res = _as_continuation(problem, first.x, first.iterations, first.converged, None)
        if progress is not None:
            progress(1, 1)
        return TraceResult.from_results([res], res.preference[None, :], "continuation")

    ends = [_end(problem, i, first.x, max_iter) for i in (0, 1)]
    start = _node_from(problem, first)
    E0, E1 = ends[0].values, ends[1].values
    length = float(np.linalg.norm(start.values - E0) + np.linalg.norm(E1 - start.values))
    h0 = float(walk_step) if walk_step is not None else length / max(2 * (n_points - 1), _MIN_STEPS)
    if h0 > 0.0:
        left = _walk(problem, start, -1.0, E0, h0)[::-1]
        right = _walk(problem, start, 1.0, E1, h0)
    else:  # the front is one point
        left, right = [], []
    interior = [*left, start, *right]
    chain_x = np.array([ends[0].x, *(nd.x for nd in interior), ends[1].x])
    chain_f = np.array([E0, *(nd.values for nd in interior), E1])
    chain_node: list[_Node | None] = [None, *interior, None]

    seg = np.linalg.norm(np.diff(chain_f, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    z = np.minimum(0.0, chain_f.min(axis=0))
    out: list[PointResult] = []
    for k, pos in enumerate(np.linspace(0.0, cum[-1], n_points)):
        if k == 0 or k == n_points - 1 or cum[-1] == 0.0:
            end = ends[0] if k == 0 else ends[1]
            out.append(_as_continuation(problem, end.x, end.iterations, end.converged, z))
        else:
            out.append(_resample(problem, pos, cum, chain_x, chain_f, chain_node, z, max_iter))
        if progress is not None:
            progress(k + 1, n_points)
    return TraceResult.from_results(out, np.array([res.preference for res in out]), "continuation")


def _resample(problem, pos, cum, chain_x, chain_f, chain_node, z, max_iter) -> PointResult:
    """The corrected point at arclength ``pos`` of the walked polyline."""
    a = int(np.clip(np.searchsorted(cum, pos, side="right") - 1, 0, len(cum) - 2))
    while cum[a + 1] - cum[a] <= 0.0 and a + 1 < len(cum) - 1:
        a += 1
    width = cum[a + 1] - cum[a]
    theta = float(np.clip((pos - cum[a]) / width, 0.0, 1.0)) if width > 0 else 0.0
    x = (1.0 - theta) * chain_x[a] + theta * chain_x[a + 1]
    target = (1.0 - theta) * chain_f[a] + theta * chain_f[a + 1]
    normal = (chain_f[a + 1] - chain_f[a]) / width if width > 0 else np.array([1.0, -1.0])
    normal = normal / np.linalg.norm(normal)
    near = chain_node[a] if chain_node[a] is not None else chain_node[a + 1]
    node = None
    if near is not None:
        try:
            _, jacobian = problem.evaluate(x)
            s = _weight(jacobian, ~near.held & np.isfinite(jacobian).all(axis=0))
            node = _correct(problem, x, s, near.held, target, normal)
        except ValueError:
            node = None
    if node is not None:
        return _as_continuation(problem, node.x, node.iterations, True, z)
    res = tchebycheff(problem, _ray(target, z), x, ideal=z, max_iter=max_iter)
    return _as_continuation(problem, res.x, res.iterations, res.converged, z)


def _as_continuation(problem, x, iterations, converged, z) -> PointResult:
    """The PointResult of one returned point, with its ray r ∝ 1/(F - z)."""
    values, jacobian = problem.evaluate(x)
    if z is None:
        z = np.minimum(0.0, values)
    r = _ray(values, z)
    objective = float(np.max(r * (values - z)))
    return finish(problem, x, values, jacobian, objective, iterations, converged, "continuation", r)
