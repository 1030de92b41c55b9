r"""EPO search as a front method: the exact Pareto optimal point of one preference vector."""

from __future__ import annotations

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
from paretomtl.front._registry import REGISTRY
from paretomtl.front._steps import max_fraction
from paretomtl.front.scalarization import linear_pass, tchebycheff_pass
from paretomtl.front.stationarity import active_bounds, project_gradients
from paretomtl.solvers import epo, mgda, non_uniformity

_SIGMA_BALANCE = 1e-4  # Armijo's sufficient-decrease fraction for balance steps (on mu_r)
_SIGMA_DESCENT = 0.5  # and for descent steps (on sum f_i): the descent lemma's, as _steps.py's
_T_MAX = 1e8
_T_MIN = 1e-20
_HANDOFF = 1e-3  # relative stationarity at which exact min-max steps finish the search
_STUCK_STEPS = 20  # min-max steps taken where EPO's balance program cannot balance
_STALLS = 5  # consecutive steps at rounding level after which the search hands over


def epo_pass(
    problem,
    preference: object,
    x0: object,
    *,
    ideal: object = None,
    eps: float = 1e-4,
    preference_tol: float = 1e-12,
    max_iter: int = 2000,
    tol: float = 1e-8,
) -> PointResult:
    r"""One pass of :func:`epo_search` from ``x0``, without the end-ray pass.

    EPO's balance and descent steps on :math:`r_i (f_i - z_i)`, then exact min-max
    steps on the ray (Mahapatra & Rajan, ICML 2020; the departures from the paper
    are :func:`epo_search`'s), from the start ``x0`` (clipped into the box);
    arguments as for :func:`epo_search`. An objective with :math:`r_i = 0` is
    dropped, so the pass may end at a weakly Pareto optimal point.

    Example:
        >>> import numpy as np
        >>> from paretomtl.front.epo import epo_pass
        >>> from paretomtl.problems import ZDT1
        >>> x0 = np.full(5, 0.5)
        >>> epo_pass(ZDT1(n_var=5), [1.0, 0.0], x0).values  # f_1 = 0, f_2 = g
        array([0. , 5.5])
    """
    r = check_preference(preference, problem.n_obj)
    z = check_ideal(ideal, problem)
    for name, value in (("eps", eps), ("preference_tol", preference_tol), ("tol", tol)):
        if not (isinstance(value, (int, float)) and value >= 0):
            raise ValueError(f"{name} must be a number >= 0; got {value!r}")
    x = check_start(problem, x0)
    lo, hi = problem.lower, problem.upper
    values, jacobian = problem.evaluate(x)
    slack = 1e-12 * (1.0 + np.abs(z))  # rounding below an ideal point found numerically

    def shifted(v: np.ndarray) -> np.ndarray:
        return np.maximum(v - z, 0.0)

    if (values - z < -slack).any():
        raise ValueError(
            f"EPO needs f - ideal >= 0; got f - ideal = {values - z} at the start: pass ideal="
        )
    loss = shifted(values)
    on = r > 0
    t, scale, it, mu = 1.0, None, 0, non_uniformity(loss[on], r[on])
    polished, stalls = 0, 0
    for it in range(max_iter):  # noqa: B007 - the count is reported
        at_lower, at_upper = active_bounds(problem, x, 1e-12)
        P = project_gradients(jacobian, at_lower, at_upper)
        if not np.isfinite(P[on]).all():
            raise ValueError("a preferred objective has a non-finite gradient at the iterate")
        P = P[on]  # objectives with r_i = 0 (a first end-ray pass) are left out
        norms = np.linalg.norm(P, axis=1)
        if scale is None:
            scale = max(float(norms.max()), np.finfo(float).tiny)
        gram = P @ P.T
        theta = mgda(gram=gram).objective / max(scale, float(norms.max()), 1e-150) ** 2
        step = epo(gram=gram, losses=loss[on], preference=r[on], eps=eps)
        mode = step.extras["mode"]
        stuck = mode == "balance" and step.extras["rate"] <= 1e-14 * scale**2 * max(mu, 1e-300)
        if stuck and np.sqrt(max(theta, 0.0)) > tol:
            # No convex combination of the gradients lowers mu (they agree too much,
            # far from the front): _STUCK_STEPS exact min-max steps on max_i r_i (f_i - z_i).
            moved = tchebycheff_pass(problem, r, x, ideal=z, max_iter=_STUCK_STEPS, tol=tol)
            polished += moved.iterations
            if not (moved.x != x).any():
                break
            x, values = moved.x, moved.values
            jacobian = problem.evaluate(x)[1]
            loss = shifted(values)
            mu = non_uniformity(loss[on], r[on])
            continue
        if (stuck or mode == "descent") and np.sqrt(max(theta, 0.0)) <= max(tol, _HANDOFF):
            break
        d = -(step.weights @ P)
        if mode == "balance":
            sigma = _SIGMA_BALANCE
            total = float((r * loss).sum())
            slope = step.extras["adjustment"] / total  # d mu / d f

            def measure(v):
                return non_uniformity(shifted(v)[on], r[on])
        else:
            sigma = _SIGMA_DESCENT
            slope = np.ones(int(on.sum()))

            def measure(v):
                return float(v[on].sum())

        current = measure(values)
        # a descent step must not undo the balance: mu may rise to 10 eps
        drift = max(mu, 10.0 * eps) if mode == "descent" else np.inf
        t = min(2.0 * t, _T_MAX)
        accepted = False
        while t >= _T_MIN:
            alpha = max_fraction(x, t * d, lo, hi, at_lower | at_upper)
            trial = np.clip(x + alpha * t * d, lo, hi)
            s = trial - x
            if not s.any():
                break
            v_new, j_new = problem.evaluate(trial)
            with np.errstate(invalid="ignore"):
                predicted = float(slope @ (jacobian[on] @ s))
            if (
                (v_new - z >= -slack).all()
                and measure(v_new) <= current + sigma * min(predicted, 0.0)
                and non_uniformity(shifted(v_new)[on], r[on]) <= drift
                and np.isfinite(j_new[on]).all()
            ):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        stalls = stalls + 1 if np.linalg.norm(s) <= 1e-14 * (1.0 + np.linalg.norm(x)) else 0
        x, values, jacobian = trial, v_new, j_new
        loss = shifted(values)
        mu = non_uniformity(loss[on], r[on])
        if stalls >= _STALLS:  # steps at rounding level: the search is stuck here
            break
    else:
        it = max_iter
    # The search ends on the front within the paper's eps of the ray; exact min-max
    # steps take it onto the ray (the same point on a connected front). Where the
    # search could not get there (the ray meets a gap of the front, as on ZDT3),
    # they still end at a Pareto-critical point, but the preference is not met.
    final = tchebycheff_pass(problem, r, x, ideal=z, max_iter=max_iter, tol=tol)
    mu = non_uniformity(shifted(final.values)[on], r[on])
    x, values, polished = final.x, final.values, polished + final.iterations
    jacobian = problem.evaluate(x)[1]
    converged = final.converged and mu <= max(preference_tol, 1e-9)
    return finish(problem, x, values, jacobian, mu, it + polished, converged, "epo", r)


