"""The one base of every method with memory: ``reset``, ``state_dict``, ``load_state_dict``.

A stateful method declares what it keeps, once, as two tables of fields:
``hyperparameters`` (its options, saved and restored with the state) and ``fields``
(what it learns). Each field names an attribute and the check its saved value must
pass. The base then writes the state dict (plain data: numbers, strings, numpy
arrays, a random generator's state) and loads one back *atomically*: every field is
checked first, the method's ``check_state`` hook sees them all together, and only
then is anything assigned, so a malformed state raises an error naming its field and
leaves the object exactly as it was.

Attribute names may start with ``_``; the state key is the name without it
(``_targets`` is saved as ``"targets"``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from paretomtl._checks import DOMAINS, check_choice, check_count, check_real, violations

SHAPES = ("scalar", "K", "KxK")


@dataclass(frozen=True)
class Field:
    """How one saved value is checked and converted on load.

    Build fields with the helpers :func:`array`, :func:`count`, :func:`real`,
    :func:`choice`, :func:`generator`, :func:`nested`, :func:`value`.
    """

    check: Callable[[object, int, str], Any]
    kind: str = "value"


def _as_array(x: object, where: str) -> np.ndarray:
    try:
        return np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be an array of real numbers; got {x!r}") from None


def array(shape: str = "K", need: str = "finite", *, optional: bool = False) -> Field:
    """A float64 array of ``shape`` (``"K"``, ``"KxK"``) whose entries satisfy ``need``."""
    if shape not in SHAPES or need not in DOMAINS:
        raise ValueError(f"shape must be one of {SHAPES} and need one of {DOMAINS}")

    def check(x: object, K: int, where: str) -> np.ndarray | None:
        if x is None and optional:
            return None
        arr = _as_array(x, where)
        want = {"scalar": (), "K": (K,), "KxK": (K, K)}[shape]
        if arr.shape != want:
            raise ValueError(f"{where} must have shape {want}; got {arr.shape}")
        bad = violations(arr, need)
        if bad.any():
            raise ValueError(f"{where} has entries that are not finite and {need}: {arr[bad][:3]}")
        return arr

    return Field(check)


def count() -> Field:
    """An integer >= 0 (a step or period counter)."""
    return Field(lambda x, K, where: check_count(x, where))


def real(**bounds: Any) -> Field:
    """A float within bounds (``low``, ``high``, ``low_open``, ``high_open``)."""
    return Field(lambda x, K, where: check_real(x, where, **bounds))


def choice(*options: object) -> Field:
    """One of ``options``."""
    return Field(lambda x, K, where: check_choice(x, where, options))


def value(check: Callable[[object, int, str], Any]) -> Field:
    """Any value, checked by ``check(value, K, where)`` returning what to assign."""
    return Field(check)


def _generator_state(x: object, K: int, where: str) -> dict:
    if not isinstance(x, Mapping) or "bit_generator" not in x:
        raise ValueError(f"{where} must be a numpy bit_generator.state dict; got {x!r}")
    kind = getattr(np.random, str(x["bit_generator"]), None)
    if not isinstance(kind, type) or not issubclass(kind, np.random.BitGenerator):
        raise ValueError(f"{where} names an unknown bit generator {x['bit_generator']!r}")
    try:
        kind().state = copy.deepcopy(dict(x))  # a trial on a scratch generator
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{where} is not a valid {x['bit_generator']} state: {exc}") from None
    return copy.deepcopy(dict(x))


def generator() -> Field:
    """A ``numpy.random.Generator``, saved as its ``bit_generator.state``. On load the
    object's own generator (possibly shared with the user) takes the saved state."""
    return Field(_generator_state, kind="generator")


def nested() -> Field:
    """Another :class:`Stateful` object, saved as its own state dict and checked by
    loading it into a copy of the current one."""
    return Field(lambda x, K, where: x, kind="nested")


def _key(attr: str) -> str:
    return attr.lstrip("_")


def _export(x: Any) -> Any:
    if isinstance(x, np.random.Generator):
        return copy.deepcopy(x.bit_generator.state)
    if isinstance(x, Stateful):
        return x.state_dict()
    if isinstance(x, np.ndarray):
        return x.copy()
    return copy.deepcopy(x)


