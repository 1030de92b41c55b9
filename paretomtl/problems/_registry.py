"""The registry of test problems, a :class:`paretomtl._registry.Registry` like every family's.

One kind: ``"problem"`` (a :class:`Problem` subclass; its ``paper`` and the first line
of its docstring are the entry's paper and summary).
"""

from __future__ import annotations

from paretomtl._registry import Registry
from paretomtl.problems._base import Problem

REGISTRY = Registry("paretomtl.problems", kinds=("problem",), what="problem")


def register_problem(cls: type[Problem]) -> type[Problem]:
    """Class decorator adding a :class:`Problem` subclass under its ``name``.

    Example:
        >>> from paretomtl.problems import ZDT1, available_problems
        >>> "zdt1" in available_problems() and ZDT1.name == "zdt1"
        True
    """
    summary = (cls.__doc__ or "").strip().partition("\n")[0]
    return REGISTRY.register(cls.name, kind="problem", paper=cls.paper, summary=summary)(cls)


def available_problems() -> tuple[str, ...]:
    """Sorted names of the registered problems.

    Example:
        >>> from paretomtl.problems import available_problems
        >>> available_problems()
        ('convex-quadratic', 'dtlz2', 'paretomtl-toy', 'zdt1', 'zdt2', 'zdt3')
    """
    return REGISTRY.available()


def get_problem(name: str, **options: object) -> Problem:
    """A new instance of the problem registered under ``name``.

    Names are case-insensitive and ``_`` counts as ``-``. Keyword options go to the
    problem's constructor (``n_var`` for all of them).

    Example:
        >>> from paretomtl.problems import get_problem
        >>> get_problem("ZDT1", n_var=10)
        ZDT1(n_var=10)
    """
    return REGISTRY.get(name)(**options)
