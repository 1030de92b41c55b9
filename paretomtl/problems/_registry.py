"""A registry of test problems by name, for the front methods and the command line."""

from __future__ import annotations

from paretomtl.problems._base import Problem

_PROBLEMS: dict[str, type[Problem]] = {}


def register_problem(cls: type[Problem]) -> type[Problem]:
    """Class decorator adding a :class:`Problem` subclass under its ``name``."""
    if not cls.name or cls.name in _PROBLEMS:
        raise ValueError(f"problem name {cls.name!r} is empty or already registered")
    _PROBLEMS[cls.name] = cls
    return cls


def available_problems() -> tuple[str, ...]:
    """Sorted names of the registered problems.

    Example:
        >>> from paretomtl.problems import available_problems
        >>> available_problems()
        ('convex-quadratic', 'dtlz2', 'paretomtl-toy', 'zdt1', 'zdt2', 'zdt3')
    """
    return tuple(sorted(_PROBLEMS))


def get_problem(name: str, **options: object) -> Problem:
    """A new instance of the problem registered under ``name``.

    Names are case-insensitive and ``_`` counts as ``-``. Keyword options go to the
    problem's constructor (``n_var`` for all of them).

    Example:
        >>> from paretomtl.problems import get_problem
        >>> get_problem("ZDT1", n_var=10)
        ZDT1(n_var=10)
    """
    key = name.lower().replace("_", "-") if isinstance(name, str) else name
    if key not in _PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; available: {', '.join(available_problems())}")
    return _PROBLEMS[key](**options)
