"""First calls of the kernels (paretomtl._kernels._jit): Python first, then compiled.

An entry point runs its Python code on small input until it is compiled, so both
routes must give the same results bit for bit (values, their types, the writes into
the arguments): otherwise a result would depend on the state of numba's cache. The
calls compared are the ones the solvers make on a corpus of hard inputs, recorded on
the way. The rest: importing and first calls compile nothing, a call the Python run
cannot match is answered by the compiled kernel, the background compilation takes
over after its time budget, a fork during it, and no writable cache directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import paretomtl._kernels as kernels_package
from paretomtl import solvers
from paretomtl._kernels import _jit
from paretomtl._kernels._jit import Kernel, entry
from paretomtl.solvers.modo import simplex_projection

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def all_entries() -> dict[str, Kernel]:
    import importlib
    import pkgutil

    found = {}
    for info in pkgutil.iter_modules(kernels_package.__path__):
        module = importlib.import_module(f"paretomtl._kernels.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, Kernel) and value.__module__ == module.__name__:
                found[f"{info.name}.{name}"] = value
    return found


def corpus():
    """Gradient matrices from the families that make the solvers work hard."""
    rng = np.random.default_rng(20261201)
    for K in (1, 2, 3, 4, 5, 7, 12, 13, 20, 33):
        for family in range(7):
            J = rng.standard_normal((K, [K + 3, 2 * K, max(1, K // 2), 40][family % 4]))
            if family == 1:
                J *= np.logspace(-6, 6, K)[:, None]
            elif family == 2 and K > 2:
                J[1], J[2] = J[0], -J[0]
            elif family == 3 and K > 2:
                J[-1] = 0.0
            elif family == 4:
                J += 4.0 * rng.standard_normal(J.shape[1])  # nearly aligned tasks
            elif family == 5:
                J *= 1e-160
            elif family == 6 and K > 1:
                J[1] = J[0] * (1 + 1e-9 * rng.standard_normal(J.shape[1]))
            yield J


def solver_calls(J):
    K = J.shape[0]
    yield lambda: solvers.mgda(J)
    yield lambda: solvers.mgda(gram=J @ J.T)
    yield lambda: solvers.mgda(J, method="frank-wolfe")
    yield lambda: solvers.mgda(J, normalization="l2")
    yield lambda: solvers.pareto_step(J, lower_bounds=0.5 / K)
    yield lambda: solvers.pcgrad(J, seed=3)
    yield lambda: solvers.cagrad(J)
    yield lambda: solvers.cagrad(J, c=2.0, rescale=0)
    yield lambda: solvers.imtl_g(J)
    yield lambda: solvers.config(J)
    yield lambda: simplex_projection(J[:, 0] * 3.0)
    yield lambda: solvers.upgrad(J)
    yield lambda: solvers.fairgrad(J, alpha=0.5)
    yield lambda: solvers.dualproj(gram=J @ J.T)
    stateful = (
        (solvers.MoDo, {}),
        (solvers.SDMGrad, {}),
        (solvers.CRMOGM, {}),
        (solvers.get("pcd"), {}),
        (solvers.get("nash-mtl"), {}),
        (solvers.get("moco"), {}),
        (solvers.get("moco"), {"lambda_update": "softmax"}),
    )
    for cls, kw in stateful:
        method = cls(K, **kw)
        for step in range(2):
            yield lambda method=method, step=step: method(J * (1.0 + 0.25 * step))
    momentum = solvers.MomentumPCGrad(K, seed=1)
    for step in range(2):
        yield lambda step=step: momentum(J * (1.0 + 0.25 * step))


@pytest.fixture(scope="module")
def recorded():
    """(entry, arguments) of every entry-point call the corpus makes (compiled route)."""
    calls = []
    original = Kernel.__call__

    def record(self, *args):
        calls.append((self, [a.copy() if isinstance(a, np.ndarray) else a for a in args]))
        return self.dispatcher(*args)

    Kernel.__call__ = record
    try:
        with warnings.catch_warnings():
            # Nash-MTL's own numpy arithmetic overflows (and says so) on the gradients
            # of norm 1e-160; its kernels' calls are what is recorded here.
            warnings.simplefilter("ignore", RuntimeWarning)
            for J in corpus():
                for call in solver_calls(J):
                    try:
                        call()
                    except ValueError:
                        pass  # a method's documented refusal (e.g. too short a gradient)
    finally:
        Kernel.__call__ = original
    return calls


def same(a, b) -> bool:
    """Bit for bit: arrays (dtype, shape, bytes), scalars (type and bytes), tuples."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            type(a) is type(b)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )
    if isinstance(a, float) and isinstance(b, float):
        return type(a) is type(b) and np.float64(a).tobytes() == np.float64(b).tobytes()
    return type(a) is type(b) and a == b


