"""How the kernels are compiled: on first use, cached on disk where a cache can be
written, and out of the way of calls on small input.

Every kernel is compiled by numba for the types of its first call; importing
paretomtl compiles nothing. Compiling the exact MGDA solver and what it calls takes
several seconds of CPU (numba's typing and lowering, then LLVM's optimiser, in about
equal parts), so two things keep it away from the caller.

**The disk cache.** :func:`jit` is ``numba.njit`` with numba's on-disk cache, kept
where numba finds a writable directory, in numba's own order: ``NUMBA_CACHE_DIR``
if set; else ``__pycache__`` next to the kernel's source file; else the user's
cache directory (``$XDG_CACHE_HOME/numba``, by default ``~/.cache/numba``, a
subfolder per source folder). A package installed where the user cannot write
(system or read-only site-packages) therefore caches in the user's directory. Where
none of these can be written (numba itself would then raise at import), a kernel is
compiled once per process. A cached kernel is used only while every kernel module's
source is what it was when the kernel was compiled (numba itself checks only the
kernel's own file, while a compiled kernel carries the code of those it calls).

**Entry points run as Python first.** An entry point (:func:`entry`: a kernel that
Python code calls) called on small input (every array at most
:data:`INTERPRET_MAX` numbers: K <= 32 for a K x K matrix) runs the kernel's own
Python code, ``py_func``, with the kernels it calls run as Python too: well under
10 ms a call, against seconds to compile. Meanwhile one background thread loads the
compiled kernel from the disk cache if it is there (a fraction of a second), or else,
once the entry point has spent :data:`COMPILE_AFTER` seconds in Python, compiles it;
calls go to the compiled kernel as soon as it is there. Until then they run as
Python, unless that took more than :data:`SLOW` seconds a call (CAGrad's search at
K = 32): once the compilation is under way, those wait for it. A short script or a
demo thus never waits for numba nor spends CPU on a compilation it would not use,
and a long run gets compiled code after its first second of solver time. Larger
input, and any call after the entry point is compiled, goes straight to numba (which
compiles, or loads from the cache, on that call, as every first call used to).

The Python code gives the compiled code's results bit for bit, so that no result
depends on the state of the cache: an entry point and every kernel it calls are
compiled without fast-math flags (no reassociation, no fused multiply-add), so that
numba evaluates the same IEEE double operations in the same order as Python does;
results come back as numba returns them (``float``, ``int``, ``bool``, arrays,
tuples). An entry point that reaches a fast-math kernel never runs as Python. Where
the arithmetic of the two differs (a division by zero: numba raises
``ZeroDivisionError``, numpy returns inf), the Python run raises instead (numpy's
floating-point errors, overflow and underflow excepted, are errors there): any
exception stops it, its writes to the arguments are undone, and the call compiles
and runs the kernel. ``tests/kernels/test_first_calls.py`` compares the two routes
on every entry point.

:func:`compile_now` compiles, in the calling thread, every entry point for the types
it has been called with (a benchmark that times compiled code calls it after a
first call). A ``fork`` waits for a compilation in progress (the child would
inherit numba's compiler lock held by a thread it does not have). At exit a
compilation in progress is dropped; numba writes each cache file whole (a temporary
file renamed into place), so nothing partial is left.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
import types
import weakref

import numpy as np
from numba import njit
from numba.core import types as numba_types
from numba.core.caching import FunctionCache
from numba.core.compiler_lock import global_compiler_lock
from numba.core.dispatcher import Dispatcher
from numba.extending import typeof_impl

# The most numbers in one array argument of a call that runs as Python: a 32 x 32
# matrix (the exact MGDA solver then takes a few ms in Python).
INTERPRET_MAX = 1024
# Seconds an entry point spends in Python before it is compiled in the background,
# and the mean seconds a call beyond which calls then wait for the compilation.
COMPILE_AFTER = 1.0
SLOW = 0.02


def _sources_digest() -> str:
    """SHA-256 of every kernel module's source (this folder's ``*.py``; "" where the
    folder cannot be read, e.g. from a zip file, where numba checks the archive)."""
    folder = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    try:
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as f:
                    digest.update(name.encode() + b"\0" + f.read())
    except OSError:
        return ""
    return digest.hexdigest()


_SOURCES = _sources_digest()


class _KernelCache(FunctionCache):
    """numba's on-disk cache of one kernel, its entries keyed also on the source of
    every kernel module. numba checks only the kernel's own file, and a compiled
    kernel holds its own copy of the kernels it calls: after a change to a callee's
    file (an upgrade), a cached caller would keep the callee's old code."""

    def _index_key(self, sig, codegen):
        return (*super()._index_key(sig, codegen), _SOURCES)


