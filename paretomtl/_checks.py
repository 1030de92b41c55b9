"""Argument checks shared by every family: task counts, per-task vectors, rates, seeds.

Each check returns the value in its canonical type or raises an error that names the
argument, what was seen and what would be valid.
"""

from __future__ import annotations

import numpy as np

DOMAINS = ("finite", ">= 0", "> 0")


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_num_tasks(num_tasks: object) -> int:
    """``num_tasks`` as an int >= 1, or a ValueError naming it.

    Example:
        >>> from paretomtl._checks import check_num_tasks
        >>> check_num_tasks(3)
        3
    """
    if not _is_int(num_tasks) or num_tasks < 1:
        raise ValueError(f"num_tasks must be a positive integer; got {num_tasks!r}")
    return int(num_tasks)


def check_count(value: object, name: str, *, minimum: int = 0) -> int:
    """``value`` as an int >= ``minimum`` (bools refused), or a ValueError naming it."""
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def violations(arr: np.ndarray, need: str) -> np.ndarray:
    """Mask of the entries of ``arr`` that are not finite or break ``need`` (``"finite"``,
    ``">= 0"`` or ``"> 0"``)."""
    if need not in DOMAINS:
        raise ValueError(f"need must be one of {DOMAINS}; got {need!r}")
    bad = ~np.isfinite(arr)
    if need == ">= 0":
        bad |= arr < 0
    elif need == "> 0":
        bad |= arr <= 0
    return bad


def as_task_vector(
    x: object, name: str, num_tasks: int, *, need: str = "finite", broadcast: bool = False
) -> np.ndarray:
    """``x`` as a new float64 (K,) array whose entries all satisfy ``need``.

    ``need`` is ``"finite"``, ``">= 0"`` or ``"> 0"`` (each also finite); with
    ``broadcast`` a scalar stands for K equal entries. The error names the first
    offending entry and its task: ``"losses[2] (task 2) is -1.0; ..."``.

    Example:
        >>> from paretomtl._checks import as_task_vector
        >>> as_task_vector([1, 2], "losses", 2, need="> 0")
        array([1., 2.])
    """
    try:
        arr = np.array(x, dtype=np.float64)  # a copy: the caller's array is never kept
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {num_tasks} real numbers; got {x!r}") from None
    if broadcast and arr.ndim == 0:
        arr = np.full(num_tasks, float(arr))
    if arr.shape != (num_tasks,):
        scalar = " (or be a scalar)" if broadcast else ""
        raise ValueError(
            f"{name} must have shape ({num_tasks},), one entry per task{scalar}; "
            f"got shape {arr.shape}"
        )
    bad = violations(arr, need)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        rule = "finite" if need == "finite" else f"finite and {need}"
        raise ValueError(f"{name}[{i}] (task {i}) is {float(arr[i])!r}; each entry must be {rule}")
    return arr


def check_real(
    value: object,
    name: str,
    *,
    low: float = -np.inf,
    high: float = np.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float from ``low`` to ``high``, closed unless ``*_open`` (NaN and
    infinities refused).

    Example:
        >>> from paretomtl._checks import check_real
        >>> check_real(0.5, "beta", low=0.0, high=1.0, high_open=True)
        0.5
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    v = float(value)
    low_open = low_open or low == -np.inf  # infinite bounds are never reached
    high_open = high_open or high == np.inf
    ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:  # NaN fails every comparison
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {left}{low:g}, {high:g}{right}; got {value!r}")
    return v


def check_choice(value: object, name: str, options: tuple) -> object:
    """``value`` if it is one of ``options``, else a ValueError listing them."""
    if not isinstance(value, str | int | float | type(None)) or value not in options:
        raise ValueError(f"{name} must be one of {options}; got {value!r}")
    return value


def as_generator(seed: object) -> np.random.Generator:
    """A numpy Generator: ``seed`` itself if it is one (shared, not copied), else
    ``numpy.random.default_rng(seed)`` for an int >= 0 or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or _is_int(seed):
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, a numpy Generator or None; got {type(seed).__name__}")


def check_gram_size(G: np.ndarray, num_tasks: int, owner: str) -> None:
    """ValueError unless the Gram matrix describes ``num_tasks`` tasks."""
    if G.shape[0] != num_tasks:
        raise ValueError(
            f"this {owner} was built for {num_tasks} tasks but got {G.shape[0]} "
            f"gradients; K must stay the same between calls (build a new {owner} "
            f"for {G.shape[0]} tasks)"
        )


def as_real_array(x: object, name: str) -> np.ndarray:
    """``x`` as a new float64 array, refusing what converts to numbers only by accident.

    Strings, bytes, bools, complex numbers, None and other objects (anything numpy does
    not store as integers or reals) raise a TypeError naming ``name``; the entries are
    not checked further (see :func:`violations`).

    Example:
        >>> from paretomtl._checks import as_real_array
        >>> as_real_array([1, 2.5], "weights")
        array([1. , 2.5])
    """
    if isinstance(x, str | bytes):
        raise TypeError(f"{name} must be real numbers; got the string {x!r:.60}")
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError):  # ragged nesting
        raise TypeError(f"{name} must be real numbers; got {x!r:.60}") from None
    if raw.dtype.kind not in "iuf":
        what = {"b": "bools", "c": "complex numbers", "U": "strings", "S": "bytes"}
        seen = what.get(raw.dtype.kind, f"{type(x).__name__} of {raw.dtype}")
        raise TypeError(f"{name} must be real numbers; got {seen}: {x!r:.60}")
    return np.array(raw, dtype=np.float64)


def as_real_task_vector(
    x: object, name: str, num_tasks: int, *, need: str = "finite", broadcast: bool = False
) -> np.ndarray:
    """:func:`as_task_vector` that also refuses strings, bools and complex numbers
    (TypeError naming ``name``) instead of converting them."""
    return as_task_vector(as_real_array(x, name), name, num_tasks, need=need, broadcast=broadcast)


def check_reciprocal(arr: np.ndarray, name: str, why: str = "") -> None:
    """ValueError naming the first task whose ``1 / arr[i]`` overflows float64.

    For values that a method divides by: below about 5.6e-309 in magnitude (subnormal
    numbers, and 0) the reciprocal is infinite.

    Example:
        >>> import numpy as np
        >>> from paretomtl._checks import check_reciprocal
        >>> check_reciprocal(np.array([1.0, 1e-320]), "L")
        Traceback (most recent call last):
        ...
        ValueError: L[1] (task 1) is 1e-320; 1 / L[1] overflows float64 (needs >= 5.6e-309)
    """
    with np.errstate(divide="ignore", over="ignore"):
        small = ~np.isfinite(1.0 / arr)
    if small.any():
        i = int(np.flatnonzero(small)[0])
        reason = f" ({why})" if why else ""
        raise ValueError(
            f"{name}[{i}] (task {i}) is {float(arr[i])!r}; 1 / {name}[{i}] overflows float64 "
            f"(needs >= 5.6e-309){reason}"
        )
