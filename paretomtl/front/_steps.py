r"""The descent iterations of the scalarisations, in the box.

- :func:`max_fraction`: the box-capped step, shared with EPO. A trial step
  :math:`x + a\,p` goes at most to the first bound of the box it meets
  (:math:`a \le 1`), which then becomes active; coordinates already at a bound do
  not cap it (the direction must not push them out, and the trial point is
  clipped to the box against rounding).
- :func:`projected_descent`: projected Newton or gradient steps, capped so, with
  Armijo backtracking, for the smooth scalarisations.
- :func:`minimax_descent`: exact min-max steps
  (:func:`paretomtl.front._minimax.box_minimax_step`) for Tchebycheff's max.

The scalarisations' docs (:mod:`paretomtl.front.scalarization` and its
:func:`~paretomtl.front.tchebycheff`) describe both iterations, their acceptance
and stopping rules, and why they are built so.

*The objective's rounding floor.* The stopping test is relative to the
gradients' scale :math:`\sum_i w_i \|\nabla f_i\|` (the larger of its values
at the start and at the iterate), and float64 cannot always meet it. The end-ray
pass (:mod:`paretomtl.front._end_rays`) on the Pareto MTL toy, ray (0, 1),
starts at the end :math:`x = -a`, where :math:`\nabla f_2 = 0`, with
:math:`f_1` lifted to the weight 1e-8: the scale is
:math:`10^{-8}\|\nabla f_1\| \approx 7 \cdot 10^{-10}` and ``tol`` asks for a
projected gradient below 7e-18, while :math:`\nabla f_2 = 2e^{-q}(x + a)`
carries the rounding of x, about 1e-16, at every point. Armijo's test then
stops meaning anything: the decrease it asks for, :math:`\sigma
\nabla\varphi^\top s`, is below the rounding of :math:`\varphi`, so it accepts
any step that leaves :math:`\varphi` unchanged, and the iteration wandered
there until ``max_iter`` (10 000 iterations, 4 s, for a point found in one).
Two rules stop a run that has nothing left to gain at float64 precision:

- A Newton step whose predicted decrease :math:`-\nabla\varphi^\top d / 2` is
  within ``_GAIN_ULPS`` ulps of :math:`\varphi` cannot be judged by
  :math:`\varphi`; the projected gradient judges it: it is accepted (halved as
  usual) when it lowers the projected gradient's norm without raising
  :math:`\varphi` beyond its rounding. Where no such step does, neither
  :math:`\varphi` nor the gradient can improve, and the run stops. (This is what
  takes the toy's lifted pass to its minimiser in one step and stops it.)
- After ``_STALLS`` accepted steps in a row that lower :math:`\varphi` by no
  more than ``_GAIN_ULPS`` ulps (gradient and min-max steps, whose length does
  not tell the decrease to expect), the run stops at the point of that streak
  with the smallest ratio: :math:`\varphi` cannot order them, the gradient can.
  Ten in a row, not one, so that a step too short to show a gain (the first
  doublings of t across a flat region) does not end a run.

Both report ``converged`` as the line search does when it runs out of step: the
ratio at most ``_ROUNDING`` (1e-6), stationary to rounding. The threshold is on
:math:`\varphi`'s own ulps rather than on the gradients' norms because the
gradient's rounding is not proportional to its norm (at the toy's end it is the
rounding of x times the curvature, with :math:`\nabla f_2 = 0`), while the
rounding of :math:`\varphi` is known wherever :math:`\varphi` is.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from paretomtl.front._minimax import box_minimax_step
from paretomtl.front.stationarity import active_bounds

_SIGMA = 0.5  # Armijo's sufficient-decrease fraction (the descent lemma's)
_T_MAX = 1e8  # largest trial step
_T_MIN = 1e-20  # smallest trial step before giving up
_ROUNDING = 1e-6  # relative stationarity accepted when rounding stops the line search
_SIGMA_NEWTON = 1e-4  # Armijo's fraction for Newton steps (1/2 is their exact decrease)
_NEWTON_MIN = 1e-6  # smallest Newton step fraction tried before a gradient step
_GAIN_ULPS = 4  # a decrease of the objective within this many of its ulps is rounding
_STALLS = 10  # accepted steps in a row without a gain after which a run ends


def _weighted(weights: np.ndarray, jacobian: np.ndarray) -> np.ndarray:
    on = weights > 0
    return weights[on] @ jacobian[on]


def max_fraction(x, p, lo, hi, at_bound) -> float:
    """Largest a <= 1 with x + a p in the box, ignoring coordinates already at a bound."""
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(p > 0, (hi - x) / p, np.where(p < 0, (lo - x) / p, np.inf))
    room[at_bound] = np.inf
    return float(min(1.0, room.min()))


def _no_gain(phi: float, phi_new: float) -> bool:
    """Whether an accepted step lowered the objective by no more than its rounding."""
    return phi - phi_new <= _GAIN_ULPS * float(np.spacing(abs(phi)))


def _scale(weights: np.ndarray, jacobian: np.ndarray) -> float:
    """sum_i w_i ||grad f_i||: the gradient scale the stopping test is relative to."""
    on = weights > 0
    scale = float(weights[on] @ np.linalg.norm(jacobian[on], axis=1))
    return max(scale, np.finfo(float).tiny)


def hessian_columns(problem, x: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(k, n_obj, n_var): the Hessian-vector products of every objective with e_j, j in cols."""
    V = np.zeros((len(cols), problem.n_var))
    V[np.arange(len(cols)), cols] = 1.0
    return problem.hvp_batch(np.repeat(x[None, :], len(cols), axis=0), V)


