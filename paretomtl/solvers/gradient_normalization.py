"""Gradient normalisation: the sum of the task gradients scaled to unit length."""

from __future__ import annotations

import numpy as np

from paretomtl.solvers._input import combine, prepare
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult


@register(
    "gradient-normalization",
    kind="gradient",
    paper="Su, Multi-task learning: loss normalisation and gradient normalisation (kexue.fm), 2022",
    summary="sum of the task gradients, each scaled to unit norm (per-task scale invariant)",
)
def gradient_normalization(grads: object = None, *, gram: object = None) -> SolverResult:
    r"""The sum of the unit-normalised task gradients.

    .. math::

        d = \sum_i \frac{g_i}{\|g_i\|}, \qquad w_i = \frac{1}{\sqrt{G_{ii}}}

    (zero gradients get weight 0). Multiplying a loss by a positive constant, or
    adding a constant to it, leaves the direction unchanged: the gradient analogue of
    dividing each loss by its own scale (Su, "Multi-task learning" notes on loss and
    gradient normalisation, kexue.fm, 2022; the same normalisation appears as the
    first step of many later methods).

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.

    Returns:
        SolverResult with ``weights`` :math:`1/\|g_i\|` and ``direction``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import gradient_normalization
        >>> gradient_normalization(np.array([[3.0, 0.0], [0.0, 0.5]])).direction
        array([1., 1.])
    """
    J, G = prepare(grads, gram)
    norms = np.sqrt(np.clip(np.diagonal(G), 0.0, None))
    weights = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return SolverResult(
        weights=weights,
        direction=combine(weights, J),
        gram=G,
        method="gradient-normalization",
    )
