"""What the methods on the K x M gradients (``needs_grads``) share: the error for a call
with the Gram matrix alone, the check that M stays fixed for tracked gradients, and the
dtype of their directions."""

from __future__ import annotations

import numpy as np


def needs_grads_error(method: str, why: str) -> ValueError:
    """The error for a K x M method called with a Gram matrix only.

    Example:
        >>> from paretomtl.solvers._kxm import needs_grads_error
        >>> str(needs_grads_error("moco", "it tracks each gradient vector"))[:36]
        'moco needs grads (K x M): it tracks '
    """
    return ValueError(
        f"{method} needs grads (K x M): {why}, not only their Gram matrix; pass grads "
        f"(and gram too, if you have it)"
    )


def check_same_columns(tracked: np.ndarray | None, grads: np.ndarray, owner: str) -> None:
    """ValueError unless ``grads`` has as many columns as the tracked rows.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers._kxm import check_same_columns
        >>> check_same_columns(np.zeros((2, 3)), np.zeros((2, 3)), "MoCo")  # fine
        >>> check_same_columns(np.zeros((2, 3)), np.zeros((2, 4)), "MoCo")
        Traceback (most recent call last):
        ...
        ValueError: grads has 4 columns but this MoCo tracks gradients of 3 parameters (set by its first step); M must stay the same between calls (call reset() to start over with another M)
    """  # noqa: E501
    if tracked is not None and tracked.shape[1] != grads.shape[1]:
        raise ValueError(
            f"grads has {grads.shape[1]} columns but this {owner} tracks gradients of "
            f"{tracked.shape[1]} parameters (set by its first step); M must stay the same "
            f"between calls (call reset() to start over with another M)"
        )


def direction_dtype(grads: np.ndarray) -> np.dtype:
    """The dtype of a direction for these grads: theirs, float32 for float16.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers._kxm import direction_dtype
        >>> direction_dtype(np.zeros((2, 2), dtype=np.float16))
        dtype('float32')
    """
    return np.dtype(np.float32) if grads.dtype == np.float16 else grads.dtype


def unscaled_direction(d: np.ndarray, exponent: int, grads: np.ndarray) -> np.ndarray:
    """A float64 direction computed from ``2**exponent * grads``, scaled back (exactly,
    a power of two) and in the direction's dtype for ``grads`` (float32 for float16 and
    float32 gradients).

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers._kxm import unscaled_direction
        >>> unscaled_direction(np.array([3.0]), 2, np.zeros((1, 1), dtype=np.float32))
        array([0.75], dtype=float32)
    """
    if exponent:
        with np.errstate(over="ignore", under="ignore"):
            d = np.ldexp(d, -exponent)
    if grads.dtype != np.float64:
        with np.errstate(over="ignore"):
            d = d.astype(np.float32)
    return d
