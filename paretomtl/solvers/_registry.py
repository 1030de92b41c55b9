"""The registry of gradient methods.

Kinds: ``"gradient"`` for solver functions ``f(grads=None, *, gram=None, **options)``
returning a :class:`~paretomtl.solvers.SolverResult` (a ``losses=`` parameter, as
EPO's, means the method also reads the losses; a ``seed=`` parameter, that it is
random); ``"stateful-gradient"`` for classes built as ``cls(num_tasks, **options)``
whose objects are called the same way and keep memory between steps.
"""

from __future__ import annotations

from paretomtl._registry import Registry

REGISTRY = Registry(
    "paretomtl.solvers", kinds=("gradient", "stateful-gradient"), what="gradient method"
)
register = REGISTRY.register
