"""PBI: penalty-based boundary intersection (MOEA/D), d1 + theta d2, as a loss weighting."""

from __future__ import annotations

import math

import numpy as np

from paretomtl._checks import as_real_task_vector, check_real
from paretomtl.state import array, real
from paretomtl.weighting._base import LossWeighting
from paretomtl.weighting._registry import register
from paretomtl.weighting.cosmos import check_preference, unit_and_norm

_EPS64 = float(np.finfo(np.float64).eps)


@register(
    "pbi",
    kind="loss",
    paper=(
        "Zhang & Li, MOEA/D: A Multiobjective Evolutionary Algorithm Based on Decomposition, "
        "IEEE Transactions on Evolutionary Computation 2007"
    ),
    summary="gradient of d1 + theta d2 (along / off the preference ray from z): w_hat + theta u",
)
class PBI(LossWeighting):
    r"""Penalty-based boundary intersection (PBI) as a loss weighting (weights of either sign).

    Paper: Qingfu Zhang & Hui Li, "MOEA/D: A Multiobjective Evolutionary Algorithm
    Based on Decomposition", IEEE Transactions on Evolutionary Computation 11(6), 2007
    (section II-C).

    With a preference direction :math:`\hat w = p / \lVert p\rVert` and a reference
    (ideal) point :math:`z`, the losses split into the distance :math:`d_1` travelled
    along the ray and the distance :math:`d_2` to it:

    .. math::

        f = L - z,\qquad d_1 = f^\top \hat w,\qquad d_2 = \lVert f - d_1 \hat w\rVert,
        \qquad F(L) = d_1 + \theta\, d_2 .

    The loss weights are its gradient,

    .. math::

        w = \hat w + \theta\, \frac{f_\perp}{\lVert f_\perp\rVert},
        \qquad f_\perp = f - d_1 \hat w ,

    the unit preference plus :math:`\theta` times the unit vector that points from the
    ray to f: descending it moves the losses down the ray and toward it. The second
    term has components of either sign, so weights may be negative (for
    :math:`\theta > 0`).

    **On the ray** (:math:`d_2 = 0`) the norm has no gradient; its subdifferential is
    the unit ball of the directions orthogonal to :math:`\hat w`, and we return its
    minimum-norm element, 0: :math:`w = \hat w`, the gradient of :math:`d_1` alone
    (the same value torchjd returns there). As :math:`f_\perp` is computed in float64,
    a :math:`d_2` within the rounding of the computation, :math:`\lVert f_\perp\rVert
    \le 4 K \varepsilon \lVert f\rVert` (:math:`\varepsilon = 2^{-52}`), is taken as 0:
    its direction is rounding noise (at L = (1, 1, 1), p = (1, 1, 1), say, where
    :math:`\hat w` is not exact). K = 1 is always on the ray.

    ``eps`` > 0 smooths the norm, :math:`d_2 = \sqrt{\lVert f_\perp\rVert^2 +
    \epsilon}`, giving :math:`\theta f_\perp / \sqrt{\lVert f_\perp\rVert^2 +
    \epsilon}`; ``torchjd.scalarization.PBI`` always adds :math:`\epsilon = 10^{-12}`
    (``eps=1e-12`` reproduces it off the ray). The default, 0, is the exact gradient
    (the smoothing is not scale-invariant: at losses near 1e-6 it changes the weights
    by about 15 per cent, and below that it dominates).

    Defaults: ``theta = 5`` (the paper's experiments; torchjd has no default),
    ``preference`` uniform (only its direction matters; torchjd has no default),
    ``reference`` 0 (torchjd's default; it assumes losses >= 0; MOEA/D uses the best
    value of each objective found so far), ``eps = 0``.

    Computed for any finite losses and reference without overflow (only the
    direction of f matters, so f is scaled by a power of 2 first); every weight lies
    in :math:`[-\theta, 1 + \theta]`.

    Args:
        num_tasks: K >= 1.
        theta: the penalty :math:`\theta \ge 0` (default 5.0); 0 gives :math:`w = \hat w`.
        preference: :math:`p`, a scalar or K values >= 0, not all 0 (default 1/K).
        reference: :math:`z`, a scalar or K finite values; None (default) is 0.
        eps: :math:`\epsilon \ge 0` under the square root of :math:`d_2` (default 0).

    Example:
        >>> from paretomtl.weighting import PBI
        >>> pbi = PBI(2, theta=5.0)
        >>> pbi.update([2.0, 2.0]).round(6)  # on the ray: w = w_hat
        array([0.707107, 0.707107])
        >>> pbi.update([1.0, 3.0]).round(6)  # (1, 1) / sqrt 2 + 5 (-1, 1) / sqrt 2
        array([-2.828427,  4.242641])
    """

    hyperparameters = {
        "theta": real(low=0.0),
        "preference": array("K", ">= 0"),
        "reference": array("K"),
        "eps": real(low=0.0),
    }
    fields = {"_weights": array("K", optional=True)}
    weight_domain = "finite"  # the weights have either sign

    def __init__(
        self,
        num_tasks: int,
        theta: float = 5.0,
        preference: float | object | None = None,
        *,
        reference: float | object | None = None,
        eps: float = 0.0,
    ) -> None:
        super().__init__(num_tasks)
        K = self.num_tasks
        self.theta = check_real(theta, "theta", low=0.0)
        self.preference = check_preference(1.0 / K if preference is None else preference, K)
        if reference is None:  # the origin, as torchjd's None
            reference = 0.0
        self.reference = as_real_task_vector(reference, "reference", K, broadcast=True)
        self.eps = check_real(eps, "eps", low=0.0)

    def set_preference(self, preference: object) -> None:
        """Use ``preference`` (K values >= 0, not all 0, or a scalar) from the next update."""
        self.preference = check_preference(preference, self.num_tasks)

    @property
    def direction(self) -> np.ndarray:
        r"""The unit preference :math:`\hat w` (a new array)."""
        return unit_and_norm(self.preference)[0]

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        w_hat = self.direction
        z = self.reference
        halved = 0
        with np.errstate(over="ignore"):
            f = losses - z
        if not np.isfinite(f).all():  # |L - z| beyond 1.8e308: its half is in range
            f, halved = 0.5 * losses - 0.5 * z, 1
        top = float(np.abs(f).max())
        if top == 0.0 or self.theta == 0.0:
            return w_hat
        e = math.frexp(top)[1]
        f = np.ldexp(f, -e)  # exact: f / 2^e, the largest entry in [0.5, 1)
        perp = f - (f @ w_hat) * w_hat
        perp -= (perp @ w_hat) * w_hat  # twice: what the first pass left along w_hat
        sq = float(perp @ perp)
        if math.sqrt(sq) <= 4.0 * self.num_tasks * _EPS64 * math.sqrt(float(f @ f)):
            return w_hat  # on the ray, up to rounding: the minimum-norm subgradient
        # eps scales with the square of f's scale 2^(e + halved).
        with np.errstate(over="ignore", under="ignore"):
            eps = float(np.ldexp(self.eps, -2 * (e + halved)))
            g = np.clip(perp / math.sqrt(sq + eps), -1.0, 1.0)  # |g| <= 1
        return w_hat + self.theta * g  # in [-theta, 1 + theta]: finite

    def check_state(self, values: dict) -> None:
        p = values["preference"]
        if not (p > 0.0).any():
            raise ValueError(
                f"state['hyperparameters']['preference'] must have an entry > 0; got {p}"
            )
