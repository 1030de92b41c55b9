"""One registry shape for every family of named things: methods, weightings, problems.

Each family (``paretomtl.solvers``, ``paretomtl.weighting``, ``paretomtl.front``,
``paretomtl.problems``) owns one :class:`Registry`; its entries register themselves
with a decorator where they are defined, and the family exposes ``available()``,
``info()`` and ``get()`` as bound methods of that registry. Names are looked up
case-insensitively, with ``_`` read as ``-``. A name that belongs to another family
is refused with a message naming the family that has it.
"""

from __future__ import annotations

import importlib
import pkgutil
import types
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

_FAMILIES: dict[str, Registry] = {}


@dataclass(frozen=True)
class Entry:
    """What a registry knows about one registered thing.

    Attributes:
        name: the registry name (``"pareto-step"``).
        obj: the registered function or class.
        kind: the family's kind of the entry (e.g. ``"gradient"``, ``"loss"``,
            ``"per-ray"``); the family documents its kinds.
        paper: the paper it implements (authors, title, venue, year).
        summary: one line of what it does.
    """

    name: str
    obj: Any
    kind: str
    paper: str
    summary: str


def normalize(name: object) -> object:
    """``name`` lower-cased with ``_`` read as ``-`` (anything else unchanged)."""
    return name.lower().replace("_", "-") if isinstance(name, str) else name


class Registry:
    """Named entries of one family, each with a kind, a paper and a summary.

    Args:
        family: the module path users import the family from (``"paretomtl.solvers"``);
            it names the family in error messages.
        kinds: the kinds an entry of this family may have.
        what: what an entry is called in messages (``"method"``, ``"problem"``).

    Example:
        >>> from paretomtl._registry import Registry
        >>> shapes = Registry("example.shapes", kinds=("round",), what="shape")
        >>> @shapes.register("unit-circle", kind="round", paper="Euclid", summary="r = 1")
        ... def unit_circle():
        ...     return 1.0
        >>> shapes.available(), shapes.get("Unit_Circle") is unit_circle
        (('unit-circle',), True)
    """

    def __init__(self, family: str, *, kinds: tuple[str, ...], what: str = "method") -> None:
        if family in _FAMILIES:
            raise ValueError(f"a registry for {family!r} already exists")
        self.family = family
        self.kinds = tuple(kinds)
        self.what = what
        self._entries: dict[str, Entry] = {}
        _FAMILIES[family] = self

    def register(self, name: str, *, kind: str, paper: str, summary: str) -> Callable:
        """Decorator adding a function or class under ``name`` (lower case, ``-``)."""
        if kind not in self.kinds:
            raise ValueError(f"kind must be one of {self.kinds}; got {kind!r}")
        if not isinstance(name, str) or not name or normalize(name) != name:
            raise ValueError(f"name must be a non-empty lower-case string with '-'; got {name!r}")

        def decorator(obj: Any) -> Any:
            if name in self._entries:
                raise ValueError(f"{self.what} {name!r} is already registered in {self.family}")
            self._entries[name] = Entry(name, obj, kind, paper, summary)
            return obj

        return decorator

    def info(self, name: str) -> Entry:
        """The :class:`Entry` registered under ``name``, or a ValueError listing the names.

        Example:
            >>> from paretomtl import solvers, weighting
            >>> solvers.info("MGDA").kind, weighting.info("gradnorm").kind
            ('gradient', 'gradient-norm')
        """
        key = normalize(name)
        if key in self._entries:
            return self._entries[key]
        owners = [f for f, r in _FAMILIES.items() if r is not self and key in r._entries]
        where = f"; {name!r} is in {owners[0]}" if owners else ""
        raise ValueError(
            f"unknown {self.what} {name!r} in {self.family}{where}; "
            f"available: {', '.join(self.available())}"
        )

    def get(self, name: str) -> Any:
        """The function or class registered under ``name``.

        Example:
            >>> from paretomtl import solvers
            >>> solvers.get("pareto_step") is solvers.pareto_step
            True
        """
        return self.info(name).obj

    def available(self, kind: str | None = None) -> tuple[str, ...]:
        """Sorted names of the entries (only those of ``kind`` if given).

        Example:
            >>> from paretomtl import solvers
            >>> solvers.available("stateful-gradient")[:3]
            ('cr-mogm', 'db-mtl', 'excess-mtl')
        """
        if kind is not None and kind not in self.kinds:
            owners = [f for f, r in _FAMILIES.items() if kind in r.kinds]
            where = f" ({kind!r} methods are in {owners[0]})" if owners else ""
            raise ValueError(f"kind must be one of {self.kinds} or None; got {kind!r}{where}")
        return tuple(sorted(n for n, e in self._entries.items() if kind in (None, e.kind)))

    def __contains__(self, name: object) -> bool:
        return normalize(name) in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, {len(self._entries)} {self.what}s)"


def discover(registry: Registry, namespace: MutableMapping[str, Any]) -> None:
    """Import every public module of a family's package and expose what they registered.

    Called at the end of the family's ``__init__`` with its ``globals()``: each module
    not starting with ``_`` is imported (its ``@register`` decorators run), and every
    registered function or class becomes an attribute of the package and enters its
    ``__all__``. So a new method is one new file. A module named like its function
    (``mean.py`` defining ``mean``) yields the attribute to the function.
    """
    for module in pkgutil.iter_modules(namespace["__path__"]):
        if not module.name.startswith("_"):
            importlib.import_module(f"{namespace['__name__']}.{module.name}")
    public = namespace["__all__"]
    for name in registry.available():
        obj = registry.get(name)
        current = namespace.get(obj.__name__, types.ModuleType(""))
        if isinstance(current, types.ModuleType):
            namespace[obj.__name__] = obj
        if obj.__name__ not in public:
            public.append(obj.__name__)
