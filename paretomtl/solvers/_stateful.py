"""Argument checks and random-generator state shared by the stateful gradient methods."""

from __future__ import annotations

import numpy as np


def check_num_tasks(num_tasks: object) -> int:
    """``num_tasks`` as an int >= 1, or a ValueError naming it."""
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, (int, np.integer)) or num_tasks < 1:
        raise ValueError(f"num_tasks must be a positive integer; got {num_tasks!r}")
    return int(num_tasks)


def check_beta(beta: object, name: str, *, allow_one: bool = False) -> float:
    """A decay rate in [0, 1) (or [0, 1] with ``allow_one``) as a float."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number; got {type(beta).__name__}")
    value = float(beta)
    ok = 0.0 <= value <= 1.0 if allow_one else 0.0 <= value < 1.0
    if not ok:
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must lie in {interval}; got {beta!r}")
    return value


def check_gram_size(G: np.ndarray, num_tasks: int, owner: str) -> None:
    """ValueError unless the Gram matrix describes ``num_tasks`` tasks."""
    if G.shape[0] != num_tasks:
        raise ValueError(
            f"this {owner} was built for {num_tasks} tasks but got {G.shape[0]} "
            f"gradients; K must stay the same between calls (build a new {owner} "
            f"for {G.shape[0]} tasks)"
        )


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator: ``seed`` itself if it is one (shared, not copied), else
    ``numpy.random.default_rng(seed)``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, a numpy Generator or None; got {type(seed).__name__}")


def restore_generator(rng: np.random.Generator, state: dict) -> np.random.Generator:
    """Set ``rng`` to a saved ``bit_generator.state``; a new Generator if the kind differs."""
    kind = state["bit_generator"]
    if type(rng.bit_generator).__name__ != kind:
        rng = np.random.Generator(getattr(np.random, kind)())
    rng.bit_generator.state = state
    return rng
