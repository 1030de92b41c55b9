"""The sum of the task gradients: the step of the summed losses."""

from __future__ import annotations

import numpy as np

from paretomtl.solvers._input import combine, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult


@register(
    "sum",
    kind="gradient",
    paper="Caruana, Multitask Learning, Machine Learning 28(1), 1997 (the summed objective)",
    summary="the sum of the task gradients: weights 1 (the baseline, unnormalised)",
)
def sum(grads: object = None, *, gram: object = None) -> SolverResult:
    r"""The sum of the task gradients, the step of the plain summed loss.

    .. math::

        d = \sum_i g_i, \qquad w_i = 1,

    the gradient of :math:`\sum_i L_i`; TorchJD's ``Sum`` (``SumWeighting``) and
    LibMTL's ``EW`` (equal weighting, weights 1). K times ``mean``'s direction.
    ``kkt_residual`` reports how far d is from a common descent direction,
    :math:`\max(0, -\min_i \langle g_i, d\rangle) / (K \max_i G_{ii})` (0 when every
    task's loss decreases along -d; the same number as ``mean``'s). Gradients whose
    Gram matrix over- or underflows float64 are multiplied by a power of two first
    (``gram_exponent``).

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.

    Returns:
        SolverResult with ``weights`` 1 and ``direction`` (None without ``grads``).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import sum
        >>> sum(np.array([[1.0, 0.0], [-1.0, 2.0]])).direction
        array([0., 2.])
    """
    p = prepare_scaled(grads, gram)
    K = p.gram.shape[0]
    weights = np.ones(K)
    scale = float(np.diagonal(p.gram).max())
    conflict = max(0.0, -float((p.gram @ weights).min()))
    G, exponent = unscaled_gram(p.gram, p.exponent)
    return SolverResult(
        weights=weights,
        direction=combine(weights, p.grads),
        gram=G,
        method="sum",
        kkt_residual=conflict / (K * scale) if scale > 0 else 0.0,
        gram_exponent=exponent,
    )
