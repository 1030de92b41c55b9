"""The generalised (power) mean of the task losses, and its gradient as loss weights."""

from __future__ import annotations

import math

import numpy as np

from paretomtl._checks import as_task_vector
from paretomtl.state import value
from paretomtl.weighting._base import SU_2022, LossWeighting
from paretomtl.weighting._registry import register


def _check_gamma(gamma: object, name: str = "gamma") -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a real number (or +-inf); got {gamma!r:.60}")
    if math.isnan(gamma):
        raise ValueError(f"{name} must be a real number (or +-inf); got nan")
    return float(gamma)


def weights_from_logs(log_weights: np.ndarray, losses: np.ndarray, method: str) -> np.ndarray:
    """``exp(log_weights)``, or a ValueError naming the task whose weight is beyond
    float64's range (about 1.8e308): only losses hundreds of orders of magnitude apart
    get there, and no rescaling helps (the weights are ratios of the losses)."""
    with np.errstate(over="ignore"):
        w = np.exp(log_weights)
    if not np.isfinite(w).all():
        i = int(np.argmax(log_weights))
        raise ValueError(
            f"losses[{i}] (task {i}) is {float(losses[i])!r}: its {method} weight, "
            f"exp({float(log_weights[i]):.6g}), is beyond float64's range; the losses span "
            f"too many orders of magnitude ({float(losses.min())!r} to "
            f"{float(losses.max())!r}) for weights to be represented"
        )
    return w


def log_mean_and_log_weights(losses: np.ndarray, gamma: float) -> tuple[float, np.ndarray]:
    r""":math:`\log M_\gamma` and :math:`\log w` of positive ``losses``, in log space.

    With :math:`l = \log L` and a reference :math:`l^*` (the max for gamma > 0, the
    min for gamma < 0), :math:`d = l - l^*` has :math:`\gamma d \le 0`, and with
    :math:`S = \log(\tfrac1K \sum_j e^{\gamma d_j})` (by log1p/expm1, exact to
    rounding even for tiny gamma):

        log M = l* + S / gamma,   log w_i = -log K + (gamma - 1) d_i + (1/gamma - 1) S.
    """
    K = losses.size
    if gamma == math.inf or gamma == -math.inf:
        ref = losses.max() if gamma > 0 else losses.min()
        hit = losses == ref  # ties are judged on the losses themselves
        with np.errstate(divide="ignore"):
            return float(np.log(ref)), np.log(hit / hit.sum())
    l = np.log(losses)
    spread = float(l.max() - l.min())
    if abs(gamma) * (spread + spread * spread) < 1e-17:
        # gamma = 0, or so close that log w differs from its gamma = 0 value by less
        # than |gamma| (R + R^2) (R the spread of log L): below rounding. This also keeps
        # gamma * d out of the subnormal range, where S / gamma would lose its digits.
        log_m = float(l.mean())
        return log_m, (log_m - math.log(K)) - l
    ref = l.max() if gamma > 0 else l.min()
    d = l - ref
    with np.errstate(over="ignore"):  # gamma * d -> -inf is the limit wanted (its exp is 0)
        S = float(np.log1p(np.mean(np.expm1(gamma * d))))
        log_w = -math.log(K) + (gamma - 1.0) * d + (1.0 / gamma - 1.0) * S
    return float(ref + S / gamma), log_w


def _positive_losses(losses: object) -> np.ndarray:
    L = np.array(losses, dtype=np.float64)
    if L.ndim != 1 or L.size == 0:
        raise ValueError(f"losses must be a non-empty 1-D array, one per task; got {L.shape}")
    return as_task_vector(L, "losses", L.size, need="> 0")


def generalized_mean(losses: object, gamma: float) -> float:
    r"""The power mean :math:`M_\gamma(L) = (\tfrac1K \sum_i L_i^\gamma)^{1/\gamma}`.

    With its limits: :math:`\gamma = 0` the geometric mean, :math:`+\infty` the max,
    :math:`-\infty` the min. Computed in log space: finite for any positive losses.

    Example:
        >>> from paretomtl.weighting import generalized_mean
        >>> generalized_mean([1.0, 4.0], 0.0), generalized_mean([1.0, 4.0], -1.0)
        (2.0, 1.6)
    """
    L = _positive_losses(losses)
    gamma = _check_gamma(gamma)
    if math.isinf(gamma):
        return float(L.max() if gamma > 0 else L.min())
    return float(np.exp(log_mean_and_log_weights(L, gamma)[0]))


