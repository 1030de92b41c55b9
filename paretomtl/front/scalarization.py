r"""Scalarisation methods: one Pareto point per preference vector, in the box.

- :func:`linear_scalarization`: minimise :math:`\sum_i r_i f_i(x)`.
- :func:`tchebycheff`: minimise :math:`\max_i r_i (f_i(x) - z_i)`.
- :func:`smooth_tchebycheff`: minimise
  :math:`\mu \log \sum_i e^{r_i (f_i(x) - z_i)/\mu}` (Lin, Zhang, Xi, Liu & Liu,
  ICML 2024).
- :func:`trace`: one of them per ray, the found points in one array.

The smooth ones are solved by projected gradient descent in the box. The
direction is the projected gradient :math:`p = -\nabla\varphi` with the components
that point out of the box at an active bound zeroed; the trial step
:math:`x + \alpha t p` goes at most to the first bound it meets (:math:`\alpha \le
1`), which then becomes active. It is accepted by Armijo's test
:math:`\varphi(x^+) \le \varphi(x) + \sigma \nabla\varphi(x)^\top (x^+ - x)` with
:math:`\sigma = \tfrac12`, else t is halved; the first trial t is twice the last
accepted one. :math:`\sigma = \tfrac12` is the descent lemma's test: on an
L-smooth function it accepts every :math:`t \le 1/L` (on a quadratic of curvature L,
exactly those), so with the doubling no accepted step is below :math:`1/(2L)` (a small
:math:`\sigma` also lets through the steps near :math:`2/L` that oscillate across a
valley), and the doubling crosses flat regions, such as the Pareto MTL toy far
from its set, in few iterations. Stopping at the first bound rather than clipping
(Bertsekas' projection arc, IEEE Trans. Autom. Control 1976) keeps a long step from
throwing a coordinate onto a bound where another stationary point sits (ZDT2's
:math:`x_1 = 0`); each capped step adds an active bound. It stops when the
projected gradient's norm is at most ``tol`` relative to the gradients' scale, or
after ``max_iter`` iterations (``converged=False``), or where the rounding of the
scalarised objective leaves nothing to gain (the rules are in
:mod:`paretomtl.front._steps`; ``converged`` then says whether the point is
stationary to 1e-6). The exact Tchebycheff
problem is non-smooth; see :func:`tchebycheff` for its min-max step.

*Newton steps.* Where the problem has Hessian-vector products, each iteration
first tries the projected Newton direction (Bertsekas, "Projected Newton Methods
for Optimization Problems with Simple Constraints", SIAM J. Control Optim. 1982):
on the free coordinates (those not at a bound the gradient pushes against),
:math:`d_F = -H_{FF}^{-1} g_F` with the scalarisation's Hessian built from
:math:`|F|` Hessian-vector products and shifted by 1e-10 of its largest diagonal
entry (eigenvalues replaced by their magnitudes where it is indefinite);
capped at the first bound like the gradient step, accepted by Armijo with
:math:`\sigma = 10^{-4}` and halved down to 1e-6, else the gradient step is
taken. Measured on ZDT1 (30 variables, 64 rays), linear scalarisation: without
it, 4 rays near the steep :math:`f_1 = 0` end stopped at stationarity 1.2e-3
after 10 000 iterations (curvature ratio about 1e5 between :math:`x_1` and the
rest); with it, all 64 converge in at most 52 iterations.

The iterations themselves are in :mod:`paretomtl.front._steps`. Each method is
one *pass* (:func:`linear_pass`, :func:`smooth_tchebycheff_pass`,
:func:`tchebycheff_pass`: from a given start, objectives with :math:`r_i = 0`
dropped) and the registered function built from it. A preference vector with zeros
(the end rays of :func:`paretomtl.front.simplex_rays`) gets a second pass
(:mod:`paretomtl.front._end_rays`): the first drops those objectives and stops at a
weakly Pareto optimal point (on ZDT, ray (1, 0) at any :math:`x_1 = 0`), the second
lowers them from there and reaches the end of the front.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from paretomtl.front._common import (
    PointResult,
    check_ideal,
    check_preference,
    check_start,
    finish,
    starts,
)
from paretomtl.front._end_rays import run_with_end_rays
from paretomtl.front._minimax import MAX_OBJECTIVES
from paretomtl.front._registry import REGISTRY
from paretomtl.front._steps import hessian_columns, minimax_descent, projected_descent
from paretomtl.front.stationarity import active_bounds


def linear_pass(
    problem, preference: object, x0: object, *, max_iter: int = 10000, tol: float = 1e-8
) -> PointResult:
    r"""One pass of :func:`linear_scalarization` from ``x0``, without the end-ray pass.

    Minimises :math:`\sum_{i : r_i > 0} r_i f_i(x)` over the box (Zadeh, IEEE Trans.
    Autom. Control 1963) by projected Newton or gradient steps from the start ``x0``
    (clipped into the box); arguments as for :func:`linear_scalarization`. An
    objective with :math:`r_i = 0` is dropped, so the pass may end at a weakly
    Pareto optimal point.

    Example:
        >>> import numpy as np
        >>> from paretomtl.front.scalarization import linear_pass
        >>> from paretomtl.problems import ZDT1
        >>> x0 = np.full(5, 0.5)
        >>> linear_pass(ZDT1(n_var=5), [1.0, 0.0], x0).values  # f_1 = 0, f_2 = g
        array([0. , 5.5])
    """
    r = check_preference(preference, problem.n_obj)
    x = check_start(problem, x0)

    def scalarize(values: np.ndarray) -> tuple[float, np.ndarray]:
        on = r > 0
        return float(r[on] @ values[on]), r

    def hessian(x, values, jacobian, weights, idx):
        HV = hessian_columns(problem, x, idx)  # HV[j, i] = H_i e_idx[j]
        return np.einsum("i,jil->jl", weights, HV[:, :, idx])

    out = projected_descent(problem, scalarize, x, max_iter, tol, hessian)
    return finish(problem, *out, "linear", r)


@REGISTRY.register(
    "linear",
    kind="per-ray",
    paper="weighted sum: Zadeh, IEEE Trans. Autom. Control 1963",
    summary="minimise sum_i r_i f_i; misses concave parts of a front",
)
def linear_scalarization(
    problem,
    preference: object,
    x0: object = None,
    *,
    seed: object = None,
    max_iter: int = 10000,
    tol: float = 1e-8,
) -> PointResult:
    r"""Minimise the weighted sum :math:`\sum_i r_i f_i(x)` over the box.

    The classical weighted-sum method (Zadeh, IEEE Trans. Autom. Control 1963;
    Miettinen, Nonlinear Multiobjective Optimization, Kluwer 1999, ch. 3.1). Its
    minimisers are Pareto optimal for :math:`r > 0` and weakly Pareto optimal for
    :math:`r \ge 0`, but only points where a supporting hyperplane touches the front
    are reachable: on a concave front (ZDT2) every ray ends at one of the two ends.
    Solved by projected Newton or gradient steps with Armijo backtracking (module
    docstring).

    Args:
        problem: a :class:`paretomtl.problems.Problem`.
        preference: r, shape (n_obj,), non-negative and not all zero.
        x0: the start, shape (n_var,) (clipped into the box); default uniform in the
            box from ``seed``.
        seed: seed or ``numpy.random.Generator`` for the default start.
        max_iter: iteration cap.
        tol: stop when the projected gradient's norm is at most ``tol`` times
            :math:`\sum_i w_i \|\nabla f_i\|` (w the scalarisation's weights),
            the larger of its values at x0 and at the iterate.

    Returns:
        A :class:`PointResult`.

    Example:
        >>> from paretomtl.front import linear_scalarization
        >>> from paretomtl.problems import ConvexQuadratic
        >>> res = linear_scalarization(ConvexQuadratic(n_var=2), [0.5, 0.5], seed=0)
        >>> res.values.round(6), res.converged
        (array([0.25, 0.25]), True)
    """
    x = starts(problem, x0, seed)[0]
    return run_with_end_rays(
        linear_pass, problem, preference, x, vertex_pass=linear_pass, max_iter=max_iter, tol=tol
    )


def _stch(values: np.ndarray, r: np.ndarray, z: np.ndarray, mu: float):
    on = r > 0
    u = r[on] * (values[on] - z[on]) / mu
    top = u.max()
    e = np.exp(u - top)
    s = e.sum()
    weights = np.zeros_like(r)
    weights[on] = r[on] * e / s
    return float(mu * (top + np.log(s))), weights


def smooth_tchebycheff_pass(
    problem,
    preference: object,
    x0: object,
    *,
    ideal: object = None,
    mu: float = 0.01,
    max_iter: int = 10000,
    tol: float = 1e-8,
) -> PointResult:
    r"""One pass of :func:`smooth_tchebycheff` from ``x0``, without the end-ray pass.

    Minimises :math:`\mu \log \sum_{i : r_i > 0} e^{r_i (f_i(x) - z_i)/\mu}` over
    the box (Lin, Zhang, Xi, Liu & Liu, ICML 2024) by projected Newton or gradient
    steps from the start ``x0`` (clipped into the box); arguments as for
    :func:`smooth_tchebycheff`. An objective with :math:`r_i = 0` is dropped, so the
    pass may end at a weakly Pareto optimal point.

    Example:
        >>> import numpy as np
        >>> from paretomtl.front.scalarization import smooth_tchebycheff_pass
        >>> from paretomtl.problems import ZDT1
        >>> x0 = np.full(5, 0.5)
        >>> smooth_tchebycheff_pass(ZDT1(n_var=5), [1.0, 0.0], x0).values  # f_1 = 0, f_2 = g
        array([0. , 5.5])
    """
    r = check_preference(preference, problem.n_obj)
    z = check_ideal(ideal, problem)
    if not (isinstance(mu, (int, float)) and np.isfinite(mu) and mu > 0):
        raise ValueError(f"mu must be a positive finite number; got {mu!r}")
    x = check_start(problem, x0)

    def hessian(x, values, jacobian, weights, idx):
        # sum_i w_i H_i + (1/mu) (sum_i p_i b_i b_i' - s s'), b_i = r_i grad f_i,
        # p = softmax, w = p r, s = sum_i p_i b_i
        on = weights > 0
        HV = hessian_columns(problem, x, idx)
        H = np.einsum("i,jil->jl", weights[on], HV[:, on][:, :, idx])
        B = (r[on, None] * jacobian[on])[:, idx]
        p = weights[on] / r[on]
        s = p @ B
        return H + (np.einsum("i,ij,ik->jk", p, B, B) - np.outer(s, s)) / float(mu)

    out = projected_descent(problem, lambda v: _stch(v, r, z, float(mu)), x, max_iter, tol, hessian)
    return finish(problem, *out, "stch", r)


@REGISTRY.register(
    "stch",
    kind="per-ray",
    paper="Lin, Zhang, Xi, Liu & Liu, ICML 2024 (smooth Tchebycheff)",
    summary="minimise mu log sum_i exp(r_i (f_i - z_i) / mu), mu = 0.01",
)
def smooth_tchebycheff(
    problem,
    preference: object,
    x0: object = None,
    *,
    ideal: object = None,
    mu: float = 0.01,
    seed: object = None,
    max_iter: int = 10000,
    tol: float = 1e-8,
) -> PointResult:
    r"""Minimise the smooth Tchebycheff scalarisation (STCH) over the box.

    .. math::

        g_\mu(x) = \mu \log \sum_i \exp\Bigl(\frac{r_i (f_i(x) - z_i)}{\mu}\Bigr),
        \qquad
        \nabla g_\mu = \sum_i p_i r_i \nabla f_i,\quad
        p = \mathrm{softmax}\bigl(r \odot (f - z)/\mu\bigr),

    from Lin, Zhang, Xi, Liu & Liu, "Smooth Tchebycheff Scalarization for
    Multi-Objective Optimization", ICML 2024. It is smooth, and
    :math:`g^{TCH} \le g_\mu \le g^{TCH} + \mu \log m`; its minimisers are weakly
    Pareto optimal, and with every :math:`r_i > 0` a stationary point is Pareto
    critical (its gradient is a positive combination of the :math:`\nabla f_i`). As
    :math:`\mu \to 0` it tends to :func:`tchebycheff`; as :math:`\mu` grows it acts
    like :func:`linear_scalarization` (so a large :math:`\mu` misses concave parts
    of a front). Solved by projected Newton or gradient steps with Armijo backtracking
    (module docstring); the curvature across the kink grows like :math:`1/\mu`, and
    so does the iteration count.

    Args:
        problem: a :class:`paretomtl.problems.Problem`.
        preference: r, shape (n_obj,), non-negative and not all zero.
        x0: the start (clipped into the box); default uniform in the box from ``seed``.
        ideal: z, the ideal (utopia) point: None (the problem's ``ideal_point``, zeros
            but for ZDT3), a scalar or shape (n_obj,).
        mu: the smoothing parameter, > 0.
        seed: seed or ``numpy.random.Generator`` for the default start.
        max_iter: iteration cap.
        tol: stop when the projected gradient's norm is at most ``tol`` times
            :math:`\sum_i w_i \|\nabla f_i\|` (w the scalarisation's weights),
            the larger of its values at x0 and at the iterate.

    Returns:
        A :class:`PointResult` (``objective`` is :math:`g_\mu`).

    Example:
        >>> from paretomtl.front import smooth_tchebycheff
        >>> from paretomtl.problems import ZDT2
        >>> res = smooth_tchebycheff(ZDT2(n_var=5), [0.5, 0.5], seed=0)
        >>> res.values.round(2), bool(res.stationarity < 1e-8)  # TCH's point: 0.618 each
        (array([0.62, 0.62]), True)
    """
    x = starts(problem, x0, seed)[0]
    return run_with_end_rays(
        smooth_tchebycheff_pass,
        problem,
        preference,
        x,
        vertex_pass=linear_pass,
        ideal=ideal,
        mu=mu,
        max_iter=max_iter,
        tol=tol,
    )


_CORNER_TOL = 1e-6  # within this fraction of the box of a bound, a stop may be a corner's


def tchebycheff_pass(
    problem,
    preference: object,
    x0: object,
    *,
    ideal: object = None,
    max_iter: int = 2000,
    tol: float = 1e-8,
) -> PointResult:
    r"""One pass of :func:`tchebycheff` from ``x0``, without the end-ray pass.

    Minimises :math:`\max_{i : r_i > 0} r_i (f_i(x) - z_i)` over the box (Bowman
    1976; Miettinen, Nonlinear Multiobjective Optimization, Kluwer 1999) by exact
    min-max steps from the start ``x0`` (clipped into the box), with the retry from
    just inside a degenerate corner; arguments as for :func:`tchebycheff`. An
    objective with :math:`r_i = 0` is dropped, so the pass may end at a weakly
    Pareto optimal point. EPO finishes its search with it.

    Example:
        >>> import numpy as np
        >>> from paretomtl.front.scalarization import tchebycheff_pass
        >>> from paretomtl.problems import ZDT1
        >>> x0 = np.full(5, 0.5)
        >>> tchebycheff_pass(ZDT1(n_var=5), [1.0, 0.0], x0).values  # f_1 = 0, f_2 = g
        array([0. , 5.5])
    """
    r = check_preference(preference, problem.n_obj)
    z = check_ideal(ideal, problem)
    if problem.n_obj > MAX_OBJECTIVES:
        raise ValueError(
            f"tchebycheff supports up to {MAX_OBJECTIVES} objectives; "
            f"got {problem.n_obj}: use smooth_tchebycheff"
        )
    x = check_start(problem, x0)

    def run(x: np.ndarray) -> PointResult:
        out = minimax_descent(problem, r, z, x, max_iter, tol)
        return finish(problem, *out, "tchebycheff", r)

    res = run(x)
    on = r > 0
    terms = r[on] * (res.values[on] - z[on])
    at_lower, at_upper = active_bounds(problem, res.x, _CORNER_TOL)
    unmet = terms.max() - terms.min() > 1e-9 * max(abs(float(terms.max())), 1e-300)
    if unmet and (at_lower | at_upper).any():
        # A degenerate corner: a term can rise only along a coordinate at its bound,
        # where the others are flat to first order (DTLZ2 at x1 = 0: f3 = 0 while
        # f1, f2 go as cos(x1 pi / 2)); the min-max linearisation stalls there. Step
        # off the bounds by 1e-3 of the box and run again; keep the lower max.
        # A bound of zero width (a coordinate the end-ray pass holds) does not move:
        # where no other bound is active, the nudge is x itself and there is no retry.
        # Near a bound, not only at it: the relative stopping test lets the run end a
        # hair inside (DTLZ2 at x2 = 1 - 4e-12, f2 and f3 flat in x2 to 1e-11 there).
        width = problem.upper - problem.lower
        nudged = np.where(at_lower, res.x + 1e-3 * width, res.x)
        nudged = np.where(at_upper, nudged - 1e-3 * width, nudged)
        if (nudged != res.x).any():
            again = run(nudged)
            iterations = res.iterations + again.iterations  # both runs count
            res = replace(again if again.objective < res.objective else res, iterations=iterations)
    return res


@REGISTRY.register(
    "tchebycheff",
    kind="per-ray",
    paper="Bowman 1976; Miettinen, Nonlinear Multiobjective Optimization, 1999",
    summary="minimise max_i r_i (f_i - z_i) by exact min-max steps",
)
def tchebycheff(
    problem,
    preference: object,
    x0: object = None,
    *,
    ideal: object = None,
    seed: object = None,
    max_iter: int = 2000,
    tol: float = 1e-8,
) -> PointResult:
    r"""Minimise the (weighted) Tchebycheff scalarisation :math:`\max_i r_i (f_i(x) - z_i)`.

    Every Pareto optimal point minimises it for some r (Bowman 1976; Miettinen,
    Nonlinear Multiobjective Optimization, Kluwer 1999, thm 3.4.5), concave fronts
    included; minimisers are weakly Pareto optimal, and in the interior of a
    connected front they meet their preference: :math:`r_i (f_i - z_i)` is the same
    for every i.

    *The min-max step.* The objective is non-smooth, so each iteration solves the
    proximal linearisation (Pshenichnyi's linearisation method for minimax
    problems; Pshenichnyi & Danilin, Numerical Methods in Extremal Problems, 1978)

    .. math::

        d(t) = \arg\min_d \max_{i} \bigl(a_i + b_i^\top d\bigr) + \frac{1}{2t}\|d\|^2,
        \qquad a_i = r_i (f_i - z_i),\ b_i = r_i \nabla f_i,

    through its dual, a QP on the simplex,
    :math:`\lambda = \arg\min_{\lambda \in \Delta} \tfrac t2 \|\sum_i \lambda_i
    b_i\|^2 - \sum_i \lambda_i a_i`, :math:`d = -t \sum_i \lambda_i b_i`, solved
    exactly by face enumeration (K <= 10; our MGDA kernel has no linear term and
    cannot be given one, see :func:`paretomtl.front._minimax.simplex_qp`). An
    exact QP step keeps the kink exact, where a smoothing continuation
    (:func:`smooth_tchebycheff` with :math:`\mu \to 0`) would need iterations
    growing like :math:`1/\mu` to meet the preference to :math:`\mu`. The box
    is part of the step, :math:`x + d \in [\text{lower}, \text{upper}]`, handled
    exactly in the dual (:func:`paretomtl.front._minimax.box_minimax_step`):
    clipping an unconstrained step instead lets the linear model, unbounded along
    free coordinates, throw :math:`x_1` of ZDT2 onto its bound, a stationary point
    of :math:`f_2` that is not the Tchebycheff point. The step is accepted when
    :math:`\max_i r_i (f_i - z_i)` drops by at least :math:`\sigma\|d\|^2 / t`
    (the model's own decrease is at least :math:`\|d\|^2/t`, by strong
    convexity), else t is halved; the first trial t is twice the last accepted
    one. It stops at a Tchebycheff-stationary point, or after ``max_iter``
    iterations, or after ten accepted steps in a row that do not lower the max
    beyond its rounding (:mod:`paretomtl.front._steps`).

    *Stationarity.* The unit step, :math:`d(1) = \mathrm{clip}(-\sum_i \lambda_i
    b_i)` with the step's own multipliers :math:`\lambda`, vanishes exactly at a
    Tchebycheff-stationary point; the test compares it with
    :math:`\sum_i \lambda_i \|b_i\|` at the iterate, so that away from the box it
    is the relative cancellation :math:`\|\sum_i \lambda_i b_i\| / \sum_i
    \lambda_i \|b_i\|`, unchanged when a row and its multiplier are rescaled
    together: a weight of 1e-8 neither hides the residual nor inflates it. (It
    was once compared with the largest :math:`\|b_i\|` at x0 as well; on ZDT1 with
    r = (1e-8, 1), whose multipliers sit on the 1e-8 row, that hid a relative
    residual of 0.11 behind a scale 7e7 times too large, and the run claimed
    convergence with the max 1.5e-4 above its minimum.) The steps and the test run
    on r / sum(r): r and c r have the same minimisers, and now the same iterates
    and the same stop (t = 1 had units; with 1e4 r a ZDT1 run stopped 2e-5 above its
    minimum, with 1e-12 r it crawled).
    A run that stops with the terms :math:`r_i (f_i - z_i)` unequal at or within
    1e-6 of the box of a bound (a degenerate corner: DTLZ2 at :math:`x_1 = 0`, where
    :math:`f_3 = 0` can rise only along :math:`x_1` and :math:`f_1, f_2` are flat in
    it) runs once more from 1e-3 of the box inside those bounds; the lower max wins,
    and the iterations of both runs count. A bound of zero width (a coordinate the
    end-ray pass holds) is not stepped off; where only such bounds are active there
    is no second run (it would repeat the first from the same point).

    Args:
        problem: a :class:`paretomtl.problems.Problem` with at most 10 objectives.
        preference: r, shape (n_obj,), non-negative and not all zero.
        x0: the start (clipped into the box); default uniform in the box from ``seed``.
        ideal: z, the ideal (utopia) point: None (the problem's ``ideal_point``, zeros
            but for ZDT3), a scalar or shape (n_obj,).
        seed: seed or ``numpy.random.Generator`` for the default start.
        max_iter: iteration cap.
        tol: stop when the unit step :math:`\|d(1)\|` is at most ``tol`` times
            :math:`\sum_i \lambda_i \|b_i\|` at the iterate, with the step's own
            multipliers :math:`\lambda` (*Stationarity* above).

    Returns:
        A :class:`PointResult` (``objective`` is the max).

    Example:
        >>> from paretomtl.front import tchebycheff
        >>> from paretomtl.problems import ZDT1
        >>> res = tchebycheff(ZDT1(n_var=5), [0.5, 0.5], seed=0)
        >>> res.values.round(6), res.converged
        (array([0.381966, 0.381966]), True)
    """
    x = starts(problem, x0, seed)[0]
    return run_with_end_rays(
        tchebycheff_pass,
        problem,
        preference,
        x,
        vertex_pass=linear_pass,
        ideal=ideal,
        max_iter=max_iter,
        tol=tol,
    )
