"""PCGrad: project each task gradient off the gradients it conflicts with."""

from __future__ import annotations

import numpy as np

from paretomtl._checks import as_generator, check_choice
from paretomtl._kernels.pcgrad import pcgrad_coefficients
from paretomtl.solvers._input import combine, lost_error, prepare_scaled, unscaled_gram
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult

_REDUCTIONS = ("sum", "mean")


def task_orders(num_tasks: int, seed: int | np.random.Generator | None) -> np.ndarray:
    """The K x K array of PCGrad's task orders: row i is the order used for task i.

    Each row is an independent random permutation of ``range(num_tasks)`` drawn
    from ``numpy.random.default_rng(seed)`` (or from ``seed`` itself if it is a
    Generator). The same integer seed gives the same orders on every platform.

    Example:
        >>> from paretomtl.solvers.pcgrad import task_orders
        >>> task_orders(3, seed=0).shape
        (3, 3)
    """
    rng = as_generator(seed)
    base = np.tile(np.arange(num_tasks, dtype=np.int64), (num_tasks, 1))
    return rng.permuted(base, axis=1)


@register(
    "pcgrad",
    kind="gradient",
    paper=(
        "Yu, Kumar, Gupta, Levine, Hausman & Finn, Gradient Surgery for Multi-Task "
        "Learning, NeurIPS 2020"
    ),
    summary="project each gradient off the ones it conflicts with, in random order, then sum",
)
def pcgrad(
    grads: object = None,
    *,
    gram: object = None,
    seed: int | np.random.Generator | None = None,
    reduction: str = "sum",
    orders: np.ndarray | None = None,
) -> SolverResult:
    r"""PCGrad (projecting conflicting gradients), computed in Gram space.

    For each task i, in a random order of the tasks j (drawn anew for every i):

    .. math::

        \text{if } \langle g_i^{PC}, g_j\rangle < 0:\quad
        g_i^{PC} \leftarrow g_i^{PC} - \frac{\langle g_i^{PC}, g_j\rangle}{\|g_j\|^2} g_j

    starting from :math:`g_i^{PC} = g_i`, projecting off the *original* g_j; the
    update is :math:`\sum_i g_i^{PC}` (``reduction="sum"``, the paper) or their
    mean (Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020).

    Every :math:`g_i^{PC}` stays in the span of the gradients,
    :math:`g_i^{PC} = \sum_j A_{ij} g_j`; the projections update row i of the K x K
    matrix A with :math:`\langle g_i^{PC}, g_j\rangle = (AG)_{ij}` and
    :math:`\|g_j\|^2 = G_{jj}`, so the whole method costs O(K^3) on G plus one
    combination pass over the gradients: weights :math:`w = A^\top 1` (divided by K
    for the mean), direction :math:`w^\top J`. This equals the sequential projection
    on the vectors for the same orders (tested to 1e-10 relative).

    As in the authors' code, each order includes i itself (a no-op unless an earlier
    projection turned :math:`g_i^{PC}` against :math:`g_i`). The random order is the
    paper's; the authors' TensorFlow code discards the result of its
    ``tf.random.shuffle``, so its order is in fact fixed (task order).

    No eps. The reference codes differ in the denominator :math:`\|g_j\|^2`: the
    authors' TensorFlow code (github.com/tianheyu927/PCGrad, ``PCGrad_tf.py``)
    divides by it with no eps, for every j whether it conflicts or not (a zero
    gradient makes that 0/0); TorchJD (``torchjd/aggregation/_pcgrad.py``, in Gram
    space) has no eps either and divides only when the inner product is negative;
    LibMTL (``LibMTL/weighting/PCGrad.py``) adds ``1e-8`` to it, which leaves part of
    the conflict unprojected wherever :math:`\|g_j\|^2` is not far above 1e-8
    (norms of 1e-3 and below) and makes the answer depend on the gradients' scale.
    Here there is no eps: a zero gradient is never projected on (its inner products
    are 0, never negative), and the weights are invariant to a common positive scale
    of the gradients, bit for bit wherever the scaled gradients are exact
    (gradients whose Gram matrix over- or underflows float64 are multiplied by a
    power of two first: ``gram_exponent``). A nonzero gradient too short for float64
    to hold its Gram entries next to the longest one (below about 1e-135 of its
    norm) raises a ValueError, since its direction would be lost.

    Args:
        grads: K x M task gradients, one per row.
        gram: K x K Gram matrix, instead of or besides ``grads``.
        seed: int >= 0 or ``numpy.random.Generator`` for the task orders; the same int
            gives bit-identical results. None draws fresh entropy (not reproducible).
        reduction: ``"sum"`` (default, the paper) or ``"mean"``.
        orders: explicit K x K integer array of orders (row i a permutation of
            range(K), used for task i); overrides ``seed`` (which is still checked).

    Raises:
        ValueError: for an unknown ``reduction``, a negative ``seed``, ``orders`` of
            the wrong shape or not permutations, bad ``grads``/``gram``, or a ``gram``
            that is not ``grads @ grads.T``.
        TypeError: for a ``seed`` that is not an int, Generator or None (bools
            included), or non-integer ``orders``.

    Returns:
        SolverResult with ``weights`` (:math:`A^\top 1`, or its mean), ``direction`` and
        ``extras["coefficients"]`` (A), ``extras["projections"]`` (how many
        projections were made), ``extras["orders"]``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import pcgrad
        >>> res = pcgrad(np.array([[1.0, 0.0], [-1.0, 1.0]]), seed=0)
        >>> res.direction
        array([0.5, 1.5])
        >>> res.extras["projections"]
        2
    """
    check_choice(reduction, "reduction", _REDUCTIONS)
    rng = as_generator(seed) if orders is None or seed is not None else None
    p = prepare_scaled(grads, gram)
    if p.lost:
        raise lost_error(p.lost, "pcgrad")
    K = p.gram.shape[0]
    orders = task_orders(K, rng) if orders is None else _as_orders(orders, K)
    A, n_proj = pcgrad_coefficients(p.gram, orders, np.ones((K, K), dtype=np.bool_))
    G, exponent = unscaled_gram(p.gram, p.exponent)
    extras = {"projections": int(n_proj), "orders": orders}
    return coefficient_result(A, p.grads, G, reduction, "pcgrad", extras, gram_exponent=exponent)