def generalized_mean_weights(losses: object, gamma: float) -> np.ndarray:
    r"""The gradient :math:`\partial M_\gamma / \partial L_i` of the power mean.

    .. math::

        w_i = \tfrac1K L_i^{\gamma-1} M_\gamma^{1-\gamma}
            = \frac{L_i^\gamma}{\sum_j L_j^\gamma}\cdot\frac{M_\gamma}{L_i},

    and its limits: :math:`w_i = M_0 / (K L_i)` at :math:`\gamma = 0`; at
    :math:`\pm\infty` weight 1 on the largest (smallest) loss, split evenly among
    ties (the limit of the finite-gamma weights). Computed in log space; a weight
    beyond float64's range raises a ValueError naming the task. See
    :class:`GeneralizedMeanWeighting`.

    Example:
        >>> from paretomtl.weighting import generalized_mean_weights
        >>> generalized_mean_weights([1.0, 3.0], 2.0)  # L_i / (K M), M = sqrt(5)
        array([0.2236068 , 0.67082039])
    """
    L = _positive_losses(losses)
    log_w = log_mean_and_log_weights(L, _check_gamma(gamma))[1]
    return weights_from_logs(log_w, L, "generalized-mean")


@register(
    "generalized-mean",
    kind="loss",
    paper=SU_2022,
    summary="minimise the power mean ((1/K) sum L_i^gamma)^(1/gamma): 0 geometric, inf max",
)
class GeneralizedMeanWeighting(LossWeighting):
    r"""Descend the generalised (power) mean of the losses.

    Su ("Multi-task learning: loss normalisation", kexue.fm, 2022) unifies the
    loss normalisations as minimising a generalised mean of the losses:

    .. math::

        M_\gamma = \Big(\tfrac1K \textstyle\sum_i L_i^\gamma\Big)^{1/\gamma},\qquad
        w_i = \frac{\partial M_\gamma}{\partial L_i}
            = \tfrac1K L_i^{\gamma-1} M_\gamma^{1-\gamma}.

    :math:`\gamma = 1` is the arithmetic mean (:math:`w_i = 1/K`); :math:`\gamma = 0`
    the geometric mean (:math:`w_i = M_0 / (K L_i)`, the GLS objective and,
    up to the factor :math:`M_0/K`, live-loss normalisation); :math:`\gamma \to +\infty`
    the max (weight 1 on the largest loss, ties split evenly: a minimax, worst-task
    objective) and :math:`-\infty` the min. Larger :math:`\gamma` favours the worse
    tasks. The weights are computed in log space, so no power of a loss overflows
    for any real :math:`\gamma`, and the limits are exact. (A weight itself beyond
    float64's range, from losses hundreds of orders of magnitude apart, raises a
    ValueError naming the task, and changes no state; near-ties at huge
    :math:`|\gamma|` are judged on :math:`\log L`, to its rounding.)

    Scale behaviour: :math:`M_\gamma` is positively homogeneous of degree 1, so the
    weights are homogeneous of degree 0: :math:`w(cL) = w(L)` for a common
    :math:`c > 0`, and (Euler) :math:`\sum_i w_i L_i = M_\gamma`. Each task's share
    of the weighted sum is :math:`w_i L_i / M_\gamma = L_i^\gamma / \sum_j L_j^\gamma`,
    which does not depend on per-task rescaling :math:`L_i \to c_i L_i` only at
    :math:`\gamma = 0` (then every share is 1/K).

    Args:
        num_tasks: K >= 1.
        gamma: the exponent, any real number or ``+-inf`` (no default: Su's note
            leaves it as the knob between average-case and worst-case training).

    The losses must be > 0.

    Example:
        >>> from paretomtl.weighting import GeneralizedMeanWeighting
        >>> GeneralizedMeanWeighting(2, gamma=0.0).update([1.0, 4.0])  # M_0 = 2
        array([1.  , 0.25])
        >>> GeneralizedMeanWeighting(2, gamma=float("inf")).update([1.0, 4.0])
        array([0., 1.])
    """

    hyperparameters = {"gamma": value(lambda x, K, where: _check_gamma(x, where))}
    loss_domain = "> 0"
    why = "the generalised mean takes the log of each loss"

    def __init__(self, num_tasks: int, gamma: float) -> None:
        super().__init__(num_tasks)
        self.gamma = _check_gamma(gamma)
        self.reset()

    def _compute(self, losses: np.ndarray) -> np.ndarray:
        log_w = log_mean_and_log_weights(losses, self.gamma)[1]
        return weights_from_logs(log_w, losses, "generalized-mean")

    def objective(self, losses: object) -> float:
        """:math:`M_\\gamma` of ``losses`` (for logging; does not change the state)."""
        return generalized_mean(self._check_losses(losses), self.gamma)