def test_every_entry_point_is_exercised(recorded):
    seen = {f"{k.__module__.rsplit('.', 1)[1]}.{k.__name__}" for k, _ in recorded}
    missing = set(all_entries()) - seen
    assert not missing, f"entry points the corpus never calls: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(all_entries()))
def test_python_route_matches_the_compiled_kernel(name, recorded):
    kernel = all_entries()[name]
    python = kernel._python_route()
    assert python is not None, f"{name} has no Python route (a fast-math kernel on its path?)"
    # The calls on input small enough for the Python route (the others never take it),
    # at most 80 of them spread over the corpus (CAGrad's search is slow as Python).
    calls = [args for k, args in recorded if k is kernel and _jit._small(args)]
    calls = calls[:: max(1, -(-len(calls) // 80))]
    handed_over = 0
    for args in calls:
        args_c = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        args_p = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        compiled = kernel.dispatcher(*args_c)
        result = _jit._run_python(python, args_p)
        if result is _jit._HANDED_OVER:
            handed_over += 1
            assert all(map(same, args, args_p)), "arguments not restored"
            continue
        assert same(compiled, result), f"{name}{[np.shape(a) for a in args]}"
        assert all(map(same, args_c, args_p)), f"{name}: writes differ"
    assert handed_over <= len(calls) // 10, f"{name}: {handed_over} of {len(calls)} handed over"


def run_child(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": REPO, **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


COUNT_COMPILED = """
    import importlib, pkgutil
    import paretomtl._kernels as package
    from numba.core.dispatcher import Dispatcher

    def compiled():
        n = 0
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"paretomtl._kernels.{info.name}")
            for value in vars(module).values():
                value = getattr(value, "dispatcher", value)
                if isinstance(value, Dispatcher):
                    n += len(value.overloads)
        return n
"""


def test_import_and_small_first_calls_compile_nothing(tmp_path):
    imports = """
        import numpy as np
        import paretomtl, paretomtl.front, paretomtl.solvers as S, paretomtl.weighting
    """
    calls = """
        assert compiled() == 0, "import compiled a kernel"
        J = np.random.default_rng(0).standard_normal((5, 30))
        out = [S.mgda(J).weights, S.pareto_step(gram=J @ J.T, lower_bounds=0.1).weights,
               S.pcgrad(J, seed=0).weights, S.cagrad(J).weights]
        assert compiled() == 0, "a first call on small input compiled a kernel"
        print(" ".join(float(x).hex() for w in out for x in w))
    """
    code = "".join(textwrap.dedent(part) for part in (imports, COUNT_COMPILED, calls))
    proc = run_child(code, NUMBA_CACHE_DIR=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    J = np.random.default_rng(0).standard_normal((5, 30))
    calls = [
        lambda: solvers.mgda(J).weights,
        lambda: solvers.pareto_step(gram=J @ J.T, lower_bounds=0.1).weights,
        lambda: solvers.pcgrad(J, seed=0).weights,
        lambda: solvers.cagrad(J).weights,
    ]
    for call in calls:
        call()
    _jit.compile_now()  # here: the compiled kernels
    assert all(k._ready for k in all_entries().values() if k._types is not None)
    assert proc.stdout.split() == [float(x).hex() for call in calls for x in call()]


def test_no_writable_cache_directory_compiles_per_process(tmp_path):
    proc = run_child(
        """
        import numpy as np
        from paretomtl import solvers
        from paretomtl._kernels.simplex_qp import solve_exact
        J = np.random.default_rng(0).standard_normal((40, 60))
        w = solvers.mgda(J).weights  # too large for the Python route: compiles
        assert abs(w.sum() - 1.0) < 1e-12 and solve_exact.signatures
        print("ok")
        """,
        NUMBA_CACHE_DIR=str(tmp_path),
        # Only numba's IPython locator, which takes no source file: as if no cache
        # directory could be written.
        NUMBA_CACHE_LOCATOR_CLASSES="IPythonCacheLocator",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ok"]
    assert not any(tmp_path.iterdir())


@entry
def _scaled_sum(x, scale, out):  # a quick compile for the tests below
    total = 0.0
    for i in range(x.shape[0]):
        out[i] += x[i]
        total += out[i] / scale
    return total


def test_division_by_zero_is_answered_by_the_compiled_kernel():
    x = np.ones(3)
    out = np.zeros(3)
    with pytest.raises(ZeroDivisionError):  # numba's error: the Python run stopped
        _scaled_sum(x, 0.0, out)
    # The Python run's write was undone; the compiled kernel's own stands.
    assert out.tolist() == [1.0, 0.0, 0.0]
    assert _scaled_sum(x, 2.0, out) == 2.0 and _scaled_sum.dispatcher.signatures


BUDGET = """
    import numpy as np
    from paretomtl._kernels import _jit
    from paretomtl._kernels.simplex_steps import project_simplex as kernel
    _jit.COMPILE_AFTER = 0.0  # compile once the kernel has run as Python at all
    y = np.array([0.3, -1.2, 2.0, 0.1])
    expected = kernel.py_func(y)
    out = []
    assert np.array_equal(kernel(y), expected)  # Python; looks into the cache
    assert kernel._loading.wait(300)
    out.append(bool(kernel.dispatcher.signatures))  # loaded from the cache?
    assert np.array_equal(kernel(y), expected)  # compiled, or Python and compiling now
    out.append(kernel._compiling is not None)
    if kernel._compiling is not None:
        assert kernel._compiling.wait(300)
    assert np.array_equal(kernel(y), expected) and kernel._ready
    print(" ".join(map(str, out)))
"""


def test_cold_then_warm_cache(tmp_path):
    """A cold cache: compiled in the background after the time budget; a warm one:
    loaded in the background at once, no compilation."""
    code = textwrap.dedent(BUDGET)
    cold = run_child(code, NUMBA_CACHE_DIR=str(tmp_path))
    assert cold.returncode == 0, cold.stderr
    assert cold.stdout.split() == ["False", "True"]
    warm = run_child(code, NUMBA_CACHE_DIR=str(tmp_path))
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout.split() == ["True", "False"]


def test_calls_slow_as_python_wait_for_the_compilation(tmp_path):
    proc = run_child(
        """
        import numpy as np
        from paretomtl._kernels import _jit
        from paretomtl._kernels.simplex_steps import project_simplex as kernel
        _jit.COMPILE_AFTER = 0.0
        _jit.SLOW = 0.0  # every Python run counts as slow
        y = np.array([0.3, -1.2, 2.0, 0.1])
        kernel(y)  # Python; looks into the (empty) cache
        assert kernel._loading.wait(300) and not kernel.dispatcher.signatures
        kernel(y)  # Python again; queues the compilation
        assert kernel._compiling is not None
        kernel(y)  # slow as Python: waits for the compilation
        assert kernel.dispatcher.signatures and kernel._runs == 2
        print("ok")
        """,
        NUMBA_CACHE_DIR=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ok"]


@entry
def _forked(x):
    s = 1.0
    for i in range(x.shape[0]):
        s = s * 0.5 + x[i]
    return s


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_compiling(monkeypatch):
    monkeypatch.setattr(_jit, "COMPILE_AFTER", 0.0)
    small = np.ones(4)
    expected = _forked.py_func(small)
    _forked(small)  # queues the compilation
    pid = os.fork()  # waits for it if it is under way
    if pid == 0:  # the child: compile (or use) the kernel, then leave at once
        try:
            ok = _forked(np.ones(2000)) == _forked.py_func(np.ones(2000))
            ok = ok and _forked(small) == expected
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 300
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            pytest.fail("the forked child hung")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _forked(small) == expected


def test_compiled_kernels_call_entry_points():
    """cagrad's compiled search calls solve_exact, an entry point, as a numba function."""
    from paretomtl._kernels.cagrad import cagrad_search

    G = np.array([[1.0, 0.2, -0.3], [0.2, 0.5, 0.1], [-0.3, 0.1, 0.8]])
    z, *_ = cagrad_search.dispatcher(G, 0.3, 1e-10, 60, 1e-3, 1e6)
    z_python, *_ = cagrad_search._python_route()(G, 0.3, 1e-10, 60, 1e-3, 1e6)
    assert np.array_equal(z, z_python)