def _as_orders(orders: object, K: int) -> np.ndarray:
    try:
        arr = np.asarray(orders)
    except ValueError:  # ragged nesting
        arr = np.asarray(None)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"orders must be a ({K}, {K}) array of integers (row i a permutation of "
            f"range({K})); got dtype {arr.dtype}"
        )
    if arr.shape != (K, K):
        raise ValueError(f"orders must be a ({K}, {K}) integer array; got shape {arr.shape}")
    if not (np.sort(arr, axis=1) == np.arange(K)).all():
        raise ValueError(f"orders must hold a permutation of range({K}) in every row")
    return arr.astype(np.int64)


def coefficient_result(
    A: np.ndarray,
    J: np.ndarray | None,
    G: np.ndarray,
    reduction: str,
    name: str,
    extras: dict,
    *,
    gram_exponent: int = 0,
) -> SolverResult:
    """The result of a method whose modified gradients are the rows of ``A @ J``.

    The update is their sum (weights ``A^T 1``) or mean; ``extras`` gains the
    coefficients. ``G`` is the Gram matrix of ``2**gram_exponent * J`` (see
    :class:`~paretomtl.solvers.SolverResult`). Shared by PCGrad, GradVac and momentum
    PCGrad.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers.pcgrad import coefficient_result
        >>> J = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> coefficient_result(np.eye(2), J, J @ J.T, "mean", "demo", {}).direction
        array([0.5, 0.5])
    """
    weights = A.sum(axis=0)
    if reduction == "mean":
        weights = weights / A.shape[0]
    return SolverResult(
        weights=weights,
        direction=combine(weights, J),
        gram=G,
        method=f"{name}/{reduction}",
        extras={"coefficients": A, **extras},
        gram_exponent=gram_exponent,
    )
