"""FairGrad: Newton's solution of G w = w^(-1/alpha) against cvxpy, Nash-MTL, torchjd."""

import warnings

import numpy as np
import pytest
from hypothesis import example, given, note
from hypothesis import strategies as st

from paretomtl.solvers import NashMTL, fairgrad, info
from tests.strategies import grads_matrices


def convex_reference(G, alpha):
    """argmin 1/2 w^T G w + sum h(w), h' = -w^(-1/alpha), by cvxpy (alpha in {0.5, 2})."""
    cp = pytest.importorskip("cvxpy")
    K = G.shape[0]
    evals, evecs = np.linalg.eigh(G)
    L = evecs * np.sqrt(np.clip(evals, 0.0, None))
    w = cp.Variable(K)
    if alpha == 2.0:  # h = -2 sqrt(w)
        h = -2 * cp.sum(cp.sqrt(w))
    else:  # alpha = 0.5: h = 1 / w
        h = cp.sum(cp.inv_pos(w))
    problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(L.T @ w) + h))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return np.asarray(w.value, dtype=float)


def test_registered():
    assert "ICML 2024" in info("fairgrad").paper


@given(grads_matrices(max_tasks=8, max_dim=10), st.sampled_from([0.5, 1.0, 2.0, 5.0]))
# Nearly parallel rows in 2-D whose hull holds the origin (slopes -9.24..-9.65, both
# signs, checked in fractions): after S = {0, 1, 4} (cond(G_SS) ~ 1e6) the rest lie
# exactly in span(g_S), but their projections computed to 6e-11 (rounding times the
# condition number): Newton ran on noise (residual 3.8, converged=False). d = 0.
@example(
    J=np.array(
        [
            [0.14167741845831003, -1.3087492557818723],
            [-0.11439061272327919, 1.074883033489426],
            [-0.010405167831365058, 0.09666256659957584],
            [-0.1681152764413064, 1.5719385640569181],
            [0.01787108892975925, -0.1725177620203655],
            [-0.23029210119619284, 2.1548121929009403],
        ]
    ),
    alpha=2.0,
)
def test_solution_satisfies_the_fairness_equation(J, alpha):
    note(f"J = {J.tolist()!r}")  # exactly (numpy's repr rounds to 8 digits)
    G = J @ J.T
    res = fairgrad(J, alpha=alpha)
    w = res.weights
    assert np.all(np.isfinite(w)) and res.converged
    if res.method == "fairgrad/newton":
        assert np.all(w > 0)
        # g_i^T d = w_i^(-1/alpha): to 1e-10 or to rounding where G w cancels
        rounding = 64 * J.shape[0] * 2.2e-16 * np.max(w ** (1 / alpha) * (np.abs(G) @ w))
        assert res.kkt_residual <= max(1e-10, rounding)
        np.testing.assert_allclose(w ** (1 / alpha) * (G @ w), 1.0, atol=max(1e-9, 2 * rounding))
    elif G.diagonal().max() > 0:
        S = list(res.extras["unbounded_tasks"])
        assert S and res.method == "fairgrad/reduced"
        top = np.abs(J).max() ** 2 * max(np.abs(w).max(), 1.0)
        np.testing.assert_allclose(J[S] @ res.direction, 0.0, atol=1e-8 * top)


@pytest.mark.parametrize("alpha", [0.5, 2.0])
@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_cvxpy(alpha, seed):
    rng = np.random.default_rng(seed)
    K = 2 + 2 * seed
    J = rng.standard_normal((K, K + 2))
    J[1:] -= 0.5 * J[:1]
    G = J @ J.T
    G /= G.diagonal().max()
    ref = convex_reference(G, alpha)
    res = fairgrad(gram=G, alpha=alpha)
    np.testing.assert_allclose(res.weights, ref, rtol=1e-6)


@given(grads_matrices(min_tasks=2, max_tasks=6, allow_zero_rows=False))
def test_alpha_one_is_nash_mtl(J):
    a = NashMTL(J.shape[0], max_norm=0.0)(J)
    f = fairgrad(J, alpha=1.0)
    assert a.method.split("/")[1] == f.method.split("/")[1]
    np.testing.assert_allclose(f.weights, a.weights, rtol=1e-12, atol=1e-300)


