r"""EPO search as a front method: the exact Pareto optimal point of one preference vector."""

from __future__ import annotations

import numpy as np

from paretomtl.front._common import (
    PointResult,
    check_ideal,
    check_preference,
    end_ray_pass,
    finish,
    start,
)
from paretomtl.front._registry import register_front_method
from paretomtl.front.scalarization import tchebycheff
from paretomtl.front.stationarity import active_bounds, project_gradients
from paretomtl.solvers import epo, mgda, non_uniformity

_SIGMA = 1e-4  # Armijo's sufficient-decrease fraction
_T_MAX = 1e8
_T_MIN = 1e-20
_tchebycheff = tchebycheff.__wrapped__  # without its own end-ray pass
_HANDOFF = 1e-3  # relative stationarity at which exact min-max steps finish the search
_STUCK_STEPS = 20  # min-max steps taken where EPO's balance program cannot balance


def _capped(x, d, lo, hi, at_bound) -> float:
    """Largest a <= 1 with x + a d in the box, ignoring coordinates already at a bound."""
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(d > 0, (hi - x) / d, np.where(d < 0, (lo - x) / d, np.inf))
    room[at_bound] = np.inf
    return float(min(1.0, room.min()))


@register_front_method(
    "epo",
    kind="per-ray",
    paper=(
        "Mahapatra & Rajan, Multi-Task Learning with User Preferences: Gradient Descent "
        "with Controlled Ascent in Pareto Optimization, ICML 2020"
    ),
    summary="balance r_i f_i to equal, then descend: the exact Pareto optimal point of r",
)
@end_ray_pass
def epo_search(
    problem,
    preference: object,
    x0: object = None,
    *,
    ideal: object = None,
    seed: object = None,
    eps: float = 1e-4,
    preference_tol: float = 1e-12,
    max_iter: int = 5000,
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

    Where we depart from the paper (which takes fixed steps and stops after a fixed
    number of them), so that the point is exact:

    - *Steps.* Each step is capped at the first bound it meets and accepted by an
      Armijo test on the mode's own measure (:math:`\mu_r` in balance mode,
      :math:`\sum_i f_i`, the descent program's objective, in descent mode), with t
      halved on failure and doubled after success.
    - *Threshold.* The mode switch is at :math:`\min(\epsilon, \max(\text{preference\_tol},
      \theta))`, with :math:`\theta` the relative squared norm of the min-norm
      element of the projected gradients: the paper's :math:`\epsilon` far from the
      front, tightening to ``preference_tol`` as the front is reached, so that the
      returned point meets its preference to about :math:`\sqrt{\text{preference\_tol}}`
      relative.
    - *No balance possible.* When the balance program's best rate is not positive
      (the ray misses the reachable front: a gap of ZDT3, or the held coordinates of
      :func:`paretomtl.front._common.end_ray_pass`), it takes a descent step instead
      of stalling; the result then has ``converged=False`` unless it is stationary
      with the preference met.

    It stops when it is in descent mode and the min-norm element of the projected
    gradients is at most ``tol`` times the largest projected gradient's norm.

    Args:
        problem: a :class:`paretomtl.problems.Problem`.
        preference: r, shape (n_obj,), non-negative and not all zero.
        x0: the start (clipped into the box); default uniform in the box from ``seed``.
        ideal: z, subtracted from f before the preference is applied (EPO needs
            :math:`f - z \ge 0`); None means the problem's ``ideal_point``.
        seed: seed or ``numpy.random.Generator`` for the default start.
        eps: the paper's non-uniformity threshold (1e-4).
        preference_tol: the threshold reached at the front.
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
    r = check_preference(preference, problem.n_obj)
    z = check_ideal(ideal, problem)
    for name, value in (("eps", eps), ("preference_tol", preference_tol), ("tol", tol)):
        if not (isinstance(value, (int, float)) and value >= 0):
            raise ValueError(f"{name} must be a number >= 0; got {value!r}")
    x = start(problem, x0, seed)
    lo, hi = problem.lower, problem.upper
    values, jacobian = problem.evaluate(x)
    loss = values - z
    if (loss < 0).any():
        raise ValueError(
            f"EPO needs f - ideal >= 0; got f - ideal = {loss} at the start: pass ideal="
        )
    on = r > 0
    t, scale, it, mu = 1.0, None, 0, non_uniformity(loss[on], r[on])
    reached, polished = False, 0
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
        threshold = eps
        step = epo(gram=gram, losses=loss[on], preference=r[on], eps=threshold)
        mode = step.extras["mode"]
        stuck = mode == "balance" and step.extras["rate"] <= 1e-14 * scale**2 * max(mu, 1e-300)
        if stuck and np.sqrt(max(theta, 0.0)) > tol:
            # No convex combination of the gradients lowers mu (they agree too much,
            # far from the front): one exact min-max step on max_i r_i (f_i - z_i).
            moved = _tchebycheff(problem, r, x, ideal=z, max_iter=_STUCK_STEPS, tol=tol)
            polished += moved.iterations
            if not (moved.x != x).any():
                break
            x, values = moved.x, moved.values
            jacobian = problem.evaluate(x)[1]
            loss = values - z
            mu = non_uniformity(loss[on], r[on])
            continue
        if (stuck or mode == "descent") and np.sqrt(max(theta, 0.0)) <= max(tol, _HANDOFF):
            reached = True
            break
        d = -(step.weights @ P)
        if mode == "balance":
            total = float((r * loss).sum())
            slope = step.extras["adjustment"] / total  # d mu / d f

            def measure(v):
                return non_uniformity((v - z)[on], r[on])
        else:
            slope = np.ones(int(on.sum()))

            def measure(v):
                return float(v[on].sum())

        current = measure(values)
        # a descent step must not undo the balance: mu may rise to 10 x the threshold
        drift = max(mu, 10.0 * threshold) if mode == "descent" else np.inf
        t = min(2.0 * t, _T_MAX)
        accepted = False
        while t >= _T_MIN:
            alpha = _capped(x, t * d, lo, hi, at_lower | at_upper)
            trial = np.clip(x + alpha * t * d, lo, hi)
            s = trial - x
            if not s.any():
                break
            v_new, j_new = problem.evaluate(trial)
            with np.errstate(invalid="ignore"):
                predicted = float(slope @ (jacobian[on] @ s))
            if (
                (v_new - z >= 0).all()
                and measure(v_new) <= current + _SIGMA * min(predicted, 0.0)
                and non_uniformity((v_new - z)[on], r[on]) <= drift
                and np.isfinite(j_new[on]).all()
            ):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            reached = mode != "balance" and np.sqrt(max(theta, 0.0)) <= 1e-6
            break
        x, values, jacobian = trial, v_new, j_new
        loss = values - z
        mu = non_uniformity(loss[on], r[on])
    else:
        it = max_iter
    # The search ends on the front within the paper's eps of the ray; exact min-max
    # steps take it onto the ray (the same point on a connected front). Where the
    # search could not get there (the ray meets a gap of the front, as on ZDT3),
    # they still end at a Pareto-critical point, but the preference is not met.
    final = _tchebycheff(problem, r, x, ideal=z, max_iter=max_iter, tol=tol)
    x, values, polished = final.x, final.values, polished + final.iterations
    jacobian = problem.evaluate(x)[1]
    mu = non_uniformity((values - z)[on], r[on])
    converged = reached and final.converged and mu <= max(preference_tol, 1e-9)
    return finish(problem, x, values, jacobian, mu, it + polished, converged, "epo", r)
