"""The one base of every method with memory: ``reset``, ``state_dict``, ``load_state_dict``.

A stateful method declares what it keeps, once, as two tables of fields:
``hyperparameters`` (its options, saved and restored with the state) and ``fields``
(what it learns). Each field names an attribute and the check its saved value must
pass. The base then writes the state dict and loads one back *atomically*: every field
is checked first, the method's ``check_state`` hook sees them all together, and only
then is anything assigned, so a malformed state raises an error naming its field and
leaves the object exactly as it was.

A state dict is *plain Python* (:func:`plain`): dicts, lists, tuples, str, bytes, int,
float, bool and None, nothing from numpy. So it survives ``torch.save`` /
``torch.load(..., weights_only=True)`` (torch's default), ``pickle`` without numpy and,
but for the bytes of large arrays, JSON. A numpy array becomes

- nested lists of Python floats when it is float64 with 1 to :data:`LIST_LIMIT`
  (4096) entries: readable, and exact (a Python float is a float64);
- otherwise (larger, another dtype, 0-d or empty) a tagged dict
  ``{"__ndarray__": dtype.str, "shape": [...], "data": raw bytes}`` (``"data":
  None`` for an array without entries). The K x M gradients that MoCo-like methods
  track reach millions of entries: 4 x 10**6 float64 entries take, through
  ``torch.save`` / ``torch.load(..., weights_only=True)``, 2.0 s / 6.6 s as lists
  (36 MB) and 1.0 s / 0.7 s as bytes (50 MB: torch pickles bytes with protocol 2,
  as latin-1 text, about 1.55 bytes per byte).

Numpy scalars become Python scalars. Loading takes this form and the numpy arrays
that earlier versions saved (old checkpoints load unchanged).

Attribute names may start with ``_``; the state key is the name without it
(``_targets`` is saved as ``"targets"``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from paretomtl._checks import (
    DOMAINS,
    as_real_array,
    check_choice,
    check_count,
    check_real,
    violations,
)

SHAPES = ("scalar", "K", "KxK", "KxM")
LIST_LIMIT = 4096
"""Float64 arrays of at most this many entries are saved as nested lists; larger ones
as raw bytes (:func:`plain`)."""
ARRAY_TAG = "__ndarray__"
"""The key that marks an array saved as raw bytes: ``{ARRAY_TAG: dtype.str, "shape":
[...], "data": bytes}``."""
_ENCODED_KEYS = frozenset({ARRAY_TAG, "shape", "data"})
_DTYPE_KINDS = "biufcSU"  # bool, integers, floats, complex, bytes and str: fixed size


_REQUIRED = object()  # a Field's default: the key must be in every saved state


@dataclass(frozen=True)
class Field:
    """How one saved value is checked and converted on load.

    Build fields with the helpers :func:`array`, :func:`count`, :func:`real`,
    :func:`choice`, :func:`generator`, :func:`nested`, :func:`value`; a field added
    after states were first saved takes :func:`added`.
    """

    check: Callable[[object, int, str], Any]
    kind: str = "value"
    default: Any = _REQUIRED


def added(field: Field, default: object) -> Field:
    """``field``, for a key that states saved before it existed lack: such a state
    loads with ``default`` (checked like a saved value). A state that has the key is
    checked as usual.

    Example:
        >>> from paretomtl.state import Stateful, added, count
        >>> class Counter(Stateful):
        ...     hyperparameters = {"period": added(count(), 1)}
        ...     fields = {"_step": count()}
        ...     def __init__(self, period=1):
        ...         self.num_tasks, self.period, self._step = 1, period, 0
        ...     def reset(self):
        ...         self._step = 0
        >>> old = {"method": "Counter", "num_tasks": 1, "hyperparameters": {}, "step": 3}
        >>> c = Counter(period=5)
        >>> c.load_state_dict(old)
        >>> c.period, c._step
        (1, 3)
    """
    return Field(field.check, field.kind, default)


def _brief(x: object, limit: int = 80) -> str:
    text = repr(x)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def array(
    shape: str = "K",
    need: str = "finite",
    *,
    optional: bool = False,
    low: float = -np.inf,
    high: float = np.inf,
) -> Field:
    """A float64 array of ``shape`` (``"K"``, ``"KxK"``, or ``"KxM"``: K rows of any
    common length M >= 1, for methods that track whole gradients) whose entries satisfy
    ``need`` and lie within ``[low, high]``; None too if ``optional``. Bools, strings
    and complex numbers are refused, not converted."""
    if shape not in SHAPES or need not in DOMAINS:
        raise ValueError(f"shape must be one of {SHAPES} and need one of {DOMAINS}")

    def check(x: object, K: int, where: str) -> np.ndarray | None:
        if x is None and optional:
            return None
        arr = as_real_array(x, where)
        if shape == "KxM":
            if arr.ndim != 2 or arr.shape[0] != K or arr.shape[1] < 1:
                raise ValueError(
                    f"{where} must have shape (K, M) = ({K}, M), M >= 1; got {arr.shape}"
                )
            want = arr.shape
        else:
            want = {"scalar": (), "K": (K,), "KxK": (K, K)}[shape]
        if arr.shape != want:
            raise ValueError(f"{where} must have shape {want}; got {arr.shape}")
        bad = violations(arr, need)
        if bad.any():
            raise ValueError(f"{where} has entries that are not finite and {need}: {arr[bad][:3]}")
        out = (arr < low) | (arr > high)
        if out.any():
            raise ValueError(f"{where} has entries outside [{low:g}, {high:g}]: {arr[out][:3]}")
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


def _category(x: object) -> str:
    if isinstance(x, bool | np.bool_):
        return "bool"
    if isinstance(x, int | np.integer):
        return "int"
    if isinstance(x, float | np.floating):
        return "float"
    return type(x).__name__


def same_plain(a: object, b: object) -> bool:
    """Whether two pieces of plain state are the same: equal keys, equal array contents
    and shapes, equal scalars of the same kind (a bool is not an int, a float not an int).

    Example:
        >>> import numpy as np
        >>> from paretomtl.state import same_plain
        >>> same_plain({"a": np.arange(2)}, {"a": [0, 1]}), same_plain({"n": 1}, {"n": True})
        (True, False)
    """
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        return (
            isinstance(a, Mapping)
            and isinstance(b, Mapping)
            and set(a) == set(b)
            and all(same_plain(a[k], b[k]) for k in a)
        )
    if isinstance(a, np.ndarray | list | tuple) or isinstance(b, np.ndarray | list | tuple):
        try:
            A, B = np.asarray(a), np.asarray(b)
        except (TypeError, ValueError):
            return False
        if A.dtype == object or B.dtype == object:
            pairs = zip(A.ravel(), B.ravel(), strict=False)
            return A.shape == B.shape and all(same_plain(x, y) for x, y in pairs)
        kinds = {"i": "int", "u": "int", "f": "float", "b": "bool"}
        same_kind = kinds.get(A.dtype.kind, A.dtype.kind) == kinds.get(B.dtype.kind, B.dtype.kind)
        return A.shape == B.shape and same_kind and np.array_equal(A, B)
    return _category(a) == _category(b) and bool(a == b)


def _generator_state(x: object, K: int, where: str) -> dict:
    x = from_plain(x, where)  # arrays saved as bytes (MT19937's key, Philox's counter)
    if not isinstance(x, Mapping) or not isinstance(x.get("bit_generator"), str):
        raise ValueError(
            f"{where} must be a numpy bit_generator.state dict (with the generator's "
            f"name under 'bit_generator'); got {_brief(x)}"
        )
    name = x["bit_generator"]
    kind = getattr(np.random, name, None)
    if (
        not isinstance(kind, type)
        or not issubclass(kind, np.random.BitGenerator)
        or kind is np.random.BitGenerator
    ):
        raise ValueError(f"{where} names an unknown bit generator {name!r}")
    scratch = kind(0)
    try:
        scratch.state = copy.deepcopy(dict(x))  # a trial on a scratch generator
    except Exception as exc:  # numpy raises TypeError, ValueError, KeyError, OverflowError...
        raise ValueError(f"{where} is not a valid {name} state: {exc!r}") from None
    canonical = scratch.state
    # numpy converts or ignores some things silently (floats, extra keys): refuse them.
    if not same_plain(canonical, dict(x)):
        raise ValueError(
            f"{where} is not a valid {name} state: numpy reads it as {_brief(canonical, 200)}"
        )
    # What numpy takes without a check, and would misuse: flags, buffer positions (read
    # out of bounds), an even PCG increment, MT19937's all-zero key (a fixed point).
    if canonical.get("has_uint32", 0) not in (0, 1):
        raise ValueError(f"{where}['has_uint32'] must be 0 or 1; got {x['has_uint32']!r}")
    inner = canonical.get("state")
    if name.startswith("PCG64") and inner["inc"] % 2 == 0:
        raise ValueError(f"{where}['state']['inc'] must be odd (a PCG increment); got an even one")
    if name == "MT19937" and not 0 <= inner["pos"] <= 624:
        raise ValueError(f"{where}['state']['pos'] must be in [0, 624]; got {inner['pos']!r}")
    if name == "MT19937" and not inner["key"].any():
        raise ValueError(f"{where}['state']['key'] is all zero, which MT19937 never leaves")
    if name == "Philox" and not 0 <= canonical["buffer_pos"] <= 4:
        raise ValueError(
            f"{where}['buffer_pos'] must be in [0, 4]; got {canonical['buffer_pos']!r}"
        )
    return canonical


def generator() -> Field:
    """A ``numpy.random.Generator``, saved as its ``bit_generator.state``. On load the
    object's own generator (possibly shared with the user) takes the saved state.

    Saved in plain form (:func:`plain`: MT19937's key, Philox's and SFC64's words as
    bytes). A saved state is tried on a scratch bit generator of its kind and must come back
    unchanged (numpy silently converts floats and drops unknown keys); out-of-range
    words, flags and buffer positions that numpy would take unchecked are refused."""
    return Field(_generator_state, kind="generator")


def nested() -> Field:
    """Another :class:`Stateful` object, saved as its own state dict and checked by
    loading it into a copy of the current one."""
    return Field(lambda x, K, where: x, kind="nested")


def _key(attr: str) -> str:
    return attr.lstrip("_")


def _export(x: Any) -> Any:
    if isinstance(x, np.random.Generator):
        return plain(x.bit_generator.state)
    if isinstance(x, Stateful):
        return x.state_dict()
    return plain(x)


def _encode(arr: np.ndarray, where: str) -> dict:
    if arr.dtype.kind not in _DTYPE_KINDS or arr.dtype.fields is not None:
        raise TypeError(
            f"{where} is an array of {arr.dtype}, which has no plain form (dtypes of kind "
            f"bool, integer, float, complex, bytes or str only)"
        )
    # An array without entries has no bytes: None, since torch's weights_only loader
    # refuses b"" (pickle protocol 2 writes it as a call of the global ``bytes``).
    data = arr.tobytes() if arr.size else None
    return {ARRAY_TAG: arr.dtype.str, "shape": list(arr.shape), "data": data}


def plain(x: Any, where: str = "state") -> Any:
    """``x`` as plain Python data (new containers; nothing shared with ``x``).

    Numpy arrays become nested lists of Python floats (float64, 1 to
    :data:`LIST_LIMIT` entries) or a tagged dict with their raw bytes
    (``{"__ndarray__": dtype.str, "shape": [...], "data": bytes}``: every other
    array), numpy scalars Python scalars; dicts, lists and tuples are rebuilt with
    their entries converted. :func:`from_plain` turns the tagged dicts back into
    arrays; :meth:`Stateful.load_state_dict` does so itself. Everything is exact: a
    Python float is a float64 and the bytes are the array's own.

    Example:
        >>> import numpy as np
        >>> from paretomtl.state import from_plain, plain
        >>> plain({"w": np.array([0.5, 2.0]), "n": np.int64(3), "key": np.arange(2, dtype=np.uint8)})
        {'w': [0.5, 2.0], 'n': 3, 'key': {'__ndarray__': '|u1', 'shape': [2], 'data': b'\\x00\\x01'}}
        >>> from_plain(plain(np.arange(2, dtype=np.uint8)))
        array([0, 1], dtype=uint8)
    """  # noqa: E501
    if isinstance(x, np.ndarray):
        if x.dtype == np.float64 and x.ndim >= 1 and 0 < x.size <= LIST_LIMIT:
            return x.tolist()
        return _encode(x, where)
    if isinstance(x, np.generic):
        item = x.item()
        return _encode(np.asarray(x), where) if isinstance(item, np.generic) else item
    if isinstance(x, Mapping):
        return {k: plain(v, f"{where}[{k!r}]") for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(plain(v, f"{where}[{i}]") for i, v in enumerate(x))
    if isinstance(x, bool | int | float | complex | str | bytes | type(None)):
        return x
    return copy.deepcopy(x)


def _decode(x: Mapping, where: str) -> np.ndarray:
    keys = set(x)
    if keys != _ENCODED_KEYS:
        raise ValueError(
            f"{where} is an encoded array ({ARRAY_TAG!r}) with keys {sorted(keys, key=repr)}; "
            f"it needs exactly {sorted(_ENCODED_KEYS)}"
        )
    text, shape, data = x[ARRAY_TAG], x["shape"], x["data"]
    try:
        dtype = np.dtype(text) if isinstance(text, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in _DTYPE_KINDS or dtype.fields is not None:
        raise ValueError(
            f"{where}[{ARRAY_TAG!r}] must name a numpy dtype of kind bool, integer, float, "
            f"complex, bytes or str (such as '<f8'); got {_brief(text)}"
        )
    if not isinstance(shape, list | tuple) or not all(_is_int(n) and n >= 0 for n in shape):
        raise ValueError(f"{where}['shape'] must be a list of integers >= 0; got {_brief(shape)}")
    if data is None:
        data = b""  # an array without entries
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"{where}['data'] must be bytes; got {type(data).__name__}")
    count = math.prod(int(n) for n in shape)
    size = memoryview(data).nbytes
    if size != count * dtype.itemsize:
        raise ValueError(
            f"{where}['data'] holds {size} bytes; shape {list(shape)} of {dtype.str} needs "
            f"{count * dtype.itemsize}"
        )
    try:
        return np.frombuffer(data, dtype=dtype, count=count).reshape(shape).copy()
    except ValueError as exc:  # e.g. more dimensions than numpy allows
        raise ValueError(f"{where} is not a valid array: {exc}") from None


def from_plain(x: Any, where: str = "state") -> Any:
    """``x`` with every array that :func:`plain` encoded as bytes decoded (a new,
    writable numpy array); other values as they are. Lists stay lists: the field
    checks convert them. Refused, with a ValueError naming the entry: a malformed
    encoded array (unknown dtype, a shape that does not match the bytes, missing or
    unknown keys) and a bool among the numbers of a list (``[0.5, True]`` would read
    as the array ``[0.5, 1.0]``).

    Example:
        >>> from paretomtl.state import from_plain
        >>> from_plain({"w": {"__ndarray__": "<i2", "shape": [1], "data": b"\\x05\\x00"}})
        {'w': array([5], dtype=int16)}
        >>> from_plain({"w": [0.5, True]})
        Traceback (most recent call last):
        ...
        ValueError: state['w'][1] is True, a bool among numbers: an array's entries must be numbers
    """
    if isinstance(x, Mapping):
        if ARRAY_TAG in x:
            return _decode(x, where)
        return {k: from_plain(v, f"{where}[{k!r}]") for k, v in x.items()}
    if isinstance(x, list | tuple):
        flags = [isinstance(v, bool | np.bool_) for v in x]
        if any(flags) and not all(flags):
            numbers = any(isinstance(v, int | float | np.number) for v in x)
            if numbers:
                i = flags.index(True)
                raise ValueError(
                    f"{where}[{i}] is {x[i]!r}, a bool among numbers: an array's entries "
                    f"must be numbers"
                )
        return type(x)(from_plain(v, f"{where}[{i}]") for i, v in enumerate(x))
    return x


def _is_int(x: object) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


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
        """The state as plain Python data (new objects, see :func:`plain`): method
        name, K, hyper-parameters, memory. It loads with ``torch.load(...,
        weights_only=True)`` after ``torch.save``."""
        state: dict[str, Any] = {
            "method": type(self).__name__,
            "num_tasks": self.num_tasks,
            "hyperparameters": {_key(a): _export(getattr(self, a)) for a in self.hyperparameters},
        }
        state.update({_key(a): _export(getattr(self, a)) for a in self.fields})
        return state

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a :meth:`state_dict`, hyper-parameters included; a resumed run
        continues bit for bit. The plain form and the numpy arrays that earlier
        versions saved are both taken. Every field is checked before anything changes: a
        malformed state (a bad value, a value of the wrong type, a missing or unknown
        key, fields that contradict each other) raises ValueError naming the field,
        TypeError if ``state`` is not a mapping at all, and the object is left as it
        was."""
        K = self.num_tasks
        name = type(self).__name__
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict from {name}.state_dict(); got {type(state)}")
        state = from_plain(state)  # arrays saved as bytes; lists are left to the checks
        method = state.get("method")
        if not isinstance(method, str) or method != name:
            raise ValueError(f"state is for {_brief(method)}, not {name!r} (state['method'])")
        tasks = state.get("num_tasks")
        if not _is_int(tasks) or tasks != K:
            raise ValueError(
                f"state is for {_brief(tasks)} tasks; this {name} has {K} (state['num_tasks'])"
            )
        state = {**_defaults(self.fields, state), **state}
        self._check_keys(state, {"method", "num_tasks", "hyperparameters"} | _keys(self.fields))
        hyper = state["hyperparameters"]
        if not isinstance(hyper, Mapping):
            raise ValueError(f"state['hyperparameters'] must be a dict; got {_brief(hyper)}")
        hyper = {**_defaults(self.hyperparameters, hyper), **hyper}
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
                    continue
                try:
                    values[attr] = spec.check(source[key], K, f"{where}[{key!r}]")
                except TypeError as exc:  # a value of the wrong type: still a corrupt state
                    raise ValueError(str(exc)) from None
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
        unknown = sorted(set(state) - expected, key=repr)
        if missing or unknown:
            parts = [f"missing {missing}"] * bool(missing) + [f"unknown {unknown}"] * bool(unknown)
            raise ValueError(
                f"{where} does not match this method's state: {'; '.join(parts)} "
                f"(expected keys {sorted(expected)})"
            )


def _keys(table: dict[str, Field]) -> set[str]:
    return {_key(a) for a in table}


def _defaults(table: dict[str, Field], saved: Mapping) -> dict[str, Any]:
    """The defaults of the fields (see :func:`added`) that ``saved`` lacks."""
    return {
        _key(a): copy.deepcopy(f.default)
        for a, f in table.items()
        if f.default is not _REQUIRED and _key(a) not in saved
    }
