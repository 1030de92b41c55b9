"""Every registered gradient method on the inputs where solvers fail: finite answers, always.

The families are the ones peers' solvers fail on (measured in benchmarks/solvers.py):
conflicting tasks, rank deficiency (K > M), row norms over twelve decades, near-duplicate
and exactly duplicated rows, opposite rows, zero rows and the zero matrix, for K from 2
to 128. Each method (stateless, and stateful over three steps) must return finite
weights (or, for a method whose direction is no weighted sum, a finite direction), a
boolean ``converged`` and a non-negative iteration count; a Gram-space method must give
the same weights from the Gram matrix alone.
"""

import inspect

import numpy as np
import pytest

from paretomtl import solvers

FAMILIES = (
    "gaussian",
    "conflicting",
    "rank-deficient",
    "scaled",
    "near-duplicate",
    "duplicate",
    "opposite",
    "zero-rows",
    "zero",
)
SIZES = (2, 5, 17, 128)
# Options that depend on K where a default is invalid for small K.
OPTIONS_FOR = {"trimmed-mean": lambda K: {"trim_number": 1 if K > 2 else 0}}
# Methods defined from some K on only (each refuses smaller K with a ValueError).
MIN_TASKS = {"krum": 3}


def hard_jacobian(family: str, K: int, seed: int = 0) -> np.ndarray:
    """A K x M float64 Jacobian of one hard family (deterministic in its arguments)."""
    rng = np.random.default_rng([seed, K, FAMILIES.index(family)])
    M = max(1, K // 2) if family == "rank-deficient" else 2 * K + 3
    J = rng.standard_normal((K, M))
    if family == "conflicting":
        J[1:] = -0.8 * J[:1] + 0.3 * J[1:]
    elif family == "rank-deficient":
        J *= 10.0 ** rng.uniform(-2.0, 2.0, (K, 1))
    elif family == "scaled":
        J *= 10.0 ** rng.uniform(-6.0, 6.0, (K, 1))
    elif family == "near-duplicate":
        J[1::2] = J[0::2][: K // 2] * (1.0 + 1e-9 * rng.standard_normal((K // 2, M)))
    elif family == "duplicate":
        J[1:] = J[0]
    elif family == "opposite":
        J[1::2] = -J[0::2][: K // 2]
    elif family == "zero-rows":
        J[::3] = 0.0
    elif family == "zero":
        J[:] = 0.0
    return J


def takes(obj, name: str) -> bool:
    """Whether a method (its function, or its class's ``update``) has parameter ``name``."""
    target = obj.update if inspect.isclass(obj) else obj
    return name in inspect.signature(target).parameters


def _run(name: str, J: np.ndarray, *, gram_only: bool = False, steps: int = 3):
    """The method's results on J (``steps`` calls for a stateful one)."""
    entry = solvers.info(name)
    K = J.shape[0]
    losses = np.linspace(1.0, 2.0, K)
    options = {"seed": 0} if takes(entry.obj, "seed") or "seed" in _init_params(entry) else {}
    options.update(OPTIONS_FOR.get(name, lambda K: {})(K))
    if entry.kind == "stateful-gradient":
        method = solvers.method(name, num_tasks=K, **options)
        extra = {"losses": losses} if takes(entry.obj, "losses") else {}
    else:
        method = solvers.method(name, **options)
        extra = {"losses": losses}  # a Solver passes them only to methods that read them
        steps = 1
    G = J @ J.T
    return [
        method(gram=G, **extra) if gram_only else method(J, gram=G, **extra) for _ in range(steps)
    ]


def _init_params(entry) -> set:
    if not inspect.isclass(entry.obj):
        return set()
    return set(inspect.signature(entry.obj).parameters)


@pytest.mark.parametrize("K", SIZES)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", solvers.available())
def test_every_method_answers_finitely_on_hard_inputs(name, family, K):
    if K < MIN_TASKS.get(name, 1):
        pytest.skip(f"{name} is defined for K >= {MIN_TASKS[name]}")
    J = hard_jacobian(family, K)
    needs_grads = getattr(solvers.info(name).obj, "needs_grads", False)
    for res in _run(name, J):
        assert isinstance(res.converged, bool)
        assert isinstance(res.iterations, int) and res.iterations >= 0
        assert res.direction is not None and res.direction.shape == (J.shape[1],)
        assert np.isfinite(res.direction).all(), res
        if res.weights is None:
            assert needs_grads, f"{name} returned no weights but does not declare needs_grads"
            continue
        assert res.weights.shape == (K,)
        assert np.isfinite(res.weights).all(), res
        if not needs_grads:
            np.testing.assert_allclose(
                res.direction,
                res.weights @ J,
                rtol=1e-9,
                atol=1e-12 * float(np.abs(J).max(initial=0.0)) * K,
            )
    if needs_grads:
        with pytest.raises(ValueError, match="grads"):
            _run(name, J, gram_only=True, steps=1)
        return
    # The Gram matrix alone gives the same weights (the methods work in Gram space).
    for with_grads, alone in zip(_run(name, J), _run(name, J, gram_only=True), strict=True):
        assert alone.direction is None
        np.testing.assert_array_equal(alone.weights, with_grads.weights)