class Stateful:
    """Base of every method with memory between steps.

    Subclasses set ``num_tasks`` in their constructor, list their options in
    ``hyperparameters`` and their memory in ``fields`` (attribute name -> :class:`Field`),
    implement :meth:`reset`, and may override :meth:`check_state` for conditions that
    tie several fields together. They get :meth:`state_dict` and a validating,
    all-or-nothing :meth:`load_state_dict`.

    Example:
        >>> import numpy as np
        >>> from paretomtl.state import Stateful, array, count
        >>> class Counter(Stateful):
        ...     fields = {"_total": array("K"), "_step": count()}
        ...     def __init__(self, num_tasks):
        ...         self.num_tasks = num_tasks
        ...         self.reset()
        ...     def reset(self):
        ...         self._total, self._step = np.zeros(self.num_tasks), 0
        >>> c = Counter(2)
        >>> sorted(c.state_dict())
        ['hyperparameters', 'method', 'num_tasks', 'step', 'total']
        >>> c.load_state_dict({**c.state_dict(), "step": -1})
        Traceback (most recent call last):
        ...
        ValueError: state['step'] must be an integer >= 0; got -1
    """

    hyperparameters: ClassVar[dict[str, Field]] = {}
    fields: ClassVar[dict[str, Field]] = {}
    num_tasks: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A subclass adds to its parents' tables instead of repeating them.
        super().__init_subclass__(**kwargs)
        for table in ("hyperparameters", "fields"):
            merged: dict[str, Field] = {}
            for base in reversed(cls.__mro__[1:]):
                merged.update(base.__dict__.get(table, {}))
            merged.update(cls.__dict__.get(table, {}))
            setattr(cls, table, merged)

    def reset(self) -> None:
        """Back to the state right after construction."""
        raise NotImplementedError

    def check_state(self, values: dict[str, Any]) -> None:
        """Conditions across fields of a state about to be loaded (attribute -> value);
        raise ValueError to refuse it. The default accepts everything."""

    def state_dict(self) -> dict:
        """Plain-data state (copies): method name, K, hyper-parameters, memory."""
        state: dict[str, Any] = {
            "method": type(self).__name__,
            "num_tasks": self.num_tasks,
            "hyperparameters": {_key(a): _export(getattr(self, a)) for a in self.hyperparameters},
        }
        state.update({_key(a): _export(getattr(self, a)) for a in self.fields})
        return state

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a :meth:`state_dict`, hyper-parameters included; a resumed run
        continues bit for bit. Every field is checked before anything changes: a
        malformed state raises ValueError (TypeError if it is not a mapping) naming
        the field, and the object is left as it was."""
        K = self.num_tasks
        name = type(self).__name__
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict from {name}.state_dict(); got {type(state)}")
        if state.get("method") != name:
            raise ValueError(f"state is for {state.get('method')!r}, not {name!r}")
        if state.get("num_tasks") != K:
            raise ValueError(f"state is for {state.get('num_tasks')!r} tasks; this {name} has {K}")
        self._check_keys(state, {"method", "num_tasks", "hyperparameters"} | _keys(self.fields))
        hyper = state["hyperparameters"]
        if not isinstance(hyper, Mapping):
            raise ValueError(f"state['hyperparameters'] must be a dict; got {hyper!r}")
        self._check_keys(hyper, _keys(self.hyperparameters), "state['hyperparameters']")
        values: dict[str, Any] = {}
        for table, source, where in (
            (self.hyperparameters, hyper, "state['hyperparameters']"),
            (self.fields, state, "state"),
        ):
            for attr, spec in table.items():
                key = _key(attr)
                if spec.kind == "nested":
                    trial = copy.deepcopy(getattr(self, attr))
                    try:
                        trial.load_state_dict(source[key])
                    except (TypeError, ValueError) as exc:
                        raise ValueError(f"{where}[{key!r}]: {exc}") from None
                    values[attr] = trial
                else:
                    values[attr] = spec.check(source[key], K, f"{where}[{key!r}]")
        self.check_state(values)
        specs = {**self.hyperparameters, **self.fields}
        for attr, v in values.items():  # nothing below can fail
            spec = specs[attr]
            if spec.kind == "generator":
                current = getattr(self, attr)
                if type(current.bit_generator).__name__ == v["bit_generator"]:
                    current.bit_generator.state = v
                    continue
                bit_generator = getattr(np.random, v["bit_generator"])()
                bit_generator.state = v
                v = np.random.Generator(bit_generator)
            setattr(self, attr, v)

    @staticmethod
    def _check_keys(state: Mapping, expected: set[str], where: str = "state") -> None:
        missing = sorted(expected - set(state))
        unknown = sorted(set(state) - expected)
        if missing or unknown:
            parts = [f"missing {missing}"] * bool(missing) + [f"unknown {unknown}"] * bool(unknown)
            raise ValueError(
                f"{where} does not match this method's state: {'; '.join(parts)} "
                f"(expected keys {sorted(expected)})"
            )


def _keys(table: dict[str, Field]) -> set[str]:
    return {_key(a) for a in table}
