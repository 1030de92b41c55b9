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
