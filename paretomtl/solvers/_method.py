"""The object form of a solver function: its options fixed, called like the function."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from paretomtl._checks import as_generator
from paretomtl.solvers._registry import REGISTRY
from paretomtl.solvers._result import SolverResult

_INPUTS = ("grads", "gram", "losses")


class Solver:
    """A gradient method as an object: a solver function with its options set.

    ``Solver(function, **options)(grads, gram=..., losses=...)`` calls
    ``function(grads, gram=gram, **options)``, passing ``losses`` only to methods
    that read them (EPO). A method with a ``seed`` option gets one
    ``numpy.random.Generator`` from it at construction, which every call advances,
    so repeated calls draw fresh orders and the sequence is reproducible from the
    seed. ``needs_grads`` is the function's own (True for the methods that read
    every coordinate of the K x M gradients and refuse a Gram matrix alone, such
    as GradDrop; the torch adapter then hands them the gradients). Unknown options
    are refused at construction, with the valid ones listed.
    This is what ``solvers.method("name", **options)`` and the torch adapter build;
    a user's own function ``f(grads=None, *, gram=None) -> SolverResult`` works the
    same way.

    Args:
        function: a solver function (registered or not).
        **options: its keyword options (e.g. ``reduction="mean"`` for PCGrad).

    Example:
        >>> import numpy as np
        >>> from paretomtl import solvers
        >>> pcgrad = solvers.method("pcgrad", reduction="mean", seed=0)
        >>> pcgrad(np.array([[1.0, 0.0], [-1.0, 1.0]])).direction
        array([0.25, 0.75])
        >>> pcgrad.needs_grads  # PCGrad works on the Gram matrix alone
        False
        >>> solvers.method("mgda", tolerance=1e-3)
        Traceback (most recent call last):
        ...
        ValueError: unknown option 'tolerance' for mgda; valid options: max_iter, method, ...tol
    """

    def __init__(self, function: Callable[..., SolverResult], /, **options: object) -> None:
        if not callable(function):
            raise TypeError(f"function must be callable; got {type(function).__name__}")
        params = inspect.signature(function).parameters
        self.name = _registered_name(function)
        valid = sorted(
            n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and n not in _INPUTS
        )
        for key in options:
            if key not in valid:
                raise ValueError(
                    f"unknown option {key!r} for {self.name}; valid options: "
                    f"{', '.join(valid) or 'none'}"
                )
        self.function = function
        self.needs_losses = "losses" in params
        self.needs_grads = bool(getattr(function, "needs_grads", False))
        self.options = dict(options)
        if "seed" in valid:
            self.options["seed"] = as_generator(options.get("seed"))

    def __call__(
        self, grads: object = None, *, gram: object = None, losses: object = None
    ) -> SolverResult:
        """The method's result for these gradients and/or Gram matrix (and losses)."""
        extra = {"losses": losses} if self.needs_losses else {}
        return self.function(grads, gram=gram, **self.options, **extra)

    def __repr__(self) -> str:
        opts = "".join(
            f", {k}=<Generator>" if isinstance(v, np.random.Generator) else f", {k}={v!r}"
            for k, v in self.options.items()
        )
        return f"Solver({self.name}{opts})"


def _registered_name(function: Callable) -> str:
    for name in REGISTRY.available():
        if REGISTRY.get(name) is function:
            return name
    return getattr(function, "__name__", type(function).__name__)


def method(name: str, /, **options: object) -> Callable:
    """The gradient method registered under ``name`` as an object with its options.

    Stateless methods give a :class:`Solver`; stateful ones (``gradvac``,
    ``momentum-pcgrad``) need the number of tasks: pass ``num_tasks=K`` among the
    options to build one, e.g. ``method("gradvac", num_tasks=3, beta=0.5)``.

    Example:
        >>> from paretomtl import solvers
        >>> solvers.method("pareto-step", lower_bounds=[0.2, 0.2])
        Solver(pareto-step, lower_bounds=[0.2, 0.2])
        >>> type(solvers.method("gradvac", num_tasks=2)).__name__
        'GradVac'
    """
    entry = REGISTRY.info(name)
    if entry.kind == "stateful-gradient":
        if "num_tasks" not in options:
            raise ValueError(
                f"{entry.name} keeps state for a fixed number of tasks: pass num_tasks=K"
            )
        return entry.obj(**options)
    return Solver(entry.obj, **options)