def _newton_direction(hessian, x, values, jacobian, weights, grad, at_lower, at_upper):
    """Bertsekas' projected Newton direction on the free coordinates, or None.

    Free: not at a bound that the gradient pushes against. The reduced Hessian is
    shifted by 1e-10 of its largest diagonal entry; where it is still not positive
    definite, its eigenvalues are replaced by their magnitudes. None when the
    Hessian cannot be formed (then the caller takes a gradient step).
    """
    free = ~((at_lower & (grad > 0)) | (at_upper & (grad < 0)))
    idx = np.flatnonzero(free)
    if not len(idx):
        return None
    try:
        H = hessian(x, values, jacobian, weights, idx)
    except ValueError:  # e.g. ZDT's Hessian is unbounded at x_1 = 0
        return None
    if not np.isfinite(H).all():
        return None
    H = 0.5 * (H + H.T)
    # A relative shift lets positive semi-definite Hessians through (ZDT's g is linear
    # in x_2..x_n: flat directions, along which the step runs to the box).
    H[np.diag_indices_from(H)] += 1e-10 * max(float(np.abs(np.diagonal(H)).max()), 1e-300)
    d = np.zeros_like(x)
    try:
        L = np.linalg.cholesky(H)
        d[idx] = -np.linalg.solve(L.T, np.linalg.solve(L, grad[idx]))
    except np.linalg.LinAlgError:
        # Indefinite (ZDT3's x1 sin(10 pi x1), a concave front's end): Newton with
        # the eigenvalues' magnitudes, still a descent direction and still scaled
        # by the curvature.
        w, V = np.linalg.eigh(H)
        w = np.maximum(np.abs(w), 1e-10 * max(float(np.abs(w).max()), 1e-300))
        d[idx] = -V @ ((V.T @ grad[idx]) / w)
    if not np.isfinite(d).all() or grad @ d >= 0:
        return None
    return d