def test_closed_forms():
    # Orthogonal gradients: ||g_i||^2 w_i = w_i^(-1/alpha), w_i = ||g_i||^(-2 alpha / (alpha + 1)).
    J = np.diag([2.0, 0.5, 3.0])
    for alpha in (0.5, 1.0, 2.0, 10.0):
        expected = np.array([2.0, 0.5, 3.0]) ** (-2 * alpha / (alpha + 1))
        np.testing.assert_allclose(fairgrad(J, alpha=alpha).weights, expected, rtol=1e-13)
    # alpha = 0: the sum (weights 1).
    np.testing.assert_array_equal(fairgrad(J, alpha=0.0).weights, 1.0)


def test_large_alpha_equalises_improvements():
    # Max-min fairness in the limit: g_i^T d = w_i^(-1/alpha) -> all equal.
    rng = np.random.default_rng(4)
    J = rng.standard_normal((4, 6))
    J[1:] -= 0.3 * J[:1]
    res = fairgrad(J, alpha=1e4)
    gains = J @ res.direction
    assert np.ptp(gains) / gains.mean() < 1e-2


def test_scale_behaviour():
    # w(tJ) = t^(-2 / (1 + 1/alpha)) w(J), at any scale.
    J = np.random.default_rng(5).standard_normal((3, 5))
    for alpha in (0.5, 2.0):
        base = fairgrad(J, alpha=alpha).weights
        for t in (1e-30, 1e-3, 1e3, 1e30):
            w = fairgrad(J * t, alpha=alpha).weights
            np.testing.assert_allclose(w * t ** (2 / (1 + 1 / alpha)), base, rtol=1e-9)


def test_degenerate_inputs():
    J = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0]])
    res = fairgrad(J, alpha=2.0)
    assert res.method == "fairgrad/reduced" and res.extras["unbounded_tasks"] == (0, 1)
    # h alone: 4 w = w^(-1/2), w = 4^(-2/3); d = 2 w e_2
    np.testing.assert_allclose(res.direction, [0.0, 2 * 4 ** (-2 / 3)], atol=1e-14)
    res = fairgrad(np.zeros((3, 4)))
    np.testing.assert_array_equal(res.weights, 0.0)
    for K in (32, 128):
        J = np.random.default_rng(K).standard_normal((K, 6))  # rank 6 < K
        res = fairgrad(J, alpha=2.0)
        assert np.all(np.isfinite(res.weights)) and res.converged


def test_bad_options():
    with pytest.raises(ValueError, match="alpha"):
        fairgrad(np.eye(2), alpha=-1.0)
    with pytest.raises(ValueError, match="max_iter"):
        fairgrad(np.eye(2), max_iter=0)


def test_against_torchjd():
    # TorchJD's FairGradWeighting: scipy least_squares from 1/K with its default
    # tolerances. Where its residual max|w^(1/alpha) (G w) - 1| is below 1e-8 the
    # weights agree within 1e-6; elsewhere ours has the smaller residual.
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchjd")
    from torchjd.aggregation import FairGradWeighting

    rng = np.random.default_rng(0)
    agreed = 0
    for t in range(30):
        K = int(rng.integers(2, 11))
        J = rng.standard_normal((K, int(rng.integers(K, 3 * K + 2))))
        if t % 2:
            J[1:] = -0.5 * J[:1] + 0.5 * J[1:]
        G = J @ J.T
        alpha = (0.5, 1.0, 2.0)[t % 3]
        theirs = FairGradWeighting(alpha=alpha)(torch.tensor(G)).numpy()
        res = fairgrad(gram=G, alpha=alpha)
        their_residual = float(np.max(np.abs(theirs ** (1 / alpha) * (G @ theirs) - 1)))
        if their_residual < 1e-8:
            np.testing.assert_allclose(res.weights, theirs, rtol=1e-6)
            agreed += 1
        else:
            assert res.kkt_residual < their_residual
    assert agreed >= 15


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_norms_over_twelve_decades(alpha):
    rng = np.random.default_rng(13)
    for _ in range(10):
        J = rng.standard_normal((6, 8)) * 10.0 ** rng.uniform(-6, 6, size=(6, 1))
        res = fairgrad(J, alpha=alpha)
        assert res.converged and res.method == "fairgrad/newton"
        w, G = res.weights, J @ J.T
        # to 1e-10, or to what rounding in G w allows where it cancels
        rounding = 64 * 6 * 2.2e-16 * np.max(w ** (1 / alpha) * (np.abs(G) @ w))
        assert res.kkt_residual <= max(1e-10, rounding)
        np.testing.assert_allclose(w ** (1 / alpha) * (G @ w), 1.0, atol=max(1e-9, 2 * rounding))
