"""TrimmedMean: per coordinate, the mean of the task gradients without the extremes."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import check_count
from paretomtl._kernels.trimmed_mean import trimmed_sums
from paretomtl.solvers._input import prepare_scaled, unscaled_gram
from paretomtl.solvers._kxm import needs_grads_error, unscaled_direction
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult

# Columns per float64 copy of a block of non-float64 or rescaled gradients.
_BLOCK = 1 << 11


@register(
    "trimmed-mean",
    kind="gradient",
    paper=(
        "Yin, Chen, Ramchandran & Bartlett, Byzantine-Robust Distributed Learning: "
        "Towards Optimal Statistical Rates, ICML 2018"
    ),
    summary="per coordinate, the mean of the task gradients without the trim_number "
    "largest and smallest values (K x M)",
)
def trimmed_mean(
    grads: object = None, *, gram: object = None, trim_number: int = 1
) -> SolverResult:
    r"""The coordinate-wise trimmed mean of the task gradients (Yin et al., ICML 2018).

    For each coordinate m, with :math:`g_{(1)m} \le \dots \le g_{(K)m}` the K task
    gradients' entries sorted and :math:`t` = ``trim_number``:

    .. math::

        d_m = \frac{1}{K - 2t} \sum_{k=t+1}^{K-t} g_{(k)m},

    the mean after dropping the t largest and the t smallest values (Yin, Chen,
    Ramchandran & Bartlett, "Byzantine-Robust Distributed Learning: Towards Optimal
    Statistical Rates", ICML 2018, where the trimmed share :math:`\beta = t / K`
    bounds the fraction of corrupted workers it tolerates). It needs
    :math:`K > 2t`; ``trim_number=0`` is the mean. Ties are kept as a multiset (two
    equal largest values: one is dropped for t = 1). Each coordinate keeps different
    tasks, so ``weights`` is None; the direction scales with the gradients, at any
    scale (float64 gradients beyond about 1e±150 are multiplied by a power of two
    first), and is invariant to the order of the tasks (up to the rounding of its
    sums). The sums run in float64 (one pass for t <= 1: the trimmed entries are left
    out, not subtracted, so nothing cancels; for t >= 2 each coordinate's values are
    sorted, a block of coordinates at a time, and the middle ones summed); the
    direction has the dtype of ``grads`` (float32 for float16). ``gram`` is only
    checked against ``grads`` and reported.

    Default ``trim_number=1``, the least trimming that drops anything (K >= 3).
    TorchJD's ``TrimmedMean(trim_number)`` has no default; the same t gives the same
    direction (tested to rounding). LibMTL has no TrimmedMean.

    Args:
        grads: K x M task gradients, one per row (required: see ``needs_grads``).
        gram: their K x K Gram matrix, optional (checked against ``grads``).
        trim_number: t >= 0, values dropped at each end of every coordinate; needs
            K > 2t.

    Raises:
        ValueError: without ``grads`` (a Gram matrix holds no coordinates), for a
            ``trim_number`` that is not an integer >= 0 or leaves no value
            (K <= 2 * trim_number), bad ``grads``/``gram``.

    Returns:
        SolverResult with ``weights`` None, ``direction`` d and ``gram``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import trimmed_mean
        >>> J = np.array([[1.0, -4.0], [2.0, 0.0], [9.0, 1.0], [3.0, 2.0]])
        >>> trimmed_mean(J).direction  # (2 + 3) / 2 and (0 + 1) / 2
        array([2.5, 0.5])
        >>> trimmed_mean(J, trim_number=0).direction  # the mean
        array([ 3.75, -0.25])
        >>> trimmed_mean(J[:2])
        Traceback (most recent call last):
        ...
        ValueError: trimmed-mean with trim_number=1 drops 2 of each coordinate's K ...
    """
    t = check_count(trim_number, "trim_number")
    if grads is None:
        raise needs_grads_error("trimmed-mean", "it trims each coordinate's K values")
    p = prepare_scaled(grads, gram)
    J = p.grads
    K, M = J.shape
    if K <= 2 * t:
        raise ValueError(
            f"trimmed-mean with trim_number={t} drops {2 * t} of each coordinate's K "
            f"values: it needs K > 2 * trim_number = {2 * t} tasks; got K = {K} (lower "
            f"trim_number, to at most {(K - 1) // 2})"
        )
    d = np.empty(M)
    if t <= 1 and J.dtype == np.float64 and p.exponent == 0 and J.flags.c_contiguous:
        trimmed_sums(J, t, d)
    else:
        for start in range(0, M, _BLOCK):  # a float64 (rescaled) copy a block at a time
            cols = slice(start, start + _BLOCK)
            block = np.ascontiguousarray(J[:, cols], dtype=np.float64)
            if p.exponent:
                block = np.ldexp(block, p.exponent)
            if t <= 1:
                trimmed_sums(block, t, d[cols])
            else:  # rows of the transpose sorted, their middle summed
                d[cols] = np.sort(block.T, axis=1)[:, t : K - t].sum(axis=1)
    d /= K - 2 * t
    d = unscaled_direction(d, p.exponent, J)
    G, exponent = unscaled_gram(p.gram, p.exponent)
    return SolverResult(
        weights=None,
        direction=d,
        gram=G,
        method="trimmed-mean",
        extras={"trim_number": t},
        gram_exponent=exponent,
    )


trimmed_mean.needs_grads = True
