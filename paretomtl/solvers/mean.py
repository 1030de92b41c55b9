"""The mean of the task gradients: the baseline every gradient method is measured against."""

from __future__ import annotations

import numpy as np

from paretomtl.solvers._input import combine, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult


@register(
    "mean",
    kind="gradient",
    paper="Caruana, Multitask Learning, Machine Learning 28(1), 1997 (the averaged objective)",
    summary="the average of the task gradients: equal weights 1/K (the baseline)",
)
def mean(grads: object = None, *, gram: object = None) -> SolverResult:
    r"""The mean of the task gradients, the step of the plain averaged loss.

    .. math::

        d = \frac1K \sum_i g_i, \qquad w_i = \frac1K,

    the gradient of :math:`\tfrac1K \sum_i L_i`, the multi-task objective of Caruana
    (Machine Learning 28(1), 1997); TorchJD calls it ``Mean``, LibMTL ``EW`` (equal
    weighting, with weights 1 instead of 1/K). It ignores every conflict: the
    baseline the other methods are measured against. ``kkt_residual`` reports how
    far d is from a common descent direction, :math:`\max(0, -\min_i \langle g_i,
    d\rangle) / \max_i G_{ii}` (0 when every task's loss decreases along -d). Both
    are invariant to a common positive scale of the gradients (the direction scales
    with it), at any scale: gradients whose Gram matrix over- or underflows float64
    are multiplied by a power of two first (``gram_exponent``).

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.

    Returns:
        SolverResult with ``weights`` 1/K and ``direction`` (None without ``grads``).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import mean
        >>> mean(np.array([[1.0, 0.0], [-1.0, 2.0]])).direction
        array([0., 1.])
    """
    p = prepare_scaled(grads, gram)
    K = p.gram.shape[0]
    weights = np.full(K, 1.0 / K)
    scale = float(np.diagonal(p.gram).max())
    conflict = max(0.0, -float((p.gram @ weights).min()))
    G, exponent = unscaled_gram(p.gram, p.exponent)
    return SolverResult(
        weights=weights,
        direction=combine(weights, p.grads),
        gram=G,
        method="mean",
        kkt_residual=conflict / scale if scale > 0 else 0.0,
        gram_exponent=exponent,
    )
