"""Gradient normalisation: the sum of the task gradients scaled to unit length."""

from __future__ import annotations

import numpy as np

from paretomtl.solvers._input import combine, prepare_scaled, unscaled_gram
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

    The direction is invariant to a common positive scale c of the gradients (the
    weights become :math:`w / c`), bit for bit when c is a power of two and the
    scaled gradients are exact; it is even invariant to per-task scales. Gradients
    whose Gram matrix over- or underflows float64 are multiplied by a power of two
    first (``gram_exponent``); a gradient too short for its Gram entries next to
    the longest one gets its norm from its own row.

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads`` (both: checked
            against each other).

    Returns:
        SolverResult with ``weights`` :math:`1/\|g_i\|` and ``direction``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import gradient_normalization
        >>> gradient_normalization(np.array([[3.0, 0.0], [0.0, 0.5]])).direction
        array([1., 1.])
    """
    p = prepare_scaled(grads, gram)
    norms = np.sqrt(np.clip(np.diagonal(p.gram), 0.0, None))
    weights = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    with np.errstate(over="ignore"):  # an infinite weight is refused below
        weights = np.ldexp(weights, p.exponent)  # 1/|g_i| = 2**e / |2**e g_i|, exactly
    for i in p.lost:  # too short for the Gram matrix: its norm from the row itself
        weights[i] = 1.0 / _row_norm(p.grads[i])
    if not np.isfinite(weights).all():
        i = int(np.flatnonzero(~np.isfinite(weights))[0])
        raise ValueError(
            f"grads[{i}] (task {i}) has a norm below float64's normal range (about "
            f"1e-308), whose reciprocal overflows; scale that task's loss up"
        )
    G, exponent = unscaled_gram(p.gram, p.exponent)
    return SolverResult(
        weights=weights,
        direction=combine(weights, p.grads),
        gram=G,
        method="gradient-normalization",
        gram_exponent=exponent,
    )


def _row_norm(row: np.ndarray) -> float:
    """Euclidean norm of one gradient, scaled by a power of two so nothing underflows."""
    x = row.astype(np.float64)
    e = -int(np.frexp(np.max(np.abs(x)))[1])
    return float(np.ldexp(np.linalg.norm(np.ldexp(x, e)), -e))
