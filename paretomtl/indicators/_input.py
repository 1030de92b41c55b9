"""Input checks shared by the indicators, and the lazy import of moocore."""

from __future__ import annotations

from types import ModuleType

import numpy as np


def moocore() -> ModuleType:
    """The moocore module, or an ImportError that says how to install it."""
    try:
        import moocore as mc
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "paretomtl.indicators needs moocore (LGPL-2.1-or-later): "
            "pip install 'paretomtl[indicators]' (or pip install moocore)"
        ) from err
    return mc


def as_point_set(points: object, name: str, allow_empty: bool = False) -> np.ndarray:
    """A finite float64 (n, m) C-contiguous array, or a ValueError naming ``name``."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_points, n_obj), one point per row; "
            f"got shape {arr.shape}"
        )
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} must hold at least one point; got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{name}[{i}, {j}] is {float(arr[i, j])!r}; entries must be finite")
    return np.ascontiguousarray(arr)


def check_same_objectives(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    """A ValueError unless ``a`` and ``b`` have the same number of columns."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{a_name} has {a.shape[1]} objectives (columns) but {b_name} has "
            f"{b.shape[1]}; they must match"
        )
