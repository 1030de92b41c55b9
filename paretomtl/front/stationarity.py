"""Bound-aware Pareto stationarity: the min-norm element of the projected gradients' hull."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from paretomtl.solvers import mgda


@dataclass(frozen=True, eq=False)
class Stationarity:
    """The bound-aware Pareto-stationarity measure at one point, with its certificate.

    Attributes:
        value: :math:`\\theta(x)`, the squared norm of the min-norm element of the
            convex hull of the projected gradients (0 certifies Pareto criticality).
        weights: (n_obj,) the minimising convex weights :math:`\\lambda`.
        direction: (n_var,) :math:`\\sum_i \\lambda_i \\Pi(g_i)`, the min-norm element.
        kkt_residual: :math:`\\|\\Pi(\\sum_i \\lambda_i g_i)\\|^2` at those weights: the
            KKT residual with the best bound multipliers, between the exact measure
            and ``value``.
        at_lower, at_upper: (n_var,) boolean masks of the active bounds.
    """

    value: float
    weights: np.ndarray
    direction: np.ndarray
    kkt_residual: float
    at_lower: np.ndarray
    at_upper: np.ndarray


def active_bounds(problem, x: np.ndarray, bound_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the coordinates within ``bound_tol * (upper - lower)`` of a bound."""
    width = problem.upper - problem.lower
    return x <= problem.lower + bound_tol * width, x >= problem.upper - bound_tol * width


def project_gradients(grads: np.ndarray, at_lower: np.ndarray, at_upper: np.ndarray) -> np.ndarray:
    r"""Zero the components of each row that point out of the box: :math:`\Pi(g)`.

    The feasible descent step of a minimisation is :math:`-g`; at :math:`x_k =
    \text{lower}_k` it cannot decrease :math:`x_k`, so :math:`g_k > 0` is zeroed; at
    :math:`x_k = \text{upper}_k`, :math:`g_k < 0` is zeroed.
    """
    out = np.array(grads, dtype=np.float64)
    out[:, at_lower] = np.minimum(out[:, at_lower], 0.0)
    out[:, at_upper] = np.maximum(out[:, at_upper], 0.0)
    return out