def jit(func=None, *, fastmath=False, **options):
    """``numba.njit(fastmath=..., **options)`` with the on-disk cache where one can
    be written (see the module docstring); usable as ``@jit`` or ``@jit(...)``."""

    def build(f):
        dispatcher = njit(fastmath=fastmath, **options)(f)
        if isinstance(dispatcher, Dispatcher):  # not so under NUMBA_DISABLE_JIT=1
            try:
                dispatcher._cache = _KernelCache(f)  # what enable_caching() sets, keyed
            except RuntimeError:  # numba: "cannot cache function ...: no locator available"
                pass  # no writable cache directory: compiled once per process
        return dispatcher

    return build if func is None else build(func)


class Kernel:
    """An entry point: a kernel that Python calls (see the module docstring).

    Called from Python, it returns what its dispatcher returns. Compiled kernels call
    it as they call any numba function (numba types it as its dispatcher).
    ``dispatcher`` is the numba dispatcher; other attributes (``py_func``,
    ``signatures``, ...) are the dispatcher's.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        f = dispatcher.py_func
        self.__name__, self.__qualname__ = f.__name__, f.__qualname__
        self.__module__, self.__doc__ = f.__module__, f.__doc__
        self._ready = False  # compiled: every call goes to the dispatcher
        self._python: object = None  # the Python route (False: none), built when needed
        self._types: tuple | None = None  # numba's types of the first call run as Python
        self._spent = 0.0  # seconds run as Python
        self._runs = 0  # calls run as Python
        # The background jobs, each an event set when it has ended: loading from the
        # disk cache (queued at the first Python run; nothing when the cache has no
        # entry) and compiling (queued after COMPILE_AFTER seconds in Python).
        self._loading: threading.Event | None = None
        self._compiling: threading.Event | None = None
        _ENTRIES.add(self)

    def __call__(self, *args):
        if self._ready:
            return self.dispatcher(*args)
        return self._early_call(args)

    def __getattr__(self, name):
        if name == "dispatcher":  # not set yet (an object being copied)
            raise AttributeError(name)
        return getattr(self.dispatcher, name)

    def __repr__(self) -> str:
        return f"<paretomtl kernel {self.__module__}.{self.__qualname__}>"

    def __reduce__(self):
        return self.__qualname__  # pickled and copied by reference: a module global

    def _early_call(self, args: tuple):
        dispatcher = self.dispatcher
        if dispatcher.overloads:  # compiled: in the background, or by a caller
            self._ready = True
            return dispatcher(*args)
        python = self._python_route() if _small(args) else None
        if python is not None and self._compiling is not None and self._spent > SLOW * self._runs:
            python = None  # slow as Python (over SLOW a call): wait for the compilation
        if python is not None and self._types is None:
            try:
                self._types = tuple(dispatcher.typeof_pyval(a) for a in args)
            except Exception:  # numba does not take these arguments: let it say so
                python = None
            else:
                self._loading = _later(dispatcher, self._types, cached_only=True)
        if python is None:
            return dispatcher(*args)  # numba compiles, or loads from the cache, here
        start = time.perf_counter()
        result = _run_python(python, args)
        if result is _HANDED_OVER:
            return dispatcher(*args)
        self._spent += time.perf_counter() - start
        self._runs += 1
        loaded = self._loading is not None and self._loading.is_set()
        if self._spent >= COMPILE_AFTER and self._compiling is None and loaded:
            self._compiling = _later(dispatcher, self._types, cached_only=False)
        return result

    def _python_route(self):
        if self._python is None:
            try:
                self._python = _as_python(self.dispatcher, {})
            except _FastMath:
                self._python = False
        return self._python or None


def entry(func):
    """Decorator for a kernel that Python calls: :func:`jit` without fast-math, in a
    :class:`Kernel`."""
    dispatcher = jit(func)
    return Kernel(dispatcher) if isinstance(dispatcher, Dispatcher) else dispatcher


@typeof_impl.register(Kernel)
def _typeof_kernel(value, context):
    return numba_types.Dispatcher(value.dispatcher)


def compile_now() -> None:
    """Compile every entry point that ran as Python, for the types it was called
    with, in this thread (waiting for the background thread where it is at work)."""
    for kernel in list(_ENTRIES):
        if kernel._types is not None and not kernel.dispatcher.overloads:
            kernel.dispatcher.compile(kernel._types)
        kernel._ready = kernel._ready or bool(kernel.dispatcher.overloads)


_ENTRIES: weakref.WeakSet = weakref.WeakSet()
_HANDED_OVER = object()  # the Python run stopped: the compiled kernel answers


def _small(args: tuple) -> bool:
    return all(a.size <= INTERPRET_MAX for a in args if isinstance(a, np.ndarray))


def _run_python(function, args: tuple):
    """The Python route's result as numba returns it, or ``_HANDED_OVER`` (with the
    arguments restored) where it stopped."""
    saved = [(a, a.copy()) for a in args if isinstance(a, np.ndarray) and a.flags.writeable]
    try:
        with np.errstate(divide="raise", invalid="raise", over="ignore", under="ignore"):
            return _as_returned(function(*args))
    except Exception:  # a floating-point error, or what the compiled kernel raises too
        for array, copy in saved:
            np.copyto(array, copy)
        return _HANDED_OVER


def _as_returned(value):
    """``value`` as numba returns it: Python scalars for numpy ones, tuples mapped."""
    if isinstance(value, tuple):
        return tuple(_as_returned(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


class _FastMath(Exception):
    """A kernel on the Python route is compiled with fast-math: no bit-for-bit match."""


def _names(code: types.CodeType):
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


_GLOBALS: dict[int, dict] = {}  # id(a kernel module's globals) -> the Python route's copy


def _as_python(dispatcher: Dispatcher, memo: dict):
    """The kernel's ``py_func``, in a copy of its module's globals where every kernel
    it names is replaced by its own Python version (recursively)."""
    if dispatcher in memo:
        return memo[dispatcher]
    if dispatcher.targetoptions.get("fastmath"):
        raise _FastMath(dispatcher.__qualname__)
    f = dispatcher.py_func
    namespace = _GLOBALS.get(id(f.__globals__))
    if namespace is None:
        namespace = _GLOBALS[id(f.__globals__)] = dict(f.__globals__)
    function = types.FunctionType(f.__code__, namespace, f.__name__, f.__defaults__, f.__closure__)
    memo[dispatcher] = function
    for name in set(_names(f.__code__)):
        value = f.__globals__.get(name)
        if isinstance(value, Kernel):
            value = value.dispatcher
        if isinstance(value, Dispatcher):
            namespace[name] = _as_python(value, memo)
    return function


# -- the background thread ------------------------------------------------------------

_jobs: queue.SimpleQueue = queue.SimpleQueue()
_worker: threading.Thread | None = None
_worker_lock = threading.Lock()


def _later(dispatcher: Dispatcher, key: tuple, cached_only: bool) -> threading.Event:
    """Queue ``dispatcher.compile(key)`` (only where the disk cache has it: a load,
    with ``cached_only``); the event is set when the job has ended."""
    global _worker
    done = threading.Event()
    _jobs.put((dispatcher, key, cached_only, done))
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, name="paretomtl-compile", daemon=True)
            _worker.start()
    return done


def _work() -> None:
    while True:
        dispatcher, key, cached_only, done = _jobs.get()
        try:
            if not cached_only or _in_cache(dispatcher, key):
                dispatcher.compile(key)  # loads from the disk cache where it can
        except BaseException:  # a later call compiles again, in the caller, and raises
            pass
        finally:
            done.set()


def _in_cache(dispatcher: Dispatcher, key: tuple) -> bool:
    """Whether the disk cache holds the kernel compiled for ``key`` (the lookup numba
    makes before it compiles; False where that cannot be told)."""
    cache = dispatcher._cache
    if not isinstance(cache, _KernelCache):
        return False
    try:
        with global_compiler_lock:  # the target context may be set up on first use
            entry_key = cache._index_key(key, dispatcher.targetctx.codegen())
        return entry_key in cache._cache_file._load_index()
    except Exception:  # numba's internals moved: compile after the time budget instead
        return False


def _before_fork() -> None:
    global_compiler_lock.acquire()  # waits for a compilation in progress


def _after_fork_in_parent() -> None:
    global_compiler_lock.release()


def _after_fork_in_child() -> None:
    global _worker, _jobs, _worker_lock
    global_compiler_lock.release()
    _worker = None  # the parent's thread does not exist here
    _jobs = queue.SimpleQueue()
    _worker_lock = threading.Lock()
    for kernel in list(_ENTRIES):  # jobs queued in the parent: queued again here
        if kernel._loading is not None and not kernel._loading.is_set():
            kernel._loading = None
            kernel._types = None
        if kernel._compiling is not None and not kernel._compiling.is_set():
            kernel._compiling = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )

__all__ = ["COMPILE_AFTER", "INTERPRET_MAX", "SLOW", "Kernel", "compile_now", "entry", "jit"]