@REGISTRY.register(
    "epo",
    kind="per-ray",
    paper=(
        "Mahapatra & Rajan, Multi-Task Learning with User Preferences: Gradient Descent "
        "with Controlled Ascent in Pareto Optimization, ICML 2020"
    ),
    summary="balance r_i f_i to equal, then descend: the exact Pareto optimal point of r",
)
def epo_search(
    problem,
    preference: object,
    x0: object = None,
    *,
    ideal: object = None,
    seed: object = None,
    eps: float = 1e-4,
    preference_tol: float = 1e-12,
    max_iter: int = 2000,
    tol: float = 1e-8,
) -> PointResult:
    r"""EPO search: find the Pareto optimal point where :math:`r_i (f_i - z_i)` is equal.

    Mahapatra & Rajan, "Multi-Task Learning with User Preferences: Gradient Descent
    with Controlled Ascent in Pareto Optimization", ICML 2020. Each iteration takes
    the paper's direction :math:`-\Pi(J)^\top\beta` from :func:`paretomtl.solvers.epo`
    on the bound-projected Jacobian :math:`\Pi(J)` (components pointing out of the box
    at an active bound zeroed): *balance mode* while the non-uniformity
    :math:`\mu_r` exceeds the threshold, steering :math:`r \odot (f - z)` toward
    equal without raising the largest term, *descent mode* on the ray, lowering
    every objective at once.

    Where we depart from the paper (which takes fixed steps, a fixed number of
    them), so that the point is exact, each change measured on ZDT1/2, the Pareto
    MTL toy, the convex quadratic and DTLZ2:

    - *Steps.* Each step is capped at the first bound it meets and accepted by an
      Armijo test on the mode's own measure (:math:`\mu_r` in balance mode,
      :math:`\sum_i f_i`, the descent program's objective, in descent mode), with t
      halved on failure and doubled after success. The fraction of the predicted
      decrease a step must achieve is 1e-4 in balance mode and 1/2 in descent
      mode, the descent lemma's, as in the scalarisations
      (:mod:`paretomtl.front.scalarization`): on a quadratic it accepts exactly
      the steps up to the minimum along the line, where 1e-4 also accepts the
      steps near twice that, which cross the valley and come back. With one
      objective kept (a first end-ray pass on the Pareto MTL toy, ray (0, 1)),
      the doubled t settled on such a step, :math:`x + a \to (1 - 2e^{-q})(x + a)`
      with :math:`q = \|x + a\|^2`: it lowers :math:`f_2` by about :math:`4q^2`,
      so q fell like :math:`1/(4k)` and the pass ran to ``max_iter`` (2002
      iterations, 8 s); with 1/2 it ends in 5. A descent step must also keep
      :math:`\mu_r \le \max(\mu_r(x), 10\epsilon)`: without it, the doubled steps
      of the descent program (which holds :math:`\mu_r` only to first order) ran
      the quadratic from the middle of its front to an end in one step.
    - *Agreeing gradients.* The balance program is over convex combinations of the
      gradients; where those all agree (far from the front of the quadratic or the
      toy, every one lowers every loss at once) no combination can lower
      :math:`\mu_r`, and its best rate is not positive. There the search takes exact
      min-max steps on :math:`\max_i r_i (f_i - z_i)` (:func:`tchebycheff`'s,
      ``_STUCK_STEPS`` at a time) until balancing is possible again.
    - *The finish.* The search hands over when it is in descent mode within
      ``_HANDOFF`` (1e-3) relative stationarity of the front, or its steps stall,
      or its line search fails, or ``max_iter`` is reached. Exact min-max steps
      then finish on the ray: on a connected front their fixed point is the same
      exact point (:math:`r_i (f_i - z_i)` equal, Pareto critical), and they reach
      it to rounding, where the paper's search meets its preference only to
      :math:`\mu_r \le \epsilon`. Where the ray meets a gap of the front (ZDT3)
      they still end Pareto critical, and ``converged`` is False: the preference
      is not met. (At a degenerate corner of the box the finish retries once from
      just inside it; see :func:`tchebycheff`.)

    ``converged`` is True when the finish converged to ``tol`` and
    :math:`\mu_r \le \max(\text{preference\_tol}, 10^{-9})` there.

    Args:
        problem: a :class:`paretomtl.problems.Problem`.
        preference: r, shape (n_obj,), non-negative and not all zero.
        x0: the start (clipped into the box); default uniform in the box from ``seed``.
        ideal: z, subtracted from f before the preference is applied (EPO needs
            :math:`f - z \ge 0`); None means the problem's ``ideal_point``.
        seed: seed or ``numpy.random.Generator`` for the default start.
        eps: the paper's non-uniformity threshold (1e-4).
        preference_tol: the non-uniformity below which the preference counts as met.
        max_iter: iteration cap.
        tol: the stationarity tolerance.

    Returns:
        A :class:`PointResult`; ``objective`` is :math:`\mu_r` at the point.

    Example:
        >>> from paretomtl.front import epo_search
        >>> from paretomtl.problems import ZDT1
        >>> res = epo_search(ZDT1(n_var=5), [1.0, 2.0], seed=0)
        >>> ratio = 1.0 * res.values[0] / (2.0 * res.values[1])
        >>> bool(abs(ratio - 1) < 1e-5), res.converged
        (True, True)
    """
    x = starts(problem, x0, seed)[0]
    return run_with_end_rays(
        epo_pass,
        problem,
        preference,
        x,
        vertex_pass=linear_pass,
        ideal=ideal,
        eps=eps,
        preference_tol=preference_tol,
        max_iter=max_iter,
        tol=tol,
    )
