"""Issue 12, class 2: ``grads`` and ``gram`` given together must describe the same tasks.

A solver given both takes the weights from ``gram`` and the direction from ``grads``;
if ``gram`` is not ``grads @ grads.T`` the answer is wrong while its certificate (KKT
residual, computed on ``gram``) looks perfect. The check compares J (J^T v) with G v
for four fixed probe vectors (divided by the task norms, so that every task's
direction counts whatever its length) and refuses a mismatch beyond 1e-3 of the
task's norm, naming both arguments. Generated here:

- legitimate pairs, which must pass: float16/32/64 gradients, from every family of
  tests/strategies.py (rank-deficient, zero rows, colinear, badly scaled rows),
  scaled by 2**-100..2**100 (1e-30..1e30), with the Gram matrix from ``solvers.gram``
  (native or float64 accumulation), from float32 BLAS directly, or rounded to float32;
- inconsistent pairs, which must be refused: another matrix's Gram matrix, a scaled
  one, the tasks permuted, one task's gradient replaced, a stale Gram matrix (of the
  gradients a step earlier) -- each differing from the true one by at least 0.5 in
  some cosine G_ij / (|g_i| |g_j|) or ratio of norms.
"""

import numpy as np
import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from paretomtl import solvers
from tests.strategies import grads_matrices

SOLVERS = {
    "mgda": lambda J, G: solvers.mgda(J, gram=G),
    "pareto-step": lambda J, G: solvers.pareto_step(J, gram=G, lower_bounds=0.1 / len(G)),
    "pcgrad": lambda J, G: solvers.pcgrad(J, gram=G, seed=0),
    "mean": lambda J, G: solvers.mean(J, gram=G),
    "gradient-normalization": lambda J, G: solvers.gradient_normalization(J, gram=G),
    "gradvac": lambda J, G: solvers.GradVac(len(G), seed=0)(J, gram=G),
    "momentum-pcgrad": lambda J, G: solvers.MomentumPCGrad(len(G), seed=0)(J, gram=G),
}


@st.composite
def legitimate_pairs(draw):
    """(J, G, how): gradients and a Gram matrix computed from them in some legitimate way."""
    J = draw(grads_matrices(max_tasks=8, max_dim=12))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.float16]))
    k = draw(st.integers(-100, 100) if dtype != np.float16 else st.integers(-6, 6))
    with np.errstate(over="ignore", under="ignore"):
        J = np.ldexp(J, k).astype(dtype)
    assume(np.isfinite(J).all())  # float16 overflows beyond 65504
    how = draw(st.sampled_from(["native", "float64", "float32 BLAS", "rounded to float32"]))
    if how in ("native", "float64"):
        G = solvers.gram(J, accumulate=how)
    elif how == "float32 BLAS":
        J32 = J.astype(np.float32)
        with np.errstate(over="ignore", under="ignore"):
            G = J32 @ J32.T
        # Legitimate only where float32 products stayed in range: each nonzero row's
        # squared norm at least 2**-100 (below, its products fall to float32's
        # subnormal grid and the matrix is no longer that row's Gram matrix).
        d = np.diagonal(G)
        rows = np.any(J != 0, axis=1)
        assume(np.isfinite(G).all() and np.all(d[rows] >= 2.0**-100))
    else:
        G = solvers.gram(J)
        assume(np.all(np.abs(G[G != 0]) >= 2.0**-126) and np.abs(G).max() < 2.0**127)
        G = G.astype(np.float32)
    event(f"{np.dtype(dtype).name} grads, gram {how}")
    return J, G


@pytest.mark.parametrize("name", sorted(SOLVERS))
@given(pair=legitimate_pairs())
def test_legitimate_pairs_are_accepted_and_the_gram_is_used(name, pair):
    J, G = pair
    res = SOLVERS[name](J, G)
    alone = SOLVERS[name](None, G)
    np.testing.assert_array_equal(res.weights, alone.weights)
    assert res.direction is not None and alone.direction is None


def _distance(G, H):
    """Largest difference of G and H in cosine units: |G_ij - H_ij| / (n_i n_j), with
    n_i the larger of the two norms (floored at 1e-3 of the largest)."""
    n = np.sqrt(np.maximum(np.clip(np.diagonal(G), 0, None), np.clip(np.diagonal(H), 0, None)))
    if n.max() == 0:  # both zero matrices
        return 0.0
    n = np.maximum(n, 1e-3 * n.max())
    return float(np.max(np.abs(G - H) / np.outer(n, n)))


@st.composite
def inconsistent_pairs(draw):
    """(J, G_wrong, kind): G_wrong at least 0.5 away from J's Gram matrix (cosine units)."""
    J = draw(grads_matrices(max_tasks=8, max_dim=12))
    K, M = J.shape
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    k = draw(st.integers(-100, 100))
    J = np.ldexp(J, k).astype(dtype)
    G = solvers.gram(J)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["other", "scaled", "permuted", "one task", "stale"]))
    if kind == "other":
        other = draw(grads_matrices(min_tasks=K, max_tasks=K, max_dim=12))
        wrong = solvers.gram(np.ldexp(other, k))
    elif kind == "scaled":
        wrong = G * draw(st.sampled_from([1e-3, 0.25, 0.5, 2.0, 4.0, 1e3]))
    elif kind == "permuted":
        perm = rng.permutation(K)
        wrong = G[perm][:, perm]
    elif kind == "one task":
        replaced = J.astype(np.float64)
        replaced[rng.integers(K)] = rng.standard_normal(M) * np.ldexp(1.0, k)
        wrong = solvers.gram(replaced)
    else:  # the previous step's gradients: this step's plus a change of the same size
        wrong = solvers.gram(J + np.ldexp(rng.standard_normal((K, M)), k).astype(dtype))
    assume(_distance(G, wrong) >= 0.5)
    event(kind)
    return J, wrong


@pytest.mark.parametrize("name", sorted(SOLVERS))
@given(pair=inconsistent_pairs())
def test_inconsistent_pairs_are_refused_naming_both(name, pair):
    J, wrong = pair
    with pytest.raises(ValueError, match=r"gram does not match grads") as info:
        SOLVERS[name](J, wrong)
    assert "grads @ grads.T" in str(info.value)


def test_the_issue_example_is_refused():
    rng = np.random.default_rng(0)
    J = rng.standard_normal((3, 10))
    G_other = (lambda X: X @ X.T)(rng.standard_normal((3, 10)))
    with pytest.raises(ValueError, match=r"gram does not match grads"):
        solvers.mgda(J, gram=G_other)


@given(pair=legitimate_pairs(), seed=st.integers(0, 2**32 - 1))
def test_the_check_is_deterministic_and_leaves_the_users_generators_alone(pair, seed):
    J, G = pair
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the legacy global state is the point)
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    rng = np.random.default_rng(seed)
    state = rng.bit_generator.state
    first = solvers.mgda(J, gram=G)
    second = solvers.mgda(J, gram=G)
    np.testing.assert_array_equal(first.weights, second.weights)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    assert rng.bit_generator.state == state


def test_a_non_finite_gradient_is_named_even_with_a_gram():
    J = np.ones((3, 4))
    J[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"grads\[1\] \(task 1\)"):
        solvers.mgda(J, gram=np.ones((3, 3)) * 4.0)
