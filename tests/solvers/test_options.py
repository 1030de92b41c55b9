"""Issue 12, class 3: every option of every stateless solver is checked at the entry.

A bad option must raise a ValueError or TypeError that names it and what would be
valid -- never run: ``mgda(tol=nan)`` used to stop at the first vertex and report it
converged. Generated here, per option: values of the wrong type (strings, bools where
numbers are expected, complex numbers, None where a value is needed, arrays of the wrong
dtype), out of range (negative, NaN, infinite, tol >= 1, max_iter < 1 or > 2**62,
seeds < 0), options a route would ignore (tol or max_iter with cvxpy or pe-ltr), and
valid values, which must be accepted and, for tol, honoured: a result marked converged
meets it.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers
from tests.oracles import gram64
from tests.strategies import grads_matrices

J3 = np.array([[1.0, 0.0], [-0.5, 1.0], [0.2, -0.7]])

not_a_number = st.one_of(
    st.text(max_size=5),
    st.booleans(),
    st.complex_numbers(allow_nan=False).filter(lambda z: z.imag != 0),
    st.lists(st.floats(0, 1), min_size=1, max_size=3),
    st.just(object()),
)
bad_tol = st.one_of(
    st.just(math.nan),
    st.floats(max_value=-1e-300, allow_nan=False),
    st.floats(min_value=1.0, allow_nan=False),  # includes inf
    st.just(np.float32("nan")),
    not_a_number,
)
bad_max_iter = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=2**62 + 1, max_value=2**80),
    st.floats(allow_nan=True),  # 1.5, and 5.0 too: an iteration count is an int
    st.booleans(),
    st.text(max_size=5),
    st.just(np.float64(3.0)),
)


def raises_naming(name):
    """pytest.raises for a ValueError or TypeError whose message starts with ``name``."""
    return pytest.raises((ValueError, TypeError), match=rf"^{name}\b|\b{name}[ =]")


@pytest.mark.parametrize("method", ["exact", "frank-wolfe"])
@given(tol=bad_tol)
def test_mgda_refuses_bad_tol(method, tol):
    with raises_naming("tol"):
        solvers.mgda(J3, method=method, tol=tol)


@pytest.mark.parametrize("method", ["exact", "frank-wolfe"])
@given(max_iter=bad_max_iter)
def test_mgda_refuses_bad_max_iter(method, max_iter):
    with raises_naming("max_iter"):
        solvers.mgda(J3, method=method, max_iter=max_iter)


@given(
    method=st.one_of(
        st.text(max_size=12).filter(lambda m: m not in ("exact", "frank-wolfe", "cvxpy")),
        st.sampled_from(["pe-ltr", "Exact", "exact ", "frank_wolfe", None, 0, 1.0, True]),
    )
)
def test_mgda_refuses_unknown_methods(method):
    with pytest.raises(ValueError, match=r"method must be one of \('exact', 'frank-wolfe'"):
        solvers.mgda(J3, method=method)


@given(
    tol=st.one_of(st.none(), st.floats(0, 1, exclude_max=True)),
    max_iter=st.one_of(st.none(), st.integers(1, 10**6)),
)
def test_cvxpy_route_refuses_options_it_would_ignore(tol, max_iter):
    if tol is None and max_iter is None:
        return
    with pytest.raises(ValueError, match=r"(tol|max_iter) is used by method='exact'"):
        solvers.mgda(J3, method="cvxpy", tol=tol, max_iter=max_iter)


@pytest.mark.parametrize("route", ["exact", "pe-ltr", "cvxpy"])
@given(tol=bad_tol, max_iter=bad_max_iter, which=st.sampled_from(["tol", "max_iter"]))
def test_pareto_step_refuses_bad_tol_and_max_iter(route, tol, max_iter, which):
    option = {"tol": tol} if which == "tol" else {"max_iter": max_iter}
    with raises_naming(which):
        solvers.pareto_step(J3, lower_bounds=0.1, method=route, **option)


@given(tol=st.floats(0, 1, exclude_max=True), max_iter=st.integers(1, 10**6))
def test_pe_ltr_refuses_valid_tol_it_would_ignore(tol, max_iter):
    with pytest.raises(ValueError, match=r"is used by method='exact' only"):
        solvers.pareto_step(J3, method="pe-ltr", tol=tol)
    with pytest.raises(ValueError, match=r"is used by method='exact' only"):
        solvers.pareto_step(J3, method="pe-ltr", max_iter=max_iter)


@given(
    method=st.one_of(
        st.text(max_size=12).filter(lambda m: m not in ("exact", "pe-ltr", "cvxpy")),
        st.sampled_from(["frank-wolfe", "PE-LTR", None, 2]),
    )
)
def test_pareto_step_refuses_unknown_methods(method):
    with pytest.raises(ValueError, match=r"method must be one of \('exact', 'pe-ltr'"):
        solvers.pareto_step(J3, method=method)


bad_bounds = st.one_of(
    st.floats(max_value=-1e-300, allow_nan=False),  # negative (scalar: for each task)
    st.floats(min_value=0.34, allow_nan=False),  # 3 * c > 1, or inf
    st.just(math.nan),
    st.lists(st.floats(0, 0.3), min_size=1, max_size=5).filter(lambda c: len(c) != 3),
    st.text(min_size=1, max_size=4),
    st.booleans(),
    st.none(),
    st.lists(st.booleans(), min_size=3, max_size=3),
    st.complex_numbers(allow_nan=False).filter(lambda z: z.imag != 0),
    st.just([0.1, None, 0.1]),
    st.just([[0.1, 0.1, 0.1]]),
    st.just([0.1, [0.1], 0.1]),
)


@given(c=bad_bounds, as_gram=st.booleans())
def test_pareto_step_refuses_bad_lower_bounds(c, as_gram):
    args = {"gram": gram64(J3)} if as_gram else {"grads": J3}
    with raises_naming("lower_bounds"):
        solvers.pareto_step(**args, lower_bounds=c)


@given(
    reduction=st.one_of(
        st.text(max_size=6).filter(lambda r: r not in ("sum", "mean")),
        st.sampled_from(["Sum", "MEAN", "average", None, 0, True]),
    )
)
def test_pcgrad_refuses_unknown_reductions(reduction):
    with pytest.raises(ValueError, match=r"reduction must be one of \('sum', 'mean'\)"):
        solvers.pcgrad(J3, reduction=reduction, seed=0)


bad_seed = st.one_of(
    st.integers(max_value=-1),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=4),
    st.just(np.random.RandomState(0)),  # the legacy kind is refused
)


@given(seed=bad_seed, with_orders=st.booleans())
def test_pcgrad_refuses_bad_seeds(seed, with_orders):
    orders = np.tile(np.arange(3), (3, 1)) if with_orders else None
    with raises_naming("seed"):
        solvers.pcgrad(J3, seed=seed, orders=orders)


@st.composite
def bad_orders(draw):
    K = 3
    kind = draw(st.sampled_from(["float", "bool", "shape", "not a permutation", "object"]))
    perms = np.array([np.random.default_rng(i).permutation(K) for i in range(K)])
    if kind == "float":
        return perms.astype(draw(st.sampled_from([np.float64, np.float32])))
    if kind == "bool":
        return perms.astype(bool)
    if kind == "shape":
        shape = draw(st.sampled_from([(K,), (K - 1, K), (K, K + 1), (1, K, K)]))
        return np.zeros(shape, dtype=np.int64)
    if kind == "object":
        return draw(st.sampled_from(["012", [[0, 1, 2], [0, 1], [2, 1, 0]], {0: 1}]))
    row = draw(st.integers(0, K - 1))
    perms[row] = draw(
        st.lists(st.integers(-2, K + 1), min_size=K, max_size=K).filter(
            lambda r: sorted(r) != list(range(K))
        )
    )
    return perms


@given(orders=bad_orders())
def test_pcgrad_refuses_bad_orders(orders):
    with raises_naming("orders"):
        solvers.pcgrad(J3, orders=orders)


@given(
    J=grads_matrices(min_tasks=2, max_tasks=10, max_dim=8),
    tol=st.floats(0, 1, exclude_max=True),
    max_iter=st.integers(1, 400),
    route=st.sampled_from(["exact", "frank-wolfe"]),
)
def test_valid_options_accepted_and_converged_means_within_tol(J, tol, max_iter, route):
    res = solvers.mgda(J, method=route, tol=np.float64(tol), max_iter=np.int32(max_iter))
    G = gram64(J)
    scale = max(float(np.diagonal(G).max()), 1e-300)
    Gw = G @ res.weights
    gap = (res.weights @ Gw - Gw.min()) / scale  # duality gap, relative to max G_ii
    if res.converged:  # no vertex improves by more than tol (to rounding)
        assert gap <= tol + 1e-9
    if route == "frank-wolfe":
        assert res.iterations <= max_iter


@given(
    c=st.one_of(st.floats(0, 1 / 3), st.lists(st.floats(0, 0.3), min_size=3, max_size=3)),
    tol=st.one_of(st.none(), st.floats(0, 1, exclude_max=True)),
    max_iter=st.one_of(st.none(), st.integers(1, 10**6)),
)
def test_pareto_step_accepts_valid_options(c, tol, max_iter):
    res = solvers.pareto_step(J3, lower_bounds=c, tol=tol, max_iter=max_iter)
    assert np.all(res.weights >= np.asarray(c)) and np.isclose(res.weights.sum(), 1.0)


def test_options_without_values_keep_working():
    # gradient_normalization and mean have no options: unknown ones are refused by name.
    for name in ("gradient-normalization", "mean"):
        with pytest.raises(ValueError, match=r"unknown option 'tol'"):
            solvers.method(name, tol=1e-3)
    assert solvers.mgda(J3, tol=0, max_iter=1).weights.shape == (3,)
