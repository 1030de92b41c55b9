"""A registry of methods by name, for the adapters and the command line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MethodInfo:
    """What the registry knows about a method.

    Attributes:
        name: the registry name (``method="..."`` in the adapters).
        obj: a solver function ``f(grads=None, *, gram=None, **options)`` returning a
            :class:`~paretomtl.solvers.SolverResult`, or a stateful class.
        kind: ``"gradient"`` for solver functions of the task gradients (Gram space);
            ``"stateful-gradient"`` for classes whose ``update(grads=None, *,
            gram=None)`` returns a SolverResult and keeps memory between steps;
            ``"loss"`` for loss weightings (``update(losses) -> weights``);
            ``"stateful"`` for GradNorm (losses and gradient norms at a layer);
            ``"loss-gradient"`` for solver functions that also take the losses
            (``f(grads=None, *, gram=None, losses, **options)``: EPO).
        paper: the paper it implements (authors, venue, year).
        summary: one line of what it does.
    """

    name: str
    obj: Callable
    kind: str
    paper: str
    summary: str


_REGISTRY: dict[str, MethodInfo] = {}


def register(name: str, *, kind: str, paper: str, summary: str) -> Callable:
    """Class or function decorator that adds a method to the registry under ``name``."""

    def decorator(obj: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is already registered")
        _REGISTRY[name] = MethodInfo(name, obj, kind, paper, summary)
        return obj

    return decorator


def info(name: str) -> MethodInfo:
    """The :class:`MethodInfo` of a registered method.

    Example:
        >>> from paretomtl.solvers import info
        >>> info("mgda").kind
        'gradient'
    """
    key = name.lower().replace("_", "-") if isinstance(name, str) else name
    if key not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(available())}")
    return _REGISTRY[key]


def get(name: str) -> Callable:
    """The solver function or stateful class registered under ``name``.

    Example:
        >>> import numpy as np
        >>> from paretomtl.solvers import get
        >>> get("mgda")(np.array([[1.0, 0.0], [0.0, 1.0]])).weights
        array([0.5, 0.5])
    """
    return info(name).obj


def available(kind: str | None = None) -> tuple[str, ...]:
    """Sorted names of the registered methods (optionally only those of one ``kind``).

    Example:
        >>> from paretomtl.solvers import available
        >>> "pcgrad" in available()
        True
    """
    return tuple(sorted(n for n, m in _REGISTRY.items() if kind is None or m.kind == kind))