def _projected(
    problem: object, x: np.ndarray, grad: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The projected gradient's direction -grad, zero where it leaves the box, and the bounds."""
    at_lower, at_upper = active_bounds(problem, x, 1e-12)
    p = -grad
    p[(at_lower & (p < 0)) | (at_upper & (p > 0))] = 0.0
    return p, at_lower, at_upper


def projected_descent(
    problem,
    scalarize: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    max_iter: int,
    tol: float,
    hessian: Callable | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int, bool]:
    """Projected Newton where the reduced Hessian is positive definite, else projected
    gradient; steps capped at the box, Armijo backtracking; stops at ``tol`` or at
    phi's rounding floor (module docstring)."""
    lo, hi = problem.lower, problem.upper
    if not getattr(problem, "has_hvp", False):
        hessian = None
    values, jacobian = problem.evaluate(x)
    phi, weights = scalarize(values)
    grad = _weighted(weights, jacobian)
    if not np.isfinite(grad).all():
        raise ValueError("the scalarised gradient is not finite at x0; start elsewhere")
    scale, t, stalls = _scale(weights, jacobian), 1.0, 0
    best = (x, values, jacobian, phi, np.inf)  # the stall's point with the smallest ratio
    for it in range(max_iter):
        p, at_lower, at_upper = _projected(problem, x, grad)
        size = float(np.linalg.norm(p))
        ratio = size / max(scale, _scale(weights, jacobian))
        if ratio <= tol:
            return x, values, jacobian, phi, it, True
        if stalls == 0 or ratio < best[-1]:  # phi cannot order a stall's points: the gradient does
            best = (x, values, jacobian, phi, ratio)
        if stalls >= _STALLS:
            x, values, jacobian, phi, ratio = best
            return x, values, jacobian, phi, it, ratio <= _ROUNDING
        if hessian is not None:
            d = _newton_direction(hessian, x, values, jacobian, weights, grad, at_lower, at_upper)
            newton = d is not None
            blind = newton and -0.5 * float(grad @ d) <= _GAIN_ULPS * float(np.spacing(abs(phi)))
            u = 1.0
            while newton and u >= _NEWTON_MIN:
                alpha = max_fraction(x, u * d, lo, hi, at_lower | at_upper)
                trial = np.clip(x + alpha * u * d, lo, hi)
                step = trial - x
                if not step.any():
                    break
                v_new, j_new = problem.evaluate(trial)
                phi_new, w_new = scalarize(v_new)
                g_new = _weighted(w_new, j_new)
                if not np.isfinite(g_new).all():
                    ok = False
                elif blind:  # phi cannot see the step: it must lower the projected gradient
                    ok = _no_gain(phi_new, phi)
                    ok = ok and float(np.linalg.norm(_projected(problem, trial, g_new)[0])) < size
                else:
                    ok = phi_new <= phi + _SIGMA_NEWTON * (grad @ step)
                if ok:
                    stalls = stalls + 1 if _no_gain(phi, phi_new) and not blind else 0
                    x, values, jacobian, phi = trial, v_new, j_new, phi_new
                    weights, grad = w_new, g_new
                    break
                u *= 0.5
            else:
                newton = False
            if newton and u >= _NEWTON_MIN and step.any():
                continue
            if blind:  # neither phi nor the gradient can improve: float64's floor
                return x, values, jacobian, phi, it, ratio <= _ROUNDING
        t = min(2.0 * t, _T_MAX)
        while True:
            alpha = max_fraction(x, t * p, lo, hi, at_lower | at_upper)
            trial = np.clip(x + alpha * t * p, lo, hi)
            step = trial - x
            if not step.any():  # nothing left to gain at this precision
                return x, values, jacobian, phi, it, ratio <= _ROUNDING
            v_new, j_new = problem.evaluate(trial)
            phi_new, w_new = scalarize(v_new)
            if phi_new <= phi + _SIGMA * (grad @ step):
                g_new = _weighted(w_new, j_new)
                if np.isfinite(g_new).all():
                    break
            t *= 0.5
            if t < _T_MIN:
                return x, values, jacobian, phi, it, ratio <= _ROUNDING
        stalls = stalls + 1 if _no_gain(phi, phi_new) else 0
        x, values, jacobian, phi, weights, grad = trial, v_new, j_new, phi_new, w_new, g_new
    return x, values, jacobian, phi, max_iter, False


def _max_term(values: np.ndarray, r: np.ndarray, z: np.ndarray) -> float:
    on = r > 0
    return float(np.max(r[on] * (values[on] - z[on])))


def minimax_descent(problem, r, z, x, max_iter, tol):
    """Min-max steps on max_{r_i > 0} r_i (f_i - z_i) from x (Tchebycheff's iteration).

    Stops when the unit step is at most ``tol`` times sum_i lam_i ||b_i|| at the
    iterate, lam the step's own multipliers: away from the box, the relative
    cancellation ||sum_i lam_i b_i|| / sum_i lam_i ||b_i||, blind to how the rows
    are weighted (not relative to the start's largest row: with r = (1e-8, 1) that
    hid the residual of the 1e-8 row; :func:`paretomtl.front.tchebycheff`).
    The iteration runs on r / sum(r), so that r and c r (c > 0), which have the same
    minimisers, take the same steps and the same stop (with t = 1 in the test and
    the first trial step, r itself once set the scale: 1e4 r stopped a ZDT1 run 2e-5
    above its minimum, 1e-12 r crawled). The sum, not the max, leaves the rays of
    :func:`paretomtl.front.simplex_rays` as they are.
    Returns ``(x, values, jacobian, objective, iterations, converged)``.
    """
    lo, hi = problem.lower, problem.upper
    preference, r = r, r / r.max()  # no overflow in the sum
    r = r / r.sum()
    on = r > 0
    values, jacobian = problem.evaluate(x)
    phi = _max_term(values, r, z)
    t, converged, it, stalls = 1.0, False, 0, 0
    best = (x, values, jacobian, phi, np.inf)
    for it in range(max_iter):  # noqa: B007 - the count is reported
        B = r[on, None] * jacobian[on]
        if not np.isfinite(B).all():
            raise ValueError("a preferred objective has a non-finite gradient at the iterate")
        a = r[on] * (values[on] - z[on])
        d, lam = box_minimax_step(B, a, 1.0, lo - x, hi - x)
        ratio = float(np.linalg.norm(d)) / _scale(lam, B)
        if ratio <= tol:
            converged = True
            break
        if stalls == 0 or ratio < best[-1]:  # as in projected_descent
            best = (x, values, jacobian, phi, ratio)
        if stalls >= _STALLS:  # phi's rounding floor (module docstring)
            x, values, jacobian, phi, ratio = best
            converged = ratio <= _ROUNDING
            break
        t = min(2.0 * t, _T_MAX)
        while t >= _T_MIN:
            d, lam = box_minimax_step(B, a, t, lo - x, hi - x)
            trial = np.clip(x + d, lo, hi)
            if not (trial - x).any():
                t = 0.0
                break
            v_new, j_new = problem.evaluate(trial)
            phi_new = _max_term(v_new, r, z)
            if phi_new <= phi - _SIGMA * (d @ d) / t and np.isfinite(j_new[on]).all():
                break
            t *= 0.5
        if t < _T_MIN:
            converged = ratio <= _ROUNDING
            break
        stalls = stalls + 1 if _no_gain(phi, phi_new) else 0
        x, values, jacobian, phi = trial, v_new, j_new, phi_new
    else:
        it = max_iter
    return x, values, jacobian, _max_term(values, preference, z), it, converged
