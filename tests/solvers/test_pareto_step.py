"""The Pareto step (MGDA with lower bounds w_i >= c_i) against independent references.

References: brute-force active-set enumeration (K <= 6), a KKT certificate computed
here, cvxpy, and closed forms worked by hand. See tests/oracles.py.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from paretomtl.solvers import mgda, pareto_step
from tests import oracles
from tests.oracles import assert_feasible, gram64
from tests.strategies import grads_matrices


@st.composite
def lower_bounds(draw, K):
    """Bounds c >= 0 with sum c < 1 (in floating point), from several families.

    The total is drawn first (anything in [0, 0.999], 1 - 10^-u for u in [1, 12], or
    exactly 1 - 1e-9), then split by a Dirichlet draw (spiky to even), optionally over
    a random subset of the tasks so that some bounds are exactly zero.
    """
    family = draw(st.sampled_from(["zero", "scalar", "any", "near_one", "one_minus_1e-9"]))
    if family == "zero":
        return np.zeros(K)
    if family == "scalar":
        return np.full(K, draw(st.floats(0.0, 0.999)) / K)
    if family == "near_one":
        total = 1.0 - 10.0 ** -draw(st.floats(1.0, 12.0))
    elif family == "one_minus_1e-9":
        total = 1.0 - 1e-9
    else:
        total = draw(st.floats(0.0, 0.999))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    support = np.ones(K, dtype=bool)
    if K > 1 and draw(st.booleans()):
        support = rng.random(K) < 0.5
        zero = rng.integers(K)
        support[zero] = False  # at least one exact zero ...
        support[(zero + 1 + rng.integers(K - 1)) % K] = True  # ... and one nonzero
    alpha = draw(st.sampled_from([0.1, 1.0, 10.0]))
    c = np.zeros(K)
    c[support] = total * rng.dirichlet(np.full(int(support.sum()), alpha))
    assert c.min() >= 0.0 and c.sum() < 1.0
    return c


@st.composite
def problems(draw, min_tasks=1, max_tasks=6, max_dim=8):
    J = draw(grads_matrices(min_tasks=min_tasks, max_tasks=max_tasks, max_dim=max_dim))
    return J, draw(lower_bounds(J.shape[0]))


# ----------------------------------------------------------------------------------
# Properties on hypothesis-generated gradients and bounds
# ----------------------------------------------------------------------------------


@given(problems(max_tasks=16, max_dim=12))
def test_feasible_certified_and_self_consistent(problem):
    J, c = problem
    res = pareto_step(J, lower_bounds=c)
    G = gram64(J)
    scale = oracles.scale_of(G)
    w = res.weights
    assert_feasible(w, c)
    assert oracles.kkt_residual(G, c, w) <= 1e-8
    assert res.kkt_residual <= 1e-8
    assert res.converged
    expected = np.einsum("k,km->m", w, J)
    bound = np.abs(w) @ np.abs(J)
    np.testing.assert_array_less(np.abs(res.direction - expected), 1e-14 * bound + 1e-300)
    assert abs(res.objective - w @ G @ w) <= 1e-13 * scale
    assert abs(res.objective - res.direction @ res.direction) <= 1e-12 * scale
    np.testing.assert_array_equal(res.extras["lower_bounds"], c)
    assert res.method == "pareto-step/exact"


@given(problems(max_tasks=6, max_dim=8))
def test_objective_matches_brute_force(problem):
    J, c = problem
    G = gram64(J)
    scale = oracles.scale_of(G)
    ref = oracles.brute_force(G, c)
    res = pareto_step(J, lower_bounds=c)
    assert abs(res.objective - ref.objective) <= 1e-10 * scale
    if oracles.pd_margin(G) > 1e-4:
        np.testing.assert_allclose(res.weights, ref.weights, rtol=0, atol=1e-9)


@given(problems(min_tasks=2, max_tasks=32, max_dim=40))
def test_never_worse_than_cvxpy(problem):
    J, c = problem
    G = gram64(J)
    scale = oracles.scale_of(G)
    ref = oracles.cvxpy_reference(G, c)
    res = pareto_step(J, lower_bounds=c)
    if ref.usable_as_bound:
        assert res.objective <= ref.objective + 1e-8 * scale
        if ref.kkt_residual <= 1e-9:  # both certified: the objectives agree
            assert res.objective >= ref.objective - 1e-8 * scale
    assert oracles.kkt_residual(G, c, res.weights) <= 1e-8


@given(problems(min_tasks=2, max_tasks=10), st.randoms(use_true_random=False))
def test_permutation_equivariance(problem, rnd):
    J, c = problem
    K = J.shape[0]
    perm = np.array(rnd.sample(range(K), K))
    a = pareto_step(J, lower_bounds=c)
    b = pareto_step(J[perm], lower_bounds=c[perm])
    G = gram64(J)
    scale = oracles.scale_of(G)
    np.testing.assert_allclose(
        (G @ a.weights)[perm], G[perm][:, perm] @ b.weights, rtol=0, atol=1e-11 * scale
    )
    np.testing.assert_allclose(a.direction, b.direction, rtol=0, atol=1e-9 * np.sqrt(scale))
    if oracles.pd_margin(G) > 1e-6:
        np.testing.assert_allclose(a.weights[perm], b.weights, rtol=0, atol=1e-8)


@given(problems(max_tasks=10), st.floats(-12, 12))
def test_common_scale_invariance(problem, u):
    J, c = problem
    t = 10.0**u
    a = pareto_step(J, lower_bounds=c)
    b = pareto_step(J * t, lower_bounds=c)
    G = gram64(J)
    scale = oracles.scale_of(G)
    np.testing.assert_allclose(
        G @ a.weights, (gram64(J * t) @ b.weights) / t**2, rtol=0, atol=1e-11 * scale
    )
    np.testing.assert_allclose(a.direction, b.direction / t, rtol=0, atol=1e-9 * np.sqrt(scale))
    if oracles.pd_margin(G) > 1e-6:
        np.testing.assert_allclose(a.weights, b.weights, rtol=0, atol=1e-8)


@given(grads_matrices(max_tasks=10, max_dim=8))
def test_zero_bounds_equal_mgda(J):
    G = gram64(J)
    scale = oracles.scale_of(G)
    m = mgda(J)
    for c in (0, 0.0, np.zeros(J.shape[0]), [0] * J.shape[0]):
        p = pareto_step(J, lower_bounds=c)
        np.testing.assert_allclose(G @ p.weights, G @ m.weights, rtol=0, atol=1e-12 * scale)
        np.testing.assert_allclose(p.direction, m.direction, rtol=0, atol=1e-12 * np.sqrt(scale))
        if oracles.pd_margin(G) > 1e-6:
            np.testing.assert_allclose(p.weights, m.weights, rtol=0, atol=1e-12)
    assert pareto_step(J).weights.tolist() == pareto_step(J, lower_bounds=0).weights.tolist()


@given(problems(max_tasks=8))
def test_scalar_bound_is_broadcast(problem):
    J, _ = problem
    K = J.shape[0]
    c0 = 0.7 / K
    a = pareto_step(J, lower_bounds=c0)
    b = pareto_step(J, lower_bounds=np.full(K, c0))
    np.testing.assert_array_equal(a.weights, b.weights)
    assert np.all(a.weights >= c0)


# ----------------------------------------------------------------------------------
# PE-LTR's two-stage route
# ----------------------------------------------------------------------------------


@given(problems(max_tasks=8))
def test_pe_ltr_is_feasible_and_never_better_than_exact(problem):
    J, c = problem
    G = gram64(J)
    scale = oracles.scale_of(G)
    res = pareto_step(J, lower_bounds=c, method="pe-ltr")
    exact = pareto_step(J, lower_bounds=c)
    assert res.method == "pareto-step/pe-ltr"
    assert_feasible(res.weights, c)
    assert abs(res.objective - res.weights @ G @ res.weights) <= 1e-13 * scale
    assert res.objective >= exact.objective - 1e-10 * scale


def test_hand_worked_exact_and_pe_ltr():
    # g1 = (1, 0), g2 = (0, 1), g3 = (-1, 1); c = (0.1, 0.1, 0.1), s = 1 - 0.3 = 0.7.
    # G = [[1, 0, -1], [0, 1, 1], [-1, 1, 2]].
    J = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0]])
    c = np.full(3, 0.1)
    #
    # Exact. With w2 = 0.1 on its bound and w1 = 0.9 - t, w3 = t:
    #   d = (w1 - w3, w2 + w3) = (0.9 - 2t, 0.1 + t),
    #   ||d||^2 = (0.9 - 2t)^2 + (0.1 + t)^2, derivative -4 (0.9 - 2t) + 2 (0.1 + t)
    #   = 10t - 3.4 = 0 at t = 0.34: w = (0.56, 0.1, 0.34), d = (0.22, 0.44),
    #   ||d||^2 = 0.0484 + 0.1936 = 0.242.
    # Certificate: G w = J d = (0.22, 0.44, -0.22 + 0.44) = (0.22, 0.44, 0.22);
    #   mu = (w - c).(G w) / s = (0.46 * 0.22 + 0 + 0.24 * 0.22) / 0.7 = 0.22; the free
    #   coordinates 1, 3 have (G w)_i = mu and the bound one has 0.44 >= mu: optimal.
    w_exact = np.array([0.56, 0.1, 0.34])
    Gw = J @ (w_exact @ J)
    np.testing.assert_allclose(Gw, [0.22, 0.44, 0.22], atol=1e-15)
    assert oracles.kkt_residual(gram64(J), c, w_exact) <= 1e-15
    # The oracles agree with the hand computation.
    np.testing.assert_allclose(oracles.brute_force(gram64(J), c).weights, w_exact, atol=1e-14)
    ref = oracles.cvxpy_reference(gram64(J), c)
    assert ref.usable_as_bound
    assert ref.objective == pytest.approx(0.242, abs=1e-8)
    res = pareto_step(J, lower_bounds=c)
    np.testing.assert_allclose(res.weights, w_exact, rtol=0, atol=1e-14)
    np.testing.assert_allclose(res.direction, [0.22, 0.44], rtol=0, atol=1e-14)
    assert res.objective == pytest.approx(0.242, abs=1e-14)
    #
    # PE-LTR. Stage 1 ignores the bounds: the three points span the plane, which holds
    # the origin, so the affine minimiser is the w with sum 1 and J^T w = 0:
    #   w1 - w3 = 0, w2 + w3 = 0, w1 + w2 + w3 = 1  =>  w = (1, -1, 1),
    #   x_hat = w - c = (0.9, -1.1, 0.9).
    # Stage 2 projects x_hat onto {x >= 0, sum x = 0.7}: x_i = max(x_hat_i - tau, 0);
    #   with coordinates 1, 3 positive, 2 (0.9 - tau) = 0.7 => tau = 0.55, and
    #   x_hat_2 - tau = -1.65 < 0 is consistent: x = (0.35, 0, 0.35).
    #   w = c + x = (0.45, 0.1, 0.45), d = (0.45 - 0.45, 0.1 + 0.45) = (0, 0.55),
    #   ||d||^2 = 0.3025 = 1.25 * 0.242.
    pe = pareto_step(J, lower_bounds=c, method="pe-ltr")
    np.testing.assert_allclose(pe.weights, [0.45, 0.1, 0.45], rtol=0, atol=1e-8)
    np.testing.assert_allclose(pe.direction, [0.0, 0.55], rtol=0, atol=1e-8)
    assert pe.objective == pytest.approx(0.3025, abs=1e-8)
    assert pe.objective / res.objective == pytest.approx(1.25, abs=1e-7)
    # Not optimal: G w = J d = (0, 0.55, 0.55); the free coordinates are 1 and 3, so
    # mu = (0.35 * 0 + 0 + 0.35 * 0.55) / 0.7 = 0.275 and |(G w)_i - mu| = 0.275 on
    # both; relative to max G_ii = 2 the residual is 0.1375.
    assert oracles.kkt_residual(gram64(J), c, pe.weights) == pytest.approx(0.1375, abs=1e-7)
    assert pe.kkt_residual == pytest.approx(0.1375, abs=1e-7)


# ----------------------------------------------------------------------------------
# Bounds at the edge of feasibility, and infeasible ones
# ----------------------------------------------------------------------------------


@given(grads_matrices(min_tasks=2, max_tasks=12, max_dim=8), st.integers(0, 2**32 - 1))
def test_bounds_summing_to_one_pin_the_weights(J, seed):
    K = J.shape[0]
    rng = np.random.default_rng(seed)
    c = rng.dirichlet(np.ones(K))
    c[-1] = 1.0 - c[:-1].sum()  # sum within an ulp or two of 1
    c = np.clip(c, 0.0, None)
    assume(abs(c.sum() - 1.0) <= 1e-15)
    res = pareto_step(J, lower_bounds=c)
    # The feasible set is {c} up to rounding: w = c (to rounding of the sum).
    np.testing.assert_allclose(res.weights, c, rtol=0, atol=1e-15)
    assert_feasible(res.weights, c, atol=1e-15)
    assert np.all(res.weights >= c)


@pytest.mark.parametrize("method", ["exact", "pe-ltr", "cvxpy"])
@pytest.mark.parametrize(
    "c",
    [[0.25, 0.75, 0.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.1] * 10, [1 / 3] * 3],
)
def test_bounds_summing_to_one_exactly(c, method):
    # sum(c) rounds to 1 (np.sum([0.1] * 10) == 1.0, though 1 - 0.1 - ... - 0.1 is
    # 1.1e-16): {c} is the feasible set, whatever G is.
    c = np.array(c)
    J = np.random.default_rng(0).standard_normal((len(c), 4))
    res = pareto_step(J, lower_bounds=c, method=method)
    np.testing.assert_allclose(res.weights, c, rtol=0, atol=1e-15)
    assert_feasible(res.weights, c, atol=1e-15)
    assert res.converged


@pytest.mark.parametrize("grad_scale", [1.0, 1e5])
def test_pinned_bounds_report_a_small_kkt_residual(grad_scale):
    # c = 0.1 * ones(10): np.sum(c) == 1.0, the feasible set is {c} up to rounding, so
    # the returned point is optimal and its residual (relative to max G_ii) should be ~0.
    J = np.random.default_rng(0).standard_normal((10, 4)) * grad_scale
    res = pareto_step(J, lower_bounds=np.full(10, 0.1))
    np.testing.assert_allclose(res.weights, 0.1, rtol=0, atol=1e-15)
    assert res.converged
    assert res.kkt_residual <= 1e-8


def test_pinned_bounds_keep_weights_above_bounds():
    # The bounds pass validation (np.sum(c) == 1.0) and c itself is feasible, so the
    # answer can meet w >= c exactly.
    c = np.array([0.06, 0.17, 0.45, 0.08, 0.22, 0.02])
    assert c.sum() == 1.0
    res = pareto_step(np.eye(6), lower_bounds=c)
    assert np.all(res.weights >= c), res.weights - c


def test_single_task_kkt_residual_is_relative():
    # w = 1, c = 0.7: x = 0.3, mu = 0.3 G / 0.3, which rounds to G - 1 ulp for G = 9e8;
    # relative to max G_ii = 9e8 that is 1.3e-16.
    res = pareto_step(np.array([[3e4]]), lower_bounds=[0.7])
    assert res.weights.tolist() == [1.0]
    assert res.kkt_residual <= 1e-12


@pytest.mark.parametrize(
    ("c", "match"),
    [
        ([0.6, 0.6], r"lower_bounds sum to 1\.2 > 1"),
        ([1.0, 1e-6], r"lower_bounds sum to"),
        (0.6, r"lower_bounds sum to"),  # scalar: 0.6 for each of 2 tasks
        ([-0.1, 0.5], r"lower_bounds must be >= 0; lower_bounds\[0\]"),
        ([0.1, -1e-300], r"lower_bounds must be >= 0; lower_bounds\[1\]"),
        ([np.nan, 0.1], r"lower_bounds must be finite"),
        ([np.inf, 0.1], r"lower_bounds must be finite"),
        ([0.1, 0.1, 0.1], r"lower_bounds must be a scalar or have one entry per task"),
        ([0.1], r"lower_bounds must be a scalar or have one entry per task"),
        ([[0.1, 0.1]], r"lower_bounds must be a scalar or have one entry per task"),
    ],
)
def test_infeasible_or_malformed_bounds_raise(c, match):
    J = np.array([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=match):
        pareto_step(J, lower_bounds=c)
    with pytest.raises(ValueError, match=match):
        pareto_step(gram=J @ J.T, lower_bounds=c)


def test_bad_method_and_input_are_refused():
    J = np.eye(2)
    with pytest.raises(ValueError, match=r"method must be one of"):
        pareto_step(J, method="frank-wolfe")
    with pytest.raises(ValueError, match=r"grads must be a 2-D"):
        pareto_step(np.ones(3))
    with pytest.raises(ValueError, match=r"grads\[1\] \(task 1\)"):
        pareto_step(np.array([[1.0, 0.0], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"gram is not positive semi-definite"):
        pareto_step(gram=np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(TypeError, match="grads"):
        pareto_step(np.ones((2, 2), dtype=complex))


# ----------------------------------------------------------------------------------
# Closed forms
# ----------------------------------------------------------------------------------


@given(problems(min_tasks=2, max_tasks=2))
def test_two_tasks_closed_form(problem):
    # f(a) = || a g1 + (1 - a) g2 ||^2 is a convex parabola in a (see test_mgda); the
    # bounds are a >= c1 and 1 - a >= c2, so the minimiser is a* clipped to
    # [c1, 1 - c2], a* = (g2 - g1).g2 / ||g1 - g2||^2.
    J, c = problem
    g1, g2 = J[0], J[1]
    den = float((g1 - g2) @ (g1 - g2))
    scale = oracles.scale_of(gram64(J))
    assume(den > 1e-6 * scale)
    a = min(1.0 - c[1], max(c[0], float((g2 - g1) @ g2) / den))
    res = pareto_step(J, lower_bounds=c)
    np.testing.assert_allclose(res.weights, [a, 1.0 - a], rtol=0, atol=1e-13 * scale / den)


@given(st.integers(1, 16), st.integers(0, 2**32 - 1), st.floats(-3, 3), st.data())
def test_orthogonal_gradients_water_filling(K, seed, log_spread, data):
    # G = diag(a_i^2): the KKT conditions separate, w_i = max(c_i, mu / a_i^2) with mu
    # fixed by sum w = 1 (oracles.waterfill finds mu by bisection).
    rng = np.random.default_rng(seed)
    a = 10.0 ** (log_spread * rng.uniform(-1, 1, size=K))
    Q, _ = np.linalg.qr(rng.standard_normal((K + 2, K)))
    J = a[:, None] * Q.T
    c = data.draw(lower_bounds(K))
    a2 = a**2
    expected = oracles.waterfill(a2, c)
    res = pareto_step(J, lower_bounds=c)
    # A KKT residual r (relative to max a_i^2) leaves w_i free by r max(a^2) / a_i^2; the
    # solver's entering tolerance is r ~ 1e-15 K, so allow r = 1e-13 on top of rounding.
    # (With 1 - sum c ~ 1e-9 the optimum can put ~1e-12 on a coordinate whose (G w)_i
    # sits only ~1e-15 max G_ii below mu: at that level the split is rounding.)
    atol = 1e-13 * a2.max() / a2
    np.testing.assert_array_less(np.abs(res.weights - expected), 1e-9 * expected + atol)
    assert oracles.kkt_residual(gram64(J), c, res.weights) <= 1e-12


def test_water_filling_hand_worked():
    # The docstring's example: norms (1, 3), a^2 = (1, 9); unbounded w ~ (1, 1/9), i.e.
    # (0.9, 0.1). With c = (0, 0.3), w2 = 0.1 < 0.3, so w2 sits on its bound and w1 =
    # 0.7; KKT: (G w) = (0.7, 2.7), w1 free with mu = 0.7, and 2.7 >= mu.
    J = np.array([[1.0, 0.0], [0.0, 3.0]])
    np.testing.assert_allclose(pareto_step(J, lower_bounds=[0.0, 0.0]).weights, [0.9, 0.1])
    np.testing.assert_allclose(pareto_step(J, lower_bounds=[0.0, 0.3]).weights, [0.7, 0.3])
    np.testing.assert_allclose(
        oracles.waterfill(np.array([1.0, 9.0]), np.array([0.0, 0.3])), [0.7, 0.3]
    )
    # With c = (0, 0.05) the bound is slack: the unbounded (0.9, 0.1) again.
    np.testing.assert_allclose(pareto_step(J, lower_bounds=[0.0, 0.05]).weights, [0.9, 0.1])
    # a^2 = (1, 1, 4), c = (0, 0, 0.5): w3 = 0.5 bound; w1 = w2 = 0.25 (4 * 0.5 >= 0.25).
    J = np.diag([1.0, 1.0, 2.0])
    np.testing.assert_allclose(
        pareto_step(J, lower_bounds=[0.0, 0.0, 0.5]).weights, [0.25, 0.25, 0.5], rtol=1e-15
    )


@given(st.integers(2, 8), st.integers(1, 6), st.integers(0, 2**32 - 1), st.data())
def test_identical_gradients_give_that_gradient(K, M, seed, data):
    g = np.random.default_rng(seed).standard_normal(M)
    c = data.draw(lower_bounds(K))
    res = pareto_step(np.tile(g, (K, 1)), lower_bounds=c)
    assert_feasible(res.weights, c)
    np.testing.assert_allclose(res.direction, g, rtol=1e-13, atol=0)


@given(st.integers(2, 8), st.integers(1, 6), st.data())
def test_all_zero_gradients_spread_the_excess_evenly(K, M, data):
    c = data.draw(lower_bounds(K))
    res = pareto_step(np.zeros((K, M)), lower_bounds=c)
    # Every feasible point is optimal; the documented one is c + s/K.
    np.testing.assert_allclose(res.weights, c + (1.0 - c.sum()) / K, rtol=0, atol=1e-15)
    assert res.objective == 0.0 and np.all(res.direction == 0.0)


@given(grads_matrices(min_tasks=2, max_tasks=6, max_dim=6), st.data())
def test_zero_row_with_bounds_matches_brute_force(J, data):
    J = J.copy()
    J[data.draw(st.integers(0, J.shape[0] - 1))] = 0.0
    c = data.draw(lower_bounds(J.shape[0]))
    G = gram64(J)
    res = pareto_step(J, lower_bounds=c)
    ref = oracles.brute_force(G, c)
    assert abs(res.objective - ref.objective) <= 1e-10 * oracles.scale_of(G)
    assert_feasible(res.weights, c)


@given(st.integers(1, 6), st.floats(0.0, 0.999))
def test_single_task_has_weight_one(M, c0):
    g = np.arange(1.0, M + 1)
    res = pareto_step(g[None, :], lower_bounds=[c0])
    np.testing.assert_allclose(res.weights, [1.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.direction, g, rtol=1e-15)


# ----------------------------------------------------------------------------------
# Valid but awkward input
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "tol"), [(np.float64, 1e-12), (np.float32, 1e-4), (np.float16, 3e-2)]
)
@given(st.integers(2, 6), st.integers(0, 40), st.integers(0, 2**32 - 1), st.data())
def test_low_precision_dtypes(dtype, tol, K, extra, seed, data):
    J = np.random.default_rng(seed).standard_normal((K, K + 10 + extra))
    assume(oracles.pd_margin(gram64(J)) > 0.05)
    c = data.draw(lower_bounds(K))
    res = pareto_step(J.astype(dtype), lower_bounds=c)
    assert np.all(np.isfinite(res.weights)) and np.all(np.isfinite(res.direction))
    assert_feasible(res.weights, c)
    ref = oracles.brute_force(gram64(J), c)
    np.testing.assert_allclose(res.weights, ref.weights, rtol=0, atol=tol)


@given(st.integers(2, 10), st.integers(1, 8), st.integers(0, 2**32 - 1), st.data())
def test_norms_from_1e_minus_30_to_1e30(K, M, seed, data):
    rng = np.random.default_rng(seed)
    norms = 10.0 ** rng.uniform(-30, 30, size=K)
    norms[0], norms[-1] = 1e-30, 1e30
    rng.shuffle(norms)
    V = rng.standard_normal((K, M))
    J = norms[:, None] * V / np.linalg.norm(V, axis=1, keepdims=True)
    c = data.draw(lower_bounds(K))
    res = pareto_step(J, lower_bounds=c)
    assert np.all(np.isfinite(res.weights)) and np.all(np.isfinite(res.direction))
    assert_feasible(res.weights, c)
    G = gram64(J)
    assert oracles.kkt_residual(G, c, res.weights) <= 1e-8
    assert res.kkt_residual <= 1e-8
    if K <= 6:
        ref = oracles.brute_force(G, c)
        assert abs(res.objective - ref.objective) <= 1e-10 * oracles.scale_of(G)


@given(st.integers(3, 6), st.data(), st.integers(0, 2**32 - 1))
def test_rank_deficient_matches_brute_force(K, data, seed):
    M = data.draw(st.integers(1, K - 1))
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((K, M)) * 10.0 ** rng.uniform(-2, 2, size=(K, 1))
    c = data.draw(lower_bounds(K))
    G = gram64(J)
    res = pareto_step(J, lower_bounds=c)
    ref = oracles.brute_force(G, c)
    assert abs(res.objective - ref.objective) <= 1e-10 * oracles.scale_of(G)
    assert oracles.kkt_residual(G, c, res.weights) <= 1e-8


@given(st.integers(2, 6), st.integers(1, 8), st.integers(0, 2**32 - 1), st.data())
def test_near_duplicate_rows_match_brute_force(K, M, seed, data):
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((K, M))
    J[1] = J[0] * (1 + 1e-9 * rng.standard_normal(M))
    c = data.draw(lower_bounds(K))
    G = gram64(J)
    res = pareto_step(J, lower_bounds=c)
    ref = oracles.brute_force(G, c)
    assert abs(res.objective - ref.objective) <= 1e-10 * oracles.scale_of(G)
    assert oracles.kkt_residual(G, c, res.weights) <= 1e-8


# ----------------------------------------------------------------------------------
# cvxpy route and Gram-only calls
# ----------------------------------------------------------------------------------


@given(st.integers(2, 12), st.integers(0, 30), st.integers(0, 2**32 - 1), st.data())
def test_cvxpy_method_agrees_with_exact(K, extra, seed, data):
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((K, K + 5 + extra))
    G = gram64(J)
    assume(oracles.pd_margin(G) > 1e-2)  # well-conditioned: a unique, stable optimum
    c = data.draw(lower_bounds(K))
    # Keep the feasible set wider than the solver's 1e-10 tolerances by a margin.
    c = c * min(1.0, (1.0 - 1e-6) / max(c.sum(), 1e-300))
    a = pareto_step(J, lower_bounds=c, method="cvxpy")
    b = pareto_step(J, lower_bounds=c)
    assert a.method == "pareto-step/cvxpy"
    assert_feasible(a.weights, c)
    np.testing.assert_allclose(a.weights, b.weights, rtol=0, atol=1e-6)
    assert a.objective >= b.objective - 1e-12 * oracles.scale_of(G)


def test_cvxpy_route_resolves_a_narrow_feasible_set():
    J = np.random.default_rng(0).standard_normal((2, 7))  # well-conditioned: margin 0.24
    c = np.array([0.00172878, 0.99826122])  # 1 - sum c = 1.0e-5
    # K = 2 closed form (test_two_tasks_closed_form): a* = (g2 - g1).g2 / ||g1 - g2||^2
    # clipped to [c_1, 1 - c_2]; here a* > 1 - c_2, so w = (1 - c_2, c_2).
    g1, g2 = J
    a_star = float((g2 - g1) @ g2) / float((g1 - g2) @ (g1 - g2))
    assert a_star > 1.0 - c[1]
    expected = np.array([1.0 - c[1], c[1]])
    np.testing.assert_allclose(pareto_step(J, lower_bounds=c).weights, expected, atol=1e-15)
    res = pareto_step(J, lower_bounds=c, method="cvxpy")
    assert res.converged
    np.testing.assert_allclose(res.weights, expected, rtol=0, atol=1e-6)


@given(problems(max_tasks=10))
def test_gram_only_call(problem):
    J, c = problem
    G = gram64(J)
    a = pareto_step(J, lower_bounds=c)
    b = pareto_step(gram=G, lower_bounds=c)
    assert b.direction is None
    scale = oracles.scale_of(G)
    np.testing.assert_allclose(G @ b.weights, G @ a.weights, rtol=0, atol=1e-12 * scale)
    if oracles.pd_margin(G) > 1e-6:
        np.testing.assert_allclose(b.weights, a.weights, rtol=0, atol=1e-10)
