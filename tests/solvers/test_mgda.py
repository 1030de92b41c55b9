"""MGDA (the min-norm point of the gradients' hull) against independent references.

References: brute-force active-set enumeration (K <= 6), a KKT certificate computed
here, cvxpy, and closed forms worked by hand. See tests/oracles.py.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from paretomtl.solvers import mgda, mgda_weights
from tests import oracles
from tests.oracles import assert_feasible, gram64
from tests.strategies import grads_matrices

# ----------------------------------------------------------------------------------
# Properties on hypothesis-generated gradients
# ----------------------------------------------------------------------------------


@given(grads_matrices(max_tasks=16, max_dim=12))
def test_feasible_certified_and_self_consistent(J):
    res = mgda(J)
    G = gram64(J)
    scale = oracles.scale_of(G)
    w = res.weights
    assert w.shape == (J.shape[0],) and w.dtype == np.float64
    assert_feasible(w)
    # Our own certificate, and the solver's report of its own.
    assert oracles.kkt_residual(G, None, w) <= 1e-8
    assert res.kkt_residual <= 1e-8
    assert res.converged
    # direction = weights @ grads (summed here in a different order, by einsum).
    expected = np.einsum("k,km->m", w, J)
    bound = np.abs(w) @ np.abs(J)
    np.testing.assert_array_less(np.abs(res.direction - expected), 1e-14 * bound + 1e-300)
    # objective = w^T G w, with G formed here.
    assert abs(res.objective - w @ G @ w) <= 1e-13 * scale
    # ... which is the squared norm of the direction.
    assert abs(res.objective - res.direction @ res.direction) <= 1e-12 * scale
    np.testing.assert_allclose(res.gram, G, rtol=0, atol=1e-14 * scale)
    assert res.method == "mgda/exact"


@given(grads_matrices(max_tasks=6, max_dim=8))
def test_objective_matches_brute_force(J):
    G = gram64(J)
    scale = oracles.scale_of(G)
    ref = oracles.brute_force(G)
    res = mgda(J)
    assert abs(res.objective - ref.objective) <= 1e-10 * scale
    if oracles.pd_margin(G) > 1e-4:
        # Unique optimum, well separated: the weights themselves agree.
        np.testing.assert_allclose(res.weights, ref.weights, rtol=0, atol=1e-9)


@given(grads_matrices(min_tasks=2, max_tasks=32, max_dim=40))
def test_never_worse_than_cvxpy(J):
    G = gram64(J)
    scale = oracles.scale_of(G)
    ref = oracles.cvxpy_reference(G)
    res = mgda(J)
    if ref.usable_as_bound:
        assert res.objective <= ref.objective + 1e-8 * scale
        if ref.kkt_residual <= 1e-9:
            # cvxpy's point is certified too: f - f* <= 4 r max G_ii for a point with
            # KKT residual r, so the two objectives agree.
            assert res.objective >= ref.objective - 1e-8 * scale
    # Either way our answer carries its own certificate.
    assert oracles.kkt_residual(G, None, res.weights) <= 1e-8


@given(grads_matrices(min_tasks=2, max_tasks=10, max_dim=8), st.randoms(use_true_random=False))
def test_permutation_equivariance(J, rnd):
    K = J.shape[0]
    perm = np.array(rnd.sample(range(K), K))
    a = mgda(J)
    b = mgda(J[perm])
    G = gram64(J)
    scale = oracles.scale_of(G)
    # G w (= J d) and d are unique even when the weights are not. Rounding moves them
    # by ~1e-16 and ~1e-13 (worst seen in 3000 examples): far inside these tolerances.
    np.testing.assert_allclose(
        (G @ a.weights)[perm], G[perm][:, perm] @ b.weights, rtol=0, atol=1e-11 * scale
    )
    np.testing.assert_allclose(a.direction, b.direction, rtol=0, atol=1e-9 * np.sqrt(scale))
    if oracles.pd_margin(G) > 1e-6:
        np.testing.assert_allclose(a.weights[perm], b.weights, rtol=0, atol=1e-8)


@given(grads_matrices(max_tasks=10, max_dim=8), st.floats(-12, 12))
def test_common_scale_invariance(J, u):
    t = 10.0**u
    a = mgda(J)
    b = mgda(J * t)
    G = gram64(J)
    scale = oracles.scale_of(G)
    np.testing.assert_allclose(
        G @ a.weights, (gram64(J * t) @ b.weights) / t**2, rtol=0, atol=1e-11 * scale
    )
    np.testing.assert_allclose(a.direction, b.direction / t, rtol=0, atol=1e-9 * np.sqrt(scale))
    if oracles.pd_margin(G) > 1e-6:
        np.testing.assert_allclose(a.weights, b.weights, rtol=0, atol=1e-8)


# ----------------------------------------------------------------------------------
# Closed forms
# ----------------------------------------------------------------------------------


@given(grads_matrices(min_tasks=2, max_tasks=2, max_dim=8))
def test_two_tasks_closed_form(J):
    # f(a) = || a g1 + (1 - a) g2 ||^2 = a^2 G11 + 2 a (1 - a) G12 + (1 - a)^2 G22;
    # f'(a) = 2 a (G11 - 2 G12 + G22) - 2 (G22 - G12) = 0 at a* = (G22 - G12) / den,
    # den = G11 + G22 - 2 G12 = ||g1 - g2||^2; f is convex, so on [0, 1] the
    # minimiser is a* clipped. Formed from the rows (g2 - g1).g2 / ||g1 - g2||^2 so that
    # the cancellation in den does not happen here.
    g1, g2 = J[0], J[1]
    diff = g1 - g2
    den = float(diff @ diff)
    G = gram64(J)
    scale = oracles.scale_of(G)
    assume(den > 1e-6 * scale)  # otherwise a* is ill-determined (any a is near-optimal)
    a = min(1.0, max(0.0, float((g2 - g1) @ g2) / den))
    res = mgda(J)
    # a* moves by (rounding of the numerator ~ 1e-16 scale) / den.
    np.testing.assert_allclose(res.weights, [a, 1.0 - a], rtol=0, atol=1e-13 * scale / den)


@given(
    st.integers(1, 16),
    st.integers(0, 8),
    st.integers(0, 2**32 - 1),
    st.floats(-3, 3),
)
def test_orthogonal_gradients_weights_inverse_square_norms(K, extra_dims, seed, log_spread):
    # G = diag(a_i^2): minimise sum a_i^2 w_i^2 on the simplex; the stationarity
    # condition a_i^2 w_i = mu with sum w = 1 gives w_i = (1/a_i^2) / sum_j (1/a_j^2),
    # all positive, so no bound is active.
    rng = np.random.default_rng(seed)
    a = 10.0 ** (log_spread * rng.uniform(-1, 1, size=K))
    Q, _ = np.linalg.qr(rng.standard_normal((K + extra_dims, K)))
    J = a[:, None] * Q.T
    inv = 1.0 / a**2
    expected = inv / inv.sum()
    res = mgda(J)
    np.testing.assert_allclose(res.weights, expected, rtol=1e-9, atol=1e-15)


def test_orthogonal_hand_worked():
    # Norms (1, 2): w proportional to (1, 1/4) = (0.8, 0.2); d = (0.8, 0.4).
    res = mgda(np.array([[1.0, 0.0], [0.0, 2.0]]))
    np.testing.assert_allclose(res.weights, [0.8, 0.2], rtol=1e-15)
    np.testing.assert_allclose(res.direction, [0.8, 0.4], rtol=1e-15)
    assert res.objective == pytest.approx(0.8, rel=1e-15)  # 0.64 + 0.16
    # Norms (1, 1, 2): (1, 1, 1/4) / 2.25.
    res = mgda(np.diag([1.0, 1.0, 2.0]))
    np.testing.assert_allclose(res.weights, np.array([1.0, 1.0, 0.25]) / 2.25, rtol=1e-14)


@given(st.integers(1, 10), st.integers(1, 8), st.integers(0, 2**32 - 1), st.floats(-20, 20))
def test_identical_gradients_give_that_gradient(K, M, seed, log_norm):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal(M) * 10.0**log_norm
    res = mgda(np.tile(g, (K, 1)))
    assert_feasible(res.weights)
    np.testing.assert_allclose(res.direction, g, rtol=1e-14, atol=0)
    assert res.objective == pytest.approx(g @ g, rel=1e-13)


@given(grads_matrices(min_tasks=2, max_tasks=8, max_dim=8), st.data())
def test_a_zero_row_gives_zero_objective_and_direction(J, data):
    K = J.shape[0]
    zero = data.draw(st.lists(st.integers(0, K - 1), min_size=1, max_size=K, unique=True))
    J = J.copy()
    J[zero] = 0.0
    zero = np.flatnonzero(~J.any(axis=1))  # the family may have zeroed rows already
    res = mgda(J)
    assert_feasible(res.weights)
    assert res.objective == 0.0
    assert np.all(res.direction == 0.0)
    # Documented choice among the optima: uniform over the zero rows.
    expected = np.zeros(K)
    expected[zero] = 1.0 / len(zero)
    np.testing.assert_allclose(res.weights, expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("K", [1, 2, 3, 7])
def test_all_zero_gradients_give_uniform_weights(K):
    res = mgda(np.zeros((K, 5)))
    np.testing.assert_allclose(res.weights, np.full(K, 1.0 / K), rtol=1e-15)
    assert np.all(res.direction == 0.0) and res.objective == 0.0
    np.testing.assert_allclose(mgda(gram=np.zeros((K, K))).weights, np.full(K, 1.0 / K))


@given(st.integers(1, 10), st.integers(0, 2**32 - 1), st.floats(-30, 30))
def test_single_task_has_weight_one(M, seed, log_norm):
    g = np.random.default_rng(seed).standard_normal(M) * 10.0**log_norm
    res = mgda(g[None, :])
    assert res.weights.tolist() == [1.0]
    np.testing.assert_array_equal(res.direction, g)
    assert res.objective == pytest.approx(g @ g, rel=1e-14)


def test_single_zero_task():
    res = mgda(np.zeros((1, 3)))
    assert res.weights.tolist() == [1.0] and res.objective == 0.0


# ----------------------------------------------------------------------------------
# Valid but awkward input
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "tol_vs_original", "tol_vs_same_data"),
    [(np.float64, 1e-12, 1e-12), (np.float32, 1e-4, 1e-4), (np.float16, 3e-2, 1e-10)],
)
@given(st.integers(2, 6), st.integers(0, 40), st.integers(0, 2**32 - 1))
def test_low_precision_dtypes(dtype, tol_vs_original, tol_vs_same_data, K, extra, seed):
    J = np.random.default_rng(seed).standard_normal((K, K + 10 + extra))
    G = gram64(J)
    assume(oracles.pd_margin(G) > 0.05)  # well-conditioned: weights are Lipschitz in G
    Jd = J.astype(dtype)
    res = mgda(Jd)
    assert np.all(np.isfinite(res.weights)) and np.all(np.isfinite(res.direction))
    assert_feasible(res.weights)
    # float16 and float32 directions come back in float32, float64 in float64.
    assert res.direction.dtype == (np.float64 if dtype == np.float64 else np.float32)
    # The direction is w @ grads accumulated in float32 (float16 input) or natively.
    exact_dir = res.weights @ Jd.astype(np.float64)
    bound = res.weights @ np.abs(Jd.astype(np.float64))
    np.testing.assert_array_less(np.abs(res.direction - exact_dir), 1e-6 * bound + 1e-30)
    reference = mgda(J).weights  # same routine, float64 input: a dtype-consistency check
    np.testing.assert_allclose(res.weights, reference, rtol=0, atol=tol_vs_original)
    # Against the rounded data in float64 only the accumulation differs: float16 is
    # accumulated in float64 (exact products), float32 natively (~1e-7 of G).
    same = mgda(Jd.astype(np.float64)).weights
    np.testing.assert_allclose(res.weights, same, rtol=0, atol=tol_vs_same_data)
    # And the float64-data answer is the brute-force optimum.
    ref = oracles.brute_force(G)
    np.testing.assert_allclose(reference, ref.weights, rtol=0, atol=1e-10)


@given(st.integers(2, 12), st.integers(1, 10), st.integers(0, 2**32 - 1))
def test_norms_from_1e_minus_30_to_1e30(K, M, seed):
    rng = np.random.default_rng(seed)
    norms = 10.0 ** rng.uniform(-30, 30, size=K)
    norms[0], norms[-1] = 1e-30, 1e30
    rng.shuffle(norms)
    V = rng.standard_normal((K, M))
    J = norms[:, None] * V / np.linalg.norm(V, axis=1, keepdims=True)
    res = mgda(J)
    assert np.all(np.isfinite(res.weights)) and np.all(np.isfinite(res.direction))
    assert_feasible(res.weights)
    G = gram64(J)
    assert oracles.kkt_residual(G, None, res.weights) <= 1e-8
    assert res.kkt_residual <= 1e-8
    if K <= 6:
        ref = oracles.brute_force(G)
        assert abs(res.objective - ref.objective) <= 1e-10 * oracles.scale_of(G)
    # Every vertex is in the hull, so the min-norm value is at most the smallest
    # squared norm, 1e-60 (the KKT test above is relative to max G_ii = 1e60).
    assert res.objective <= 1e-60 * (1 + 1e-9)
    assert res.direction @ res.direction <= 1e-60 * (1 + 1e-9)


@given(st.integers(3, 6), st.data(), st.integers(0, 2**32 - 1))
def test_rank_deficient_matches_brute_force(K, data, seed):
    M = data.draw(st.integers(1, K - 1))
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((K, M)) * 10.0 ** rng.uniform(-2, 2, size=(K, 1))
    G = gram64(J)
    res = mgda(J)
    ref = oracles.brute_force(G)
    scale = oracles.scale_of(G)
    assert abs(res.objective - ref.objective) <= 1e-10 * scale
    assert oracles.kkt_residual(G, None, res.weights) <= 1e-8


@given(st.integers(3, 6), st.integers(1, 8), st.integers(0, 2**32 - 1), st.booleans())
def test_near_duplicate_rows_match_brute_force(K, M, seed, conflicting):
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((K, M))
    if conflicting:
        J[2:] = -0.8 * J[:1] + 0.3 * rng.standard_normal((K - 2, M))
    J[1] = J[0] * (1 + 1e-9 * rng.standard_normal(M))
    G = gram64(J)
    res = mgda(J)
    ref = oracles.brute_force(G)
    assert abs(res.objective - ref.objective) <= 1e-10 * oracles.scale_of(G)
    assert oracles.kkt_residual(G, None, res.weights) <= 1e-8


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("delta", [1e-9, -1e-9, 3e-8, 1e-12])
def test_two_near_duplicate_rows_pick_the_shorter_one(delta, flip):
    # g1 = 1, g2 = 1 + delta (M = 1): the hull is the segment between them, whose
    # min-norm point is the shorter end: w = (1, 0) if delta > 0, with objective
    # min(1, (1 + delta)^2). G = [[1, 1 + delta], [1 + delta, (1 + delta)^2]]: here
    # G11 + G22 - 2 G12 = delta^2 rounds to 0 (or noise), but G11 and G22 still differ
    # by ~2 delta >> eps. (Regression: the K = 2 closed form used to return (0.5, 0.5),
    # 1e-9 above the optimum, before 2e28a77.)
    J = np.array([[1.0], [1.0 + delta]])
    expected_w = [1.0, 0.0] if delta > 0 else [0.0, 1.0]
    if flip:
        J, expected_w = J[::-1], expected_w[::-1]
    res = mgda(J)
    np.testing.assert_allclose(res.weights, expected_w, atol=1e-6)
    assert abs(res.objective - min(1.0, (1.0 + delta) ** 2)) <= 1e-15
    # Same in five dimensions: both rows along one random direction v.
    v = np.random.default_rng(0).standard_normal(5)
    res = mgda(J * v)
    assert abs(res.objective - min(1.0, (1.0 + delta) ** 2) * (v @ v)) <= 1e-14 * (v @ v)


# ----------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grads", "match"),
    [
        (np.ones(3), r"grads must be a 2-D"),
        (np.ones((2, 3, 4)), r"grads must be a 2-D"),
        (np.ones((0, 3)), r"grads has no tasks"),
        (np.ones((3, 0)), r"grads has no parameters"),
    ],
)
def test_bad_grads_shape(grads, match):
    with pytest.raises(ValueError, match=match):
        mgda(grads)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("row", [0, 2])
def test_non_finite_grads_name_the_row(bad, dtype, row):
    J = np.ones((3, 4), dtype=dtype)
    J[row, 3] = bad
    with pytest.raises(ValueError, match=rf"grads\[{row}\] \(task {row}\)"):
        mgda(J)


@pytest.mark.parametrize(
    ("gram", "match"),
    [
        (np.ones((2, 3)), r"gram must be a square"),
        (np.ones(4), r"gram must be a square"),
        (np.array([[1.0, 0.5], [0.2, 1.0]]), r"gram is not symmetric"),
        (np.array([[1.0, 2.0], [2.0, 1.0]]), r"gram is not positive semi-definite"),
        (np.array([[-1.0]]), r"gram is not positive semi-definite"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), r"gram contains NaN"),
        (np.array([[np.inf, 0.0], [0.0, 1.0]]), r"gram contains NaN or Inf"),
        (np.zeros((0, 0)), r"gram is empty"),
    ],
)
def test_bad_gram(gram, match):
    with pytest.raises(ValueError, match=match):
        mgda(gram=gram)


def test_gram_and_grads_disagree_on_k():
    J = np.eye(3)
    with pytest.raises(ValueError, match=r"gram is 2 x 2 but grads has 3 rows"):
        mgda(J, gram=np.eye(2))


def test_non_real_dtypes_raise_type_error():
    with pytest.raises(TypeError, match="grads"):
        mgda(np.ones((2, 2), dtype=complex))
    with pytest.raises(TypeError, match="gram"):
        mgda(gram=np.eye(2, dtype=complex))


def test_unknown_method_and_no_input():
    with pytest.raises(ValueError, match=r"method must be one of"):
        mgda(np.eye(2), method="pe-ltr")
    with pytest.raises(ValueError, match=r"pass grads"):
        mgda()


# ----------------------------------------------------------------------------------
# Frank-Wolfe and cvxpy routes
# ----------------------------------------------------------------------------------


@given(
    grads_matrices(max_tasks=12, max_dim=8),
    st.integers(1, 300),
    st.sampled_from([1e-3, 1e-6, 1e-9]),
)
def test_frank_wolfe_reports_honestly(J, max_iter, tol):
    G = gram64(J)
    scale = oracles.scale_of(G)
    res = mgda(J, method="frank-wolfe", max_iter=max_iter, tol=tol)
    exact = mgda(J)
    w = res.weights
    assert_feasible(w, atol=1e-12)
    assert res.iterations <= max_iter
    assert res.objective >= exact.objective - 1e-12 * scale
    assert abs(res.objective - w @ G @ w) <= 1e-13 * scale
    # Duality gap (relative to max G_ii), recomputed here: w^T G w - min_i (G w)_i.
    Gw = G @ w
    gap = (w @ Gw - Gw.min()) / scale
    if res.converged:
        assert gap <= tol + 1e-12
    else:
        assert res.iterations == max_iter
        assert gap >= tol - 1e-12
    # The gap bounds the suboptimality: by convexity f(w) - f* <= grad f(w).(w - w*)
    # <= 2 (w^T G w - min_i (G w)_i), the gradient being 2 G w.
    assert res.objective - exact.objective <= 2 * gap * scale + 1e-12 * scale


def test_frank_wolfe_stops_at_max_iter_on_a_hard_case():
    # 20 orthogonal gradients with norms 1..20: the optimum w_i ~ 1/i^2 is interior and
    # far from the uniform start; five Frank-Wolfe steps touch at most five vertices.
    K = 20
    J = np.diag(np.arange(1.0, K + 1))
    res = mgda(J, method="frank-wolfe", max_iter=5)
    assert res.converged is False
    assert res.iterations == 5
    exact = mgda(J)
    assert res.objective > exact.objective * (1 + 1e-3)
    # Given room, it converges to its gap, and the gap bounds the suboptimality.
    full = mgda(J, method="frank-wolfe", max_iter=100_000, tol=1e-4)
    assert full.converged and 5 < full.iterations <= 100_000
    assert full.objective - exact.objective <= 2e-4 * K**2  # 2 tol max G_ii, G_ii <= K^2


@given(st.integers(2, 12), st.integers(0, 30), st.integers(0, 2**32 - 1), st.floats(0, 1))
def test_cvxpy_method_agrees_with_exact(K, extra, seed, conflict):
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((K, K + 5 + extra))
    J[1:] -= conflict * J[0]  # conflict with task 0 puts some weights on their bound
    G = gram64(J)
    assume(oracles.pd_margin(G) > 1e-2)  # well-conditioned: a unique, stable optimum
    a = mgda(J, method="cvxpy")
    b = mgda(J)
    assert a.method == "mgda/cvxpy"
    assert_feasible(a.weights)
    np.testing.assert_allclose(a.weights, b.weights, rtol=0, atol=1e-6)
    assert a.objective >= b.objective - 1e-12 * oracles.scale_of(G)


def test_cvxpy_reference_is_usable_on_well_conditioned_input():
    # Guards the cvxpy property against passing vacuously: on a well-conditioned case
    # the reference is usable and within its bound slack of the brute-force optimum.
    J = np.random.default_rng(3).standard_normal((8, 8))
    J[1:] -= 0.6 * J[0]
    G = gram64(J)
    ref = oracles.cvxpy_reference(G)
    assert ref.usable_as_bound
    best = oracles.brute_force(G)
    assert best.support == (0, 1, 5, 6, 7)  # three weights on their bound
    assert best.objective - 1e-12 <= ref.objective <= best.objective + 1e-8 * oracles.scale_of(G)


# ----------------------------------------------------------------------------------
# Gram-only calls
# ----------------------------------------------------------------------------------


@given(grads_matrices(max_tasks=10, max_dim=8))
def test_gram_only_call(J):
    G = gram64(J)
    a = mgda(J)
    b = mgda(gram=G)
    assert b.direction is None
    scale = oracles.scale_of(G)
    np.testing.assert_allclose(G @ b.weights, G @ a.weights, rtol=0, atol=1e-12 * scale)
    if oracles.pd_margin(G) > 1e-6:
        np.testing.assert_allclose(b.weights, a.weights, rtol=0, atol=1e-10)
    np.testing.assert_allclose(mgda_weights(G), b.weights, rtol=0, atol=0)
    # Both: the direction comes from grads, the weights from gram.
    c = mgda(J, gram=G)
    np.testing.assert_allclose(c.direction, c.weights @ J, rtol=0, atol=1e-14 * np.abs(J).max())
