"""GradDrop: per coordinate, keep the task gradients of one sign, drawn by sign purity."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from paretomtl._checks import as_generator, as_real_array, as_real_task_vector
from paretomtl._kernels.graddrop import sign_choice, sign_sums
from paretomtl.solvers._input import prepare_scaled, unscaled_gram
from paretomtl.solvers._kxm import needs_grads_error, unscaled_direction
from paretomtl.solvers._registry import register
from paretomtl.solvers._result import SolverResult

# Columns per float64 copy of a block of non-float64 or rescaled gradients.
_BLOCK = 1 << 13


@register(
    "graddrop",
    kind="gradient",
    paper=(
        "Chen, Ngiam, Huang, Luong, Kretzschmar, Chai & Anguelov, Just Pick a Sign: "
        "Optimizing Deep Multitask Models with Gradient Sign Dropout, NeurIPS 2020"
    ),
    summary="per coordinate keep only the positive or only the negative task gradients, "
    "drawn with probability given by their sign purity (K x M)",
)
def graddrop(
    grads: object = None,
    *,
    gram: object = None,
    seed: int | np.random.Generator | None = None,
    leak: object = 0.0,
    f: Callable[[np.ndarray], np.ndarray] | None = None,
    uniform: object = None,
) -> SolverResult:
    r"""Gradient Sign Dropout (GradDrop), on the K x M task gradients.

    Per coordinate m (Chen et al., "Just Pick a Sign: Optimizing Deep Multitask
    Models with Gradient Sign Dropout", NeurIPS 2020, Algorithm 1), the positive
    sign purity of the K task gradients, one uniform draw, and a mask per task:

    .. math::

        P_m &= \frac12\Big(1 + \frac{\sum_i g_{im}}{\sum_i |g_{im}|}\Big)
             = \frac{\sum_i \max(g_{im}, 0)}{\sum_i |g_{im}|} \in [0, 1],
        \qquad U_m \sim \mathcal U(0, 1),

        M_{im} &= \mathbb 1[f(P_m) > U_m]\,\mathbb 1[g_{im} > 0]
                + \mathbb 1[f(P_m) < U_m]\,\mathbb 1[g_{im} < 0],

        d_m &= \sum_i \big(\ell_i + (1 - \ell_i) M_{im}\big)\, g_{im}.

    With no leak, each coordinate keeps either its positive task gradients (with
    probability :math:`f(P_m)`) or its negative ones: the update never pushes a
    coordinate both ways. A leak :math:`\ell_i` lets that share of task i's gradient
    through unmasked (:math:`\ell_i = 1`: task i is never dropped, the paper's
    setting for a source task in transfer learning). A coordinate where every
    gradient is 0 has no purity (0/0); its :math:`P_m` is set to 1/2 and its
    :math:`d_m` is 0 whatever is drawn. The second form of :math:`P_m` is used
    (no cancellation in :math:`1 + \sum g / \sum |g|`).

    Defaults are the paper's and both peers': :math:`f` the identity,
    :math:`\ell_i = 0`. TorchJD (``GradDrop(f, leak)``) computes the same formula
    with one torch uniform draw per coordinate; LibMTL (``weighting/GradDrop.py``)
    applies it only to the gradients at a shared representation, adds ``1e-7`` to
    :math:`\sum_i |g_{im}|`, and for batch-separated representations first sums
    :math:`g \cdot \operatorname{sign}(z)` over the batch (the paper's variant for
    per-example activations); here the method works on whatever gradients it gets
    (the torch adapter's ``mode="representation"`` gives it the gradients at the
    shared features, flattened) and has no eps. The direction is a different
    combination per coordinate, so ``weights`` is None; it scales with the
    gradients (:math:`d(cJ) = c\,d(J)` for c > 0 and the same draws), at any scale:
    float64 gradients beyond about 1e±150 are multiplied by a power of two first.
    The sums run in float64, a block of columns at a time; the direction has the
    dtype of ``grads`` (float32 for float16). ``gram`` is only checked against
    ``grads`` and reported.

    Args:
        grads: K x M task gradients, one per row (required: see ``needs_grads``).
        gram: their K x K Gram matrix, optional (checked against ``grads``).
        seed: int >= 0 or ``numpy.random.Generator`` for the M uniform draws (one
            ``rng.random(M)`` per call); the same int gives bit-identical results.
            None draws fresh entropy (not reproducible).
        leak: :math:`\ell`, a scalar or K values in [0, 1] (default 0, no leak).
        f: the purity transform, a function of the (M,) float64 array :math:`P`
            returning M reals; the paper asks for a monotonically increasing map of
            [0, 1] onto itself, odd around (1/2, 1/2). None (default) is the identity.
        uniform: explicit (M,) draws :math:`U` in [0, 1], overriding ``seed`` (which
            is still checked); for reproducing another implementation's draws.

    Raises:
        ValueError: without ``grads`` (a Gram matrix alone cannot give sign masks),
            for a ``leak`` outside [0, 1] or of the wrong length, ``uniform`` of the
            wrong shape or outside [0, 1], an ``f`` whose output is not M reals
            without NaN, bad ``grads``/``gram``.
        TypeError: for a ``seed`` that is not an int, Generator or None, an ``f``
            that is not callable, or a non-real ``leak`` or ``uniform``.

    Returns:
        SolverResult with ``weights`` None, ``direction`` d, ``gram`` and
        ``extras``: ``"positive_kept"`` and ``"negative_kept"`` (how many
        coordinates kept the positive, or the negative, gradients).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import graddrop
        >>> J = np.array([[1.0, 2.0, 0.5], [-3.0, 1.0, 0.5]])
        >>> # P = (1/4, 1, 1): coordinate 0 keeps its positive entry only if U_0 < 1/4
        >>> graddrop(J, uniform=[0.2, 0.9, 0.3]).direction
        array([1., 3., 1.])
        >>> graddrop(J, uniform=[0.6, 0.9, 0.3]).direction
        array([-3.,  3.,  1.])
        >>> # task 0 leaks half of its dropped entry: 0.5 * 1 + (-3)
        >>> graddrop(J, leak=[0.5, 0.0], uniform=[0.6, 0.9, 0.3]).direction
        array([-2.5,  3. ,  1. ])
        >>> res = graddrop(J, seed=0)
        >>> res.weights is None, res.direction.shape
        (True, (3,))
    """
    rng = as_generator(seed) if uniform is None or seed is not None else None
    if f is not None and not callable(f):
        raise TypeError(f"f must be a function of the purity array, or None; got {f!r:.60}")
    if grads is None:
        raise needs_grads_error("graddrop", "its sign masks read every coordinate")
    p = prepare_scaled(grads, gram)
    J = p.grads
    K, M = J.shape
    ell = as_real_task_vector(leak, "leak", K, need=">= 0", broadcast=True)
    if (ell > 1).any():
        i = int(np.flatnonzero(ell > 1)[0])
        raise ValueError(f"leak[{i}] (task {i}) is {float(ell[i])!r}; each leak must lie in [0, 1]")
    if uniform is None:
        draws = rng.random(M)
    else:
        draws = as_real_array(uniform, "uniform")
        if draws.shape != (M,):
            raise ValueError(
                f"uniform must have shape ({M},), one draw per coordinate; got {draws.shape}"
            )
        if not ((draws >= 0) & (draws <= 1)).all():
            raise ValueError("uniform must hold draws in [0, 1] (no NaN)")
    with_leak = bool(ell.any())
    sums = _sums(J, p.exponent, ell, with_leak)
    if f is None:
        fp = sums[0][:0]  # not read: the kernel forms P itself
    else:
        pos_sum, neg_sum = sums[0], sums[1]
        den = pos_sum - neg_sum  # sum of |g|, >= 0
        with np.errstate(invalid="ignore", divide="ignore"):
            purity = np.where(den > 0, pos_sum / np.where(den > 0, den, 1.0), 0.5)
        fp = _transformed(f, purity)
    d = np.empty(M)
    n_pos, n_neg = sign_choice(*sums, fp, draws, f is None, with_leak, d)
    d = unscaled_direction(d, p.exponent, J)
    G, exponent = unscaled_gram(p.gram, p.exponent)
    return SolverResult(
        weights=None,
        direction=d,
        gram=G,
        method="graddrop",
        extras={
            "positive_kept": int(n_pos),
            "negative_kept": int(n_neg),
        },
        gram_exponent=exponent,
    )


graddrop.needs_grads = True


def _sums(J: np.ndarray, exponent: int, ell: np.ndarray, with_leak: bool) -> tuple:
    """Per column, in float64 on ``2**exponent * J``: the sums of the positive and of
    the negative entries, the same weighted by ``1 - leak`` (what a kept sign adds),
    and ``leak @ J`` (the last three empty without leak)."""
    M = J.shape[1]
    n = M if with_leak else 0
    out = (np.zeros(M), np.zeros(M), np.zeros(n), np.zeros(n), np.zeros(n))
    if J.dtype == np.float64 and exponent == 0 and J.flags.c_contiguous:
        sign_sums(J, ell, *out, with_leak)
        return out
    for start in range(0, M, _BLOCK):  # a float64 (rescaled) copy a block at a time
        cols = slice(start, start + _BLOCK)
        block = np.ascontiguousarray(J[:, cols], dtype=np.float64)
        if exponent:
            block = np.ldexp(block, exponent)
        sign_sums(block, ell, *(a[cols] for a in out), with_leak)  # empty stays empty
    return out


def _transformed(f: Callable, purity: np.ndarray) -> np.ndarray:
    out = f(purity.copy())  # a copy: the function cannot change the purity used later
    try:
        arr = as_real_array(out, "f(P)")
    except TypeError as exc:
        raise ValueError(f"f must return {purity.shape[0]} reals: {exc}") from None
    if arr.shape != purity.shape:
        raise ValueError(
            f"f must return one value per coordinate, shape {purity.shape}; got shape {arr.shape}"
        )
    if np.isnan(arr).any():
        raise ValueError("f returned NaN; it must map the purity in [0, 1] to reals")
    return arr
