"""Input checks and the two passes over the Jacobian that every Gram-space method shares.

A solver receives task gradients as a K x M matrix ``grads`` (one row per task), or
their K x K Gram matrix ``gram``, or both. ``prepare_scaled`` validates whatever was
given once (both together: against each other) and returns the float64 Gram matrix
the kernels work on, formed from the gradients rescaled by a power of two where their
own Gram matrix would over- or underflow; ``prepare`` returns the Gram matrix itself;
``combine`` forms the direction ``w @ grads``. On large float32/float64 gradients both
passes run the blocked kernels of ``paretomtl._kernels.jacobian`` (column blocks in
cache, float64 accumulation, all cores); small ones stay with BLAS, which is faster
there and needs no compilation.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from paretomtl._kernels import jacobian
from paretomtl._kernels.linalg import (
    GRAM_NOT_FINITE,
    GRAM_NOT_PSD,
    GRAM_NOT_SYMMETRIC,
    check_gram,
)

# Products of two gradient entries are exact to their precision's rounding only inside
# its normal range. A Gram matrix whose largest diagonal entry (squared norm) lies
# outside [TINY, HUGE] is formed again from the gradients times a power of two; a
# nonzero row whose squared norm stays below TINY next to the largest is "lost": its
# entries are rounding. float32: 2**-100 ~ 7.9e-31 leaves 2**26 above float32's
# smallest normal number, so that products rounded to its subnormal grid (a multiple
# of 2**-149) change a sum over M < 2**24 entries by less than float32's own rounding.
# float64: 2**-900 leaves 2**122 above float64's smallest normal number.
_F32_TINY, _F32_HUGE = 2.0**-100, 2.0**100
_F64_TINY, _F64_HUGE = 2.0**-900, 2.0**900
# Chunk width (columns) for float64 accumulation and for rescaled copies.
_CHUNK = 1 << 15
# Consistency of grads with gram: probe vectors, their fixed seed, the smallest
# relative tolerance (about 17x the typical float32 accumulation error over 10**6
# entries, sqrt(M) 2**-24 = 6e-5), the norms below which a task is compared at a
# floor (relative to the largest, and absolute), and the probe's block size in bytes.
_PROBES = 4
_PROBE_SEED = 20240612
_MATCH_RTOL = 1e-3
_MATCH_FLOOR = 2.0**-450
_MATCH_ABS_FLOOR = 2.0**-500
_PROBE_BYTES = 1 << 18
# The blocked kernels take C-contiguous float32/float64 gradients of at least this many
# columns (below it BLAS is as fast, and the first call compiles nothing) and at most
# this many rows (beyond it a block no longer stays in cache).
_KERNEL_MIN_COLUMNS = 1 << 14
_KERNEL_MAX_ROWS = 256


class Prepared(NamedTuple):
    """Validated input: ``gram`` is the Gram matrix of ``2**exponent * grads``.

    ``exponent`` is 0 unless ``grads @ grads.T`` over- or underflows float64 (or
    float32, for float32 grads); ``lost`` lists the nonzero rows of ``grads`` whose
    Gram entries are rounding next to the largest gradient's (norms below about
    1e-135 of it): correct for methods whose answer is relative to the largest
    gradient (MGDA), not for those that read every gradient's direction (PCGrad).
    """

    grads: np.ndarray | None
    gram: np.ndarray
    exponent: int
    lost: tuple[int, ...]


def as_grads(grads: object, name: str = "grads") -> np.ndarray:
    """Return ``grads`` as a 2-D real floating array of shape (K, M), K, M >= 1.

    Integers are converted to float64; float16, float32 and float64 are kept as they
    are (the Gram matrix is formed in float64 or float32, see :func:`gram`).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers._input import as_grads
        >>> as_grads([[1, 2], [3, 4]]).dtype
        dtype('float64')
    """
    arr = np.asarray(grads)
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.float64)
    elif arr.dtype.kind != "f":
        raise TypeError(
            f"{name} must hold real numbers (float16, float32 or float64); got dtype {arr.dtype}"
        )
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (K tasks, M parameters), one gradient "
            f"per row; got {arr.ndim}-D with shape {arr.shape}"
        )
    K, M = arr.shape
    if K == 0:
        raise ValueError(f"{name} has no tasks (shape {arr.shape}); pass at least one row")
    if M == 0:
        raise ValueError(
            f"{name} has no parameters (shape {arr.shape}); each row needs at least one entry"
        )
    if arr.dtype.itemsize > 8:  # long double: no BLAS, and no kernel needs it
        arr = arr.astype(np.float64)
    return arr


def _chunks(M: int, width: int = _CHUNK):
    return (slice(start, start + width) for start in range(0, M, width))


def _use_kernel(J: np.ndarray) -> bool:
    """Whether the blocked kernels take J (see ``_KERNEL_MIN_COLUMNS``)."""
    K, M = J.shape
    return (
        M >= _KERNEL_MIN_COLUMNS
        and K <= _KERNEL_MAX_ROWS
        and (J.dtype == np.float32 or J.dtype == np.float64)  # native byte order
        and J.flags.c_contiguous
        and J.flags.aligned
    )


def _gram_float64(J: np.ndarray, e: int) -> np.ndarray:
    """Gram matrix of ``2**e * J`` accumulated in float64, by column blocks."""
    K, M = J.shape
    G = np.zeros((K, K))
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for cols in _chunks(M):
            block = np.ldexp(J[:, cols].astype(np.float64), e)
            G += block @ block.T
    return G


def _gram_native(J: np.ndarray, e: int) -> np.ndarray:
    """Gram matrix of ``2**e * J`` multiplied in J's own precision (float32/float64).

    With e == 0, the blocked kernel for large J (products in J's precision, sums over
    at most ``jacobian.WIDTH`` columns in it, then float64), else one BLAS call. A
    rescaled J goes to BLAS in one call when it fits one block, so that the products of
    a rescaled copy are those of J times 4**e exactly.
    """
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        if e == 0:
            if _use_kernel(J):
                return jacobian.gram(J)
            return (J @ J.T).astype(np.float64, copy=False)
        if J.shape[1] <= _CHUNK:
            block = np.ldexp(J, e)
            return (block @ block.T).astype(np.float64)
        G = np.zeros((J.shape[0], J.shape[0]))
        for cols in _chunks(J.shape[1]):
            block = np.ldexp(J[:, cols], e)
            G += block @ block.T
    return G


def _raise_non_finite(J: np.ndarray, name: str) -> None:
    for i in range(J.shape[0]):
        if not np.isfinite(J[i]).all():
            raise ValueError(
                f"{name}[{i}] (task {i}) contains NaN or Inf; every gradient must be finite"
            )


def _low_rows(G: np.ndarray, J: np.ndarray, tiny: float) -> tuple[int, ...]:
    """The nonzero rows of J whose squared norm in G is below ``tiny``."""
    d = np.diagonal(G)
    if d.min() >= tiny:  # the common case, without building an index
        return ()
    return tuple(int(i) for i in np.flatnonzero(d < tiny) if np.any(J[i]))


def _exponent(J: np.ndarray) -> int:
    """e with ``2**e * max|J|`` in [0.5, 1) (0 for J = 0)."""
    top = 0.0
    for cols in _chunks(J.shape[1]):
        top = max(top, float(np.max(np.abs(J[:, cols]))))
    return 0 if top == 0.0 else -int(np.frexp(top)[1])


def scaled_gram(J: np.ndarray, accumulate: str = "native") -> tuple[np.ndarray, int, tuple]:
    """``(G, e, lost)``: G the float64 Gram matrix of ``2**e * J`` (see :class:`Prepared`).

    One pass (the blocked kernel, or BLAS for small J) when ``J @ J.T`` stays inside
    the working precision's range (e = 0);
    otherwise the gradients are rescaled by the power of two that brings the largest
    entry to [0.5, 1) (exact), and, for float32 rows too short next to the largest,
    accumulated in float64. float16 input, and float32 with ``accumulate="float64"``,
    are accumulated in float64, whose range their products never leave.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers._input import scaled_gram
        >>> G, e, lost = scaled_gram(np.array([[3e-200, 0.0], [0.0, 4e-200]]))
        >>> e, lost, np.ldexp(G, -2 * e)[1, 1] == 0.0  # (4e-200)**2 underflows
        (662, (), np.True_)
        >>> (np.sqrt(np.diagonal(G)) / 2.0**e).round(210)
        array([3.e-200, 4.e-200])
    """
    native32 = J.dtype == np.float32 and accumulate == "native"
    if J.dtype != np.float64 and not native32:
        G = _gram_float64(J, 0)
        if not np.isfinite(G).all():
            _raise_non_finite(J, "grads")
        return G, 0, ()
    tiny, huge = (_F32_TINY, _F32_HUGE) if native32 else (_F64_TINY, _F64_HUGE)
    G = _gram_native(J, 0)
    d = G.diagonal().tolist()  # K floats: cheaper than numpy reductions for small K
    total = sum(d)  # NaN or inf if a squared norm is (and then some entry of J)
    if math.isfinite(total) and min(d) >= tiny and max(d) <= huge:
        return G, 0, ()  # the common case: one BLAS pass, nothing else
    if math.isfinite(total):  # finite squared norms bound every entry of G
        top = max(d)
    else:
        _raise_non_finite(J, "grads")  # NaN or Inf in grads is named; else an overflow
        top = np.inf
    low = _low_rows(G, J, tiny) if top <= huge else ()
    if top <= huge and not low:
        return G, 0, ()
    e = 0
    if not native32 or not tiny <= top <= huge:
        # Bring the largest entry to [0.5, 1): float64 rows short only next to the
        # absolute bound are then in range, and rows still below it are short next to
        # the largest ("lost"). float32 rows short next to a largest in range go to
        # float64 accumulation below, which holds every float32 product.
        e = _exponent(J)
        if e:
            G = _gram_native(J, e)
            low = _low_rows(G, J, tiny)
    if native32 and low:  # rows too short for float32 products next to the largest
        return _gram_float64(J, e), e, ()
    return G, e, low


def gram(grads: object, *, accumulate: str = "native") -> np.ndarray:
    r"""Gram matrix :math:`G = J J^\top` of task gradients, as float64.

    One pass over ``grads``. ``accumulate="native"`` multiplies in the input's own
    precision for float32 and float64 (the fastest route: large C-contiguous inputs go
    through a blocked kernel that sums at most 512 products in that precision and the
    rest in float64; small ones through BLAS, whose float32 sums carry a relative error
    of about 1e-6 of the largest entry), ``accumulate="float64"``
    converts column blocks to float64 first (accurate to about 1e-15, at up to twice
    the cost). float16 input is always accumulated in float64. Where products would
    leave the working precision's range (float32 norms beyond about 1e±15, float64
    beyond about 1e±135), the Gram matrix is formed from the gradients times a power
    of two (exact) and scaled back; float32 rows too short next to the largest are
    accumulated in float64. Entries below float64's normal range (norms below about
    1e-154) come back rounded to float64's subnormal grid or to 0; the solvers, which
    rescale internally, need no such Gram matrix: pass them ``grads``.

    Args:
        grads: K x M array, one task gradient per row.
        accumulate: ``"native"`` or ``"float64"``.

    Returns:
        The K x K float64 Gram matrix.

    Raises:
        ValueError: if a row holds NaN or Inf (the message names the task), or if the
            squared norms overflow float64 (norms above about 1e154).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import gram
        >>> gram(np.array([[1.0, 0.0], [1.0, 1.0]]))
        array([[1., 1.],
               [1., 2.]])
    """
    J = as_grads(grads)
    if accumulate not in ("native", "float64"):
        raise ValueError(f"accumulate must be 'native' or 'float64'; got {accumulate!r}")
    G, e, _ = scaled_gram(J, accumulate)
    if e == 0:
        return G
    with np.errstate(over="ignore", under="ignore"):
        G = np.ldexp(G, -2 * e)
    if not np.isfinite(G).all():
        raise ValueError(
            "grads are too large for their Gram matrix: their squared norms overflow "
            "float64 (norms above about 1e154); the solvers take such grads as they are "
            "(they rescale them), or divide them by a common factor first"
        )
    return G


def unscaled_gram(G: np.ndarray, exponent: int) -> tuple[np.ndarray, int]:
    """``(gram, exponent)`` to report: the Gram matrix of the gradients themselves
    (exponent 0) when float64 holds it (finite, nonzero squared norms in float64's
    normal range), else ``G``, the Gram matrix of ``2**exponent * grads``, unchanged.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers._input import unscaled_gram
        >>> unscaled_gram(np.eye(2), 10)[0][0, 0] == 2.0**-20
        np.True_
        >>> unscaled_gram(np.eye(2), 600)[1]  # 2**-1200 underflows: kept scaled
        600
    """
    if exponent == 0:
        return G, 0
    with np.errstate(over="ignore", under="ignore"):
        Gt = np.ldexp(G, -2 * exponent)
    d, dt = np.diagonal(G), np.diagonal(Gt)
    if np.isfinite(Gt).all() and not np.any((d > 0) & (dt < np.finfo(np.float64).tiny)):
        return Gt, 0
    return G, exponent


def as_gram(gram_matrix: object, name: str = "gram") -> np.ndarray:
    """Validate a user-supplied Gram matrix; return a symmetric float64 copy.

    Accepted: a finite, square, symmetric, positive semi-definite matrix, the last two
    within ``sqrt(eps)`` of float32, or of the input dtype if that is coarser
    (relative to the largest diagonal entry for symmetry, to the trace for the
    smallest eigenvalue), so that Gram matrices computed in float32 pass, whatever
    dtype they are stored in (:func:`gram` of float32 gradients returns float64).

    Example:
        >>> from paretomtl.solvers._input import as_gram
        >>> as_gram([[1, 0], [0, 4]])
        array([[1., 0.],
               [0., 4.]])
    """
    arr = np.asarray(gram_matrix)
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.float64)
    elif arr.dtype.kind != "f":
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square K x K matrix; got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); K must be at least 1")
    rtol = float(np.sqrt(max(np.finfo(arr.dtype).eps, np.finfo(np.float32).eps)))
    G = np.ascontiguousarray(arr, dtype=np.float64)
    sym = np.empty_like(G)
    status, _ = check_gram(G, rtol, sym)
    if status == GRAM_NOT_FINITE:
        raise ValueError(f"{name} contains NaN or Inf; a Gram matrix must be finite")
    if status == GRAM_NOT_SYMMETRIC:
        raise ValueError(
            f"{name} is not symmetric (within {rtol:.1e} of its largest diagonal entry); "
            f"a Gram matrix J @ J.T is symmetric"
        )
    if status == GRAM_NOT_PSD:
        raise ValueError(
            f"{name} is not positive semi-definite (an eigenvalue is below "
            f"-{rtol:.1e} * trace); a Gram matrix J @ J.T has no negative eigenvalues"
        )
    return sym


@lru_cache(maxsize=64)
def _probe_vectors(K: int) -> np.ndarray:
    U = np.random.default_rng(_PROBE_SEED).standard_normal((_PROBES, K))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    U.setflags(write=False)
    return U


def check_consistent(J: np.ndarray, G: np.ndarray, rtol: float = _MATCH_RTOL) -> None:
    r"""ValueError unless ``G`` is the Gram matrix of ``J`` to within ``rtol``.

    Four fixed unit vectors u (a fixed seed: the check is deterministic) are divided
    by the task norms :math:`n_j = \sqrt{G_{jj}}` (floored at 2**-450 of the largest),
    :math:`v = u / n`, and :math:`J (J^\top v)` (one pass over J, float64 accumulation)
    is compared with :math:`G v`. With :math:`G = J J^\top + E`, the difference in
    entry i is :math:`(E v)_i`; if every :math:`|E_{ij}| \le \epsilon\, n_i n_j`
    (rounding of a Gram matrix computed in float32 or float64) it is at most
    :math:`\epsilon\, n_i \sum_j |u_j|`, and ``rtol`` bounds :math:`\epsilon`. A
    discrepancy in a cosine :math:`G_{ij} / (n_i n_j)` of :math:`\delta` shows as
    about :math:`\delta |u_j|`: every task's direction counts, whatever its norm.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers._input import check_consistent
        >>> J = np.array([[1.0, 0.0], [1.0, 1.0]])
        >>> check_consistent(J, J @ J.T)
        >>> check_consistent(J, np.eye(2))
        Traceback (most recent call last):
        ...
        ValueError: gram does not match grads: ...
    """
    K, M = J.shape
    n = np.sqrt(np.clip(np.diagonal(G), 0.0, None))
    floor = max(_MATCH_FLOOR * float(n.max()), _MATCH_ABS_FLOOR)
    m = np.maximum(n, floor)
    U = _probe_vectors(K)
    V = U / m
    Z = np.zeros((_PROBES, K))
    width = max(512, _PROBE_BYTES // (8 * K))  # a block that stays in cache for both products
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for cols in _chunks(M, width):
            block = J[:, cols].astype(np.float64, copy=False)
            Z += (V @ block) @ block.T
        R = np.abs(Z - V @ G)
        allowed = rtol * np.abs(U).sum(axis=1, keepdims=True) * m
        excess = R / allowed
    bad = ~(R <= allowed)  # NaN and Inf (grads far larger than gram says) are bad
    if not bad.any():
        return
    _raise_non_finite(J, "grads")  # NaN or Inf in grads is named as such
    p, i = np.unravel_index(np.argmax(np.where(bad, np.nan_to_num(excess, nan=np.inf), 0)), R.shape)
    raise ValueError(
        f"gram does not match grads: gram is not grads @ grads.T (task {i}: for a probe "
        f"vector v, (grads @ grads.T @ v)[{i}] = {Z[p, i]:.6g} but (gram @ v)[{i}] = "
        f"{(V @ G)[p, i]:.6g}, a difference of {excess[p, i] * rtol:.2g} of the task's "
        f"norm, where a Gram matrix computed in float32 stays below {rtol:g}). Pass "
        f"only one of them, or gram computed from these grads (solvers.gram(grads))"
    )


def _gram_rtol(gram_matrix: object) -> float:
    dtype = np.asarray(gram_matrix).dtype
    eps = np.finfo(dtype).eps if dtype.kind == "f" else np.finfo(np.float64).eps
    return max(_MATCH_RTOL, 8.0 * float(eps))


def prepare_scaled(grads: object, gram_matrix: object) -> Prepared:
    """Validate ``grads`` and/or ``gram``; the Gram matrix the solvers work on.

    Without ``gram``, it is formed from ``grads`` (rescaled by a power of two where
    their own Gram matrix would over- or underflow: see :class:`Prepared`). With both,
    ``gram`` is used, after :func:`check_consistent` has compared it with ``grads``.
    A ``gram`` whose largest diagonal entry lies outside [2**-900, 2**900] is
    multiplied by a power of four (exact), so that sums formed from it stay in the
    normal range; ``exponent`` then says by which, as for ``grads``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers._input import prepare_scaled
        >>> prepare_scaled(np.array([[1e200, 0.0], [0.0, 2e200]]), None).exponent
        -666
    """
    if grads is None and gram_matrix is None:
        raise ValueError("pass grads (a K x M array) or gram (its K x K Gram matrix)")
    J = None if grads is None else as_grads(grads)
    if gram_matrix is None:
        return Prepared(J, *scaled_gram(J))
    G = as_gram(gram_matrix)
    if J is not None:
        if G.shape[0] != J.shape[0]:
            raise ValueError(
                f"gram is {G.shape[0]} x {G.shape[0]} but grads has {J.shape[0]} rows; "
                f"both must describe the same K tasks"
            )
        check_consistent(J, G, _gram_rtol(gram_matrix))
    top = max(G.diagonal().tolist())
    if top == 0.0 or _F64_TINY <= top <= _F64_HUGE:
        return Prepared(J, G, 0, ())
    e = -(int(np.frexp(top)[1]) // 2)  # 4**e * top in [0.5, 2): exact, no subnormal sums
    return Prepared(J, np.ldexp(G, 2 * e), e, ())


def lost_error(lost: tuple[int, ...], method: str) -> ValueError:
    """The error for a method that needs every gradient's direction (see :class:`Prepared`).

    Example:
        >>> from paretomtl.solvers._input import lost_error
        >>> str(lost_error((2,), "pcgrad"))[:42]
        'grads[2] (task 2) is nonzero but too short'
    """
    i = lost[0]
    return ValueError(
        f"grads[{i}] (task {i}) is nonzero but too short next to the longest gradient "
        f"(below about 1e-135 of its norm) for float64 to hold its Gram entries, and "
        f"{method} depends on every gradient's direction; scale that task's loss up "
        f"(or set its gradient to zero)"
    )


def prepare(grads: object, gram_matrix: object) -> tuple[np.ndarray | None, np.ndarray]:
    """Validate ``grads`` and/or ``gram``; return ``(J or None, float64 Gram)``.

    The Gram matrix of the gradients themselves, for methods that have not (yet)
    moved to :func:`prepare_scaled`: as :func:`gram` computes it (a ValueError when
    it overflows float64; entries below float64's normal range rounded to its
    subnormal grid or to 0, as a direct product would round them).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers._input import prepare
        >>> prepare(np.array([[3.0, 4.0]]), None)[1]
        array([[25.]])
    """
    p = prepare_scaled(grads, gram_matrix)
    if p.exponent == 0:
        return p.grads, p.gram
    with np.errstate(over="ignore", under="ignore"):
        G = np.ldexp(p.gram, -2 * p.exponent)
    if not np.isfinite(G).all():
        raise ValueError(
            "grads are too large for this method: their Gram matrix overflows float64 "
            "(norms above about 1e154); divide them by a common factor first"
        )
    return p.grads, G


def combine(weights: np.ndarray, J: np.ndarray | None) -> np.ndarray | None:
    """The direction ``weights @ J`` in J's dtype (float32 for float16 input).

    Large C-contiguous float32/float64 gradients go through a blocked kernel that sums
    each column in float64 (float64 weights) and rounds once to J's dtype. Otherwise
    float64 gradients go to BLAS, and low-precision ones are combined in float32 with
    the weights multiplied by the power of two that brings the largest to [0.5, 1), and
    the result divided by it (exact). Either way weights far outside float32's range
    (1 / |g| for tiny gradients) do not overflow.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers._input import combine
        >>> combine(np.array([0.5, 0.5]), np.array([[1.0, 0.0], [0.0, 1.0]]))
        array([0.5, 0.5])
        >>> tiny = np.array([[3e-40, 1e-40], [1.0, 1.0]], dtype=np.float32)
        >>> combine(np.array([1e40, 0.0]), tiny)  # 1e40 overflows float32
        array([3., 1.], dtype=float32)
    """
    if J is None:
        return None
    if _use_kernel(J):
        return jacobian.combine(weights, J)
    if J.dtype == np.float64:
        return weights @ J
    top = float(np.max(np.abs(weights)))
    shift = -int(np.frexp(top)[1]) if 0.0 < top < np.inf else 0
    w = np.ldexp(weights, shift).astype(np.float32)
    if J.dtype == np.float32:
        out = w @ J
    else:
        out = np.zeros(J.shape[1], dtype=np.float32)
        for cols in _chunks(J.shape[1]):
            out[cols] = w @ J[:, cols].astype(np.float32)
    if shift:
        with np.errstate(over="ignore"):  # a direction beyond float32's range is inf
            out = np.ldexp(out, -shift)
    return out
