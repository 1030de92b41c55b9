"""Input checks and the two passes over the Jacobian that every Gram-space method shares.

A solver receives task gradients as a K x M matrix ``grads`` (one row per task), or
their K x K Gram matrix ``gram``, or both. ``prepare`` validates whatever was given
once and returns the float64 Gram matrix the kernels work on; ``combine`` forms the
direction ``w @ grads``.
"""

from __future__ import annotations

import numpy as np

from paretomtl._kernels.linalg import (
    GRAM_NOT_FINITE,
    GRAM_NOT_PSD,
    GRAM_NOT_SYMMETRIC,
    check_gram,
)

# Gram entries below this are treated as underflowed when computed in float32, and
# recomputed in float64 (2**-100 ~ 7.9e-31, far above float32's denormals).
_F32_TINY = 2.0**-100
# Chunk width (columns) for float64 accumulation of low-precision gradients.
_CHUNK = 1 << 15


def as_grads(grads: object, name: str = "grads") -> np.ndarray:
    """Return ``grads`` as a 2-D real floating array of shape (K, M), K, M >= 1.

    Integers are converted to float64; float16, float32 and float64 are kept as they
    are (the Gram matrix is formed in float64 or float32, see :func:`gram`).
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


def _gram_float64_chunked(J: np.ndarray) -> np.ndarray:
    K, M = J.shape
    G = np.zeros((K, K))
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, M, _CHUNK):
            block = J[:, start : start + _CHUNK].astype(np.float64)
            G += block @ block.T
    return G


def _raise_non_finite(J: np.ndarray, name: str) -> None:
    for i in range(J.shape[0]):
        if not np.isfinite(J[i]).all():
            raise ValueError(
                f"{name}[{i}] (task {i}) contains NaN or Inf; every gradient must be finite"
            )


def gram(grads: object, *, accumulate: str = "native") -> np.ndarray:
    r"""Gram matrix :math:`G = J J^\top` of task gradients, as float64.

    One pass over ``grads`` (BLAS). ``accumulate="native"`` multiplies in the input's
    own precision for float32 and float64 (the fastest route; float32 sums carry a
    relative error of about 1e-6 of the largest entry), ``accumulate="float64"``
    converts column blocks to float64 first (accurate to about 1e-15, at up to twice
    the cost). float16 input is always accumulated in float64. Entries that overflow
    or underflow float32 are recomputed in float64 automatically.

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
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite G is handled below
        if J.dtype == np.float64:
            G = J @ J.T
        elif J.dtype == np.float32 and accumulate == "native":
            G = (J @ J.T).astype(np.float64)
        else:
            G = None
    if G is None:
        G = _gram_float64_chunked(J)
    elif J.dtype == np.float32:
        d = np.diagonal(G)
        suspicious = ~np.isfinite(d) | (d < _F32_TINY)
        if suspicious.any():
            rows = np.flatnonzero(suspicious)
            if not np.isfinite(G).all() or any(np.any(J[i]) for i in rows):
                G = _gram_float64_chunked(J)
    if not np.isfinite(G).all():
        _raise_non_finite(J, "grads")
        raise ValueError(
            "grads are too large: their squared norms overflow float64 (norms above about "
            "1e154); divide them by a common factor first (MGDA's weights do not change)"
        )
    return G


def as_gram(gram_matrix: object, name: str = "gram") -> np.ndarray:
    """Validate a user-supplied Gram matrix; return a symmetric float64 copy.

    Accepted: a finite, square, symmetric, positive semi-definite matrix, the last two
    within ``sqrt(eps)`` of the input dtype (relative to the largest diagonal entry for
    symmetry, to the trace for the smallest eigenvalue), so that Gram matrices
    computed in float32 pass.
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
    rtol = float(np.sqrt(np.finfo(arr.dtype).eps))
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


def prepare(grads: object, gram_matrix: object) -> tuple[np.ndarray | None, np.ndarray]:
    """Validate ``grads`` and/or ``gram``; return ``(J or None, float64 Gram)``."""
    if grads is None and gram_matrix is None:
        raise ValueError("pass grads (a K x M array) or gram (its K x K Gram matrix)")
    J = None if grads is None else as_grads(grads)
    if gram_matrix is None:
        return J, gram(J)
    G = as_gram(gram_matrix)
    if J is not None and G.shape[0] != J.shape[0]:
        raise ValueError(
            f"gram is {G.shape[0]} x {G.shape[0]} but grads has {J.shape[0]} rows; "
            f"both must describe the same K tasks"
        )
    return J, G


def combine(weights: np.ndarray, J: np.ndarray | None) -> np.ndarray | None:
    """The direction ``weights @ J`` in J's dtype (float32 for float16 input)."""
    if J is None:
        return None
    if J.dtype == np.float16:
        out = np.zeros(J.shape[1], dtype=np.float32)
        w = weights.astype(np.float32)
        for start in range(0, J.shape[1], _CHUNK):
            out[start : start + _CHUNK] = w @ J[:, start : start + _CHUNK].astype(np.float32)
        return out
    return weights.astype(J.dtype) @ J