def bound_aware_stationarity(problem, x: object, *, bound_tol: float = 1e-12) -> Stationarity:
    r"""Pareto stationarity on a box: the min-norm point of the projected gradients' hull.

    .. math::

        \theta(x) = \min_{\lambda \in \Delta}
            \Big\| \sum_i \lambda_i\, \Pi(\nabla f_i(x)) \Big\|^2,
        \qquad
        \Pi(g)_k = \begin{cases}
            \min(g_k, 0) & x_k = \text{lower}_k \\
            \max(g_k, 0) & x_k = \text{upper}_k \\
            g_k & \text{otherwise,}
        \end{cases}

    solved exactly by :func:`paretomtl.solvers.mgda` on the projected gradients
    (the unconstrained measure of Désidéri, C. R. Acad. Sci. Paris 2012, and
    Sener & Koltun, NeurIPS 2018, with each gradient projected onto the box's
    tangent cone, as in the projected-gradient methods of Bertsekas, SIAM J.
    Control Optim. 1976).

    *What it certifies.* x is Pareto critical on the box (no feasible direction
    decreases every objective to first order) iff some :math:`\lambda \in \Delta`
    makes :math:`v = \sum_i \lambda_i g_i` satisfy the KKT conditions with bound
    multipliers: :math:`\Pi(v) = 0`. The exact measure is therefore
    :math:`\theta^\star(x) = \min_\lambda \|\Pi(\sum_i \lambda_i g_i)\|^2`. Per
    coordinate, :math:`|\Pi(v)_k| \le |\sum_i \lambda_i \Pi(g_i)_k|` (at a lower
    bound both sides are :math:`\le 0` and :math:`\min(\cdot, 0)` is concave,
    likewise at an upper bound), so for every :math:`\lambda`

    .. math::

        \theta^\star(x) \;\le\; \|\Pi(\textstyle\sum_i \lambda^\theta_i g_i)\|^2
        \;=\; \text{kkt\_residual} \;\le\; \theta(x).

    Hence :math:`\theta(x) = 0` proves Pareto criticality (a necessary condition
    for local Pareto optimality; sufficient for weak Pareto optimality when every
    :math:`f_i` is convex), and small :math:`\theta` bounds the exact measure.
    The two coincide (:math:`\Pi` is linear on the gradients) whenever, at every
    active bound, the objectives' partial derivatives do not disagree in sign
    (all :math:`\ge 0` or all :math:`\le 0`) — true at the Pareto sets of ZDT1-3
    and DTLZ2, and trivially at interior points. Otherwise :math:`\theta` can be
    positive at a critical point: x = (0, 0) on :math:`[0, 1] \times [-1, 1]` with
    :math:`g_1 = (1, 1)`, :math:`g_2 = (-1, -1)` is critical
    (:math:`\tfrac12 g_1 + \tfrac12 g_2 = 0`) but :math:`\theta = 0.2`. It is also
    not scale-invariant: it scales with :math:`\|g\|^2`, so a threshold means
    little on flat regions (e.g. the Pareto MTL toy far from its set, where
    :math:`\|\nabla f_i\| \sim 2\sqrt q e^{-q}`).

    Conventions: a gradient with an infinite entry after projection (ZDT1 at
    :math:`x_1 = 0`) has infinite norm and gets weight 0 (the value is ``inf``
    only when every projected gradient is infinite); NaN gradients raise a
    ValueError. Bounds count as active within ``bound_tol`` times the box width.

    Invariances: :math:`\theta` is unchanged by permuting the objectives (the
    weights permute with them) and multiplied by :math:`c^2` when every objective
    is scaled by :math:`c > 0` (both tested); it is unchanged by adding constants
    to the objectives (only the Jacobian enters).

    Args:
        problem: a :class:`paretomtl.problems.Problem`.
        x: a point of its box, shape (n_var,).
        bound_tol: relative distance to a bound under which it counts as active.

    Returns:
        A :class:`Stationarity` (``value``, ``weights``, ``direction``,
        ``kkt_residual``, ``at_lower``, ``at_upper``).

    Example:
        >>> from paretomtl.front import bound_aware_stationarity
        >>> from paretomtl.problems import ZDT1
        >>> problem = ZDT1(n_var=3)
        >>> bound_aware_stationarity(problem, [0.25, 0.0, 0.0]).value  # on the Pareto set
        0.0
        >>> round(bound_aware_stationarity(problem, [0.25, 0.5, 0.0]).value, 4)  # off it
        0.6566
    """
    x = np.asarray(x, dtype=np.float64)
    _, jacobian = problem.evaluate(x)
    at_lower, at_upper = active_bounds(problem, x, bound_tol)
    return stationarity_from_jacobian(jacobian, at_lower, at_upper)


def stationarity_from_jacobian(
    jacobian: np.ndarray, at_lower: np.ndarray, at_upper: np.ndarray
) -> Stationarity:
    """:func:`bound_aware_stationarity` from a Jacobian and the active-bound masks."""
    jacobian = np.asarray(jacobian, dtype=np.float64)
    if np.isnan(jacobian).any():
        i = int(np.argwhere(np.isnan(jacobian))[0, 0])
        raise ValueError(f"the gradient of objective {i} contains NaN")
    projected = project_gradients(jacobian, at_lower, at_upper)
    finite = np.isfinite(projected).all(axis=1)
    K, n = projected.shape
    weights = np.zeros(K)
    if not finite.any():
        return Stationarity(
            float("inf"), np.full(K, 1.0 / K), np.full(n, np.nan), float("inf"), at_lower, at_upper
        )
    res = mgda(projected[finite])
    weights[finite] = res.weights
    direction = weights[finite] @ projected[finite]
    value = float(direction @ direction)
    with np.errstate(invalid="ignore"):
        combined = weights[finite] @ jacobian[finite]
    kkt = project_gradients(combined[None, :], at_lower, at_upper)[0]
    return Stationarity(value, weights, direction, float(kkt @ kkt), at_lower, at_upper)
