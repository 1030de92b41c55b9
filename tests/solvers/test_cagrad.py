"""CAGrad: the exact inner solve against cvxpy (dual and primal), scipy, torchjd."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paretomtl.solvers import cagrad, info, mean
from tests.strategies import grads_matrices


def inner_objective(G, w, rho):
    K = G.shape[0]
    return float(w @ G @ np.full(K, 1.0 / K)) + rho * math.sqrt(max(float(w @ G @ w), 0.0))


def rho_of(G, c):
    K = G.shape[0]
    m = np.full(K, 1.0 / K)
    return c * math.sqrt(max(float(m @ G @ m), 0.0))


def cvxpy_inner(G, rho):
    """The inner problem as cvxpy states it (a factor L of G, L L^T = G); the answer
    projected back onto the simplex, so that its objective is an upper bound."""
    cp = pytest.importorskip("cvxpy")
    K = G.shape[0]
    evals, evecs = np.linalg.eigh(G)
    L = evecs * np.sqrt(np.clip(evals, 0.0, None))
    w = cp.Variable(K)
    b = G @ np.full(K, 1.0 / K)
    problem = cp.Problem(cp.Minimize(b @ w + rho * cp.norm(L.T @ w)), [w >= 0, cp.sum(w) == 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        problem.solve(solver=cp.CLARABEL)
    x = np.clip(np.asarray(w.value, dtype=float), 0.0, None)
    return x / x.sum()


def cvxpy_primal(J, c):
    """max_d min_i g_i^T d  s.t.  ||d - g0|| <= c ||g0||, in the gradients' space."""
    cp = pytest.importorskip("cvxpy")
    g0 = J.mean(axis=0)
    d = cp.Variable(J.shape[1])
    t = cp.Variable()
    problem = cp.Problem(cp.Maximize(t), [J @ d >= t, cp.norm(d - g0) <= c * np.linalg.norm(g0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "may be inaccurate": the bound below allows it
        problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    return np.asarray(d.value, dtype=float), float(t.value)


def test_registered_with_its_paper():
    assert "NeurIPS 2021" in info("cagrad").paper
    assert info("cagrad").kind == "gradient"


@settings(max_examples=30)  # each example calls cvxpy
@given(grads_matrices(min_tasks=2, max_tasks=6), st.sampled_from([0.1, 0.4, 0.5, 0.9, 2.0]))
def test_inner_optimum_is_no_worse_than_cvxpy_and_certified(J, c):
    G = J @ J.T
    scale = float(G.diagonal().max())
    res = cagrad(J, c=c)
    assert np.all(np.isfinite(res.weights))
    assert res.converged
    if scale == 0.0:
        return
    rho = rho_of(G, c)
    w = res.extras["inner_weights"]
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
    ours = inner_objective(G, w, rho)
    theirs = inner_objective(G, cvxpy_inner(G, rho), rho)
    assert ours <= theirs + 1e-12 * scale
    assert res.objective == pytest.approx(ours, rel=1e-9, abs=1e-12 * scale)
    if not res.extras["dual_cone"]:
        assert res.kkt_residual <= 1e-9


@settings(max_examples=30)  # each example calls cvxpy
@given(
    grads_matrices(min_tasks=2, max_tasks=5, max_dim=6, allow_zero_rows=False),
    st.sampled_from([0.2, 0.4, 0.9]),
)
def test_direction_solves_the_primal(J, c):
    # The primal in the gradients' space, by cvxpy: max_d min_i g_i^T d in the ball.
    g0 = J.mean(axis=0)
    if np.linalg.norm(g0) < 1e-6 * np.abs(J).max():
        return
    res = cagrad(J, c=c, rescale=0)
    d = res.direction
    scale = float(np.max(np.sum(J * J, axis=1)))
    radius = c * np.linalg.norm(g0)
    assert np.linalg.norm(d - g0) <= radius * (1 + 1e-9) + 1e-12 * math.sqrt(scale)
    _, t_ref = cvxpy_primal(J, c)
    # The worst task's improvement: as good as cvxpy's optimum (to its tolerance).
    assert float(np.min(J @ d)) >= t_ref - 1e-7 * scale


def test_k2_against_a_scalar_minimisation():
    # K = 2: the inner problem is one-dimensional; scipy's bounded Brent finds it.
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(7)
    for _ in range(20):
        J = rng.standard_normal((2, 4))
        J[1] = -0.6 * J[0] + 0.5 * J[1]
        G = J @ J.T
        for c in (0.2, 0.4, 1.0):
            rho = rho_of(G, c)
            f = lambda x, G=G, rho=rho: inner_objective(G, np.array([x, 1 - x]), rho)  # noqa: E731
            x = minimize_scalar(f, bounds=(0, 1), method="bounded", options={"xatol": 1e-12}).x
            w = np.array([x, 1 - x])
            g_w = w @ J
            d_ref = J.mean(axis=0) + rho / np.linalg.norm(g_w) * g_w
            d = cagrad(J, c=c, rescale=0).direction
            np.testing.assert_allclose(d, d_ref, rtol=1e-6, atol=1e-9)


def test_symmetric_tasks_give_a_scaled_mean():
    # Orthogonal gradients of equal norm: by symmetry g_w = g0, so d = (1 + c) g0.
    J = np.eye(3) * 2.0
    for c in (0.0, 0.4, 1.5):
        d = cagrad(J, c=c, rescale=0).direction
        np.testing.assert_allclose(d, (1 + c) * J.mean(axis=0), rtol=1e-12)


def test_rescale_options_divide_the_direction():
    J = np.random.default_rng(2).standard_normal((4, 6))
    c = 0.4
    base = cagrad(J, c=c, rescale=0).weights
    np.testing.assert_allclose(cagrad(J, c=c, rescale=1).weights, base / (1 + c * c), rtol=1e-15)
    np.testing.assert_allclose(cagrad(J, c=c, rescale=2).weights, base / (1 + c), rtol=1e-15)
    np.testing.assert_allclose(cagrad(J, c=c).weights, base / (1 + c * c), rtol=1e-15)  # default


def test_c_zero_is_the_mean():
    J = np.random.default_rng(3).standard_normal((5, 3))
    np.testing.assert_allclose(cagrad(J, c=0.0).weights, mean(J).weights, rtol=0)


@given(grads_matrices(min_tasks=2, max_tasks=6), st.integers(0, 2**31 - 1))
def test_permutation_and_scale(J, seed):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(J.shape[0])
    res = cagrad(J)
    d = res.direction
    top = max(float(np.abs(d).max()), float(np.abs(J).max()))
    np.testing.assert_allclose(cagrad(J[perm]).direction, d, atol=1e-7 * top)
    for t in (1e-30, 1e30):
        np.testing.assert_allclose(cagrad(J * t).weights, res.weights, rtol=1e-6, atol=1e-9)


def test_worst_task_improves_on_the_mean():
    # g0 is feasible in the primal, so CAGrad's worst-case improvement is >= g0's.
    rng = np.random.default_rng(11)
    for _ in range(50):
        K = int(rng.integers(2, 8))
        J = rng.standard_normal((K, 6))
        J[1:] -= 0.7 * J[:1]
        d = cagrad(J, rescale=0).direction
        g0 = J.mean(axis=0)
        assert np.min(J @ d) >= np.min(J @ g0) - 1e-12 * np.abs(J @ g0).max()


def test_degenerate_inputs():
    # Opposite gradients: g0 = 0, the ball is a point: the mean (d = 0).
    J = np.array([[1.0, 0.0], [-1.0, 0.0]])
    res = cagrad(J)
    np.testing.assert_allclose(res.direction, 0.0)
    assert res.converged
    # The origin in the hull and g0 already in the dual cone: g_w* = 0 is optimal, the
    # nearest primal solution is g0 itself (dual-cone route, certified).
    J = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0]])
    res = cagrad(J, rescale=0)
    assert res.method == "cagrad/dual-cone" and res.extras["dual_cone"]
    np.testing.assert_allclose(res.direction, J.mean(axis=0), atol=1e-15)
    assert res.converged and res.objective == 0.0
    # ... and where g0 is outside the cone: its projection, when within the ball.
    J = np.array([[1.0, 0.0], [-1.0, 0.0], [0.3, 2.0]])
    res = cagrad(J, c=0.9, rescale=0)
    assert res.method == "cagrad/dual-cone"
    np.testing.assert_allclose(res.direction, [0.0, 2.0 / 3.0], atol=1e-12)
    _, t_ref = cvxpy_primal(J, 0.9)
    assert np.min(J @ res.direction) >= t_ref - 1e-8
    # A zero row, duplicated tasks, one task, all zero.
    for J in (
        np.array([[1.0, 2.0], [0.0, 0.0], [-1.0, 0.5]]),
        np.array([[1.0, 2.0], [1.0, 2.0], [-1.0, 0.5]]),
        np.array([[3.0, 4.0]]),
        np.zeros((3, 2)),
    ):
        res = cagrad(J)
        assert np.all(np.isfinite(res.weights)) and res.converged


@pytest.mark.parametrize("K", [32, 128])
def test_large_and_rank_deficient(K):
    rng = np.random.default_rng(K)
    J = rng.standard_normal((K, 5)) * 10.0 ** rng.uniform(-6, 6, size=(K, 1))
    res = cagrad(J)
    assert np.all(np.isfinite(res.weights)) and res.converged
    G = J @ J.T
    rho = rho_of(G, 0.4)
    assert res.objective <= inner_objective(G, np.full(K, 1.0 / K), rho) * (1 + 1e-12)


def test_bad_options():
    J = np.eye(2)
    with pytest.raises(ValueError, match="c must"):
        cagrad(J, c=-0.1)
    with pytest.raises(ValueError, match="rescale"):
        cagrad(J, rescale=3)
    with pytest.raises(ValueError, match="max_iter"):
        cagrad(J, max_iter=0)
    with pytest.raises(ValueError, match="grads"):
        cagrad(np.ones(3))


def test_against_torchjd():
    # TorchJD's CAGradWeighting (cvxpy/CLARABEL at its default accuracy, no rescale).
    # Where the two differ by more than 1e-6, ours has the smaller inner objective:
    # their inner weights are recovered from theirs, (w - 1/K) normalised.
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchjd")
    from torchjd.aggregation import CAGradWeighting

    rng = np.random.default_rng(0)
    worst, failures = 0.0, 0
    for t in range(30):
        K = int(rng.integers(2, 11))
        J = rng.standard_normal((K, int(rng.integers(K, 3 * K + 2))))
        if t % 2:
            J[1:] = -0.5 * J[:1] + 0.5 * J[1:]
        G = J @ J.T
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                wt = CAGradWeighting(c=0.5, norm_eps=0.0)(torch.tensor(G)).numpy()
            except TypeError:  # CLARABEL returned no point (w.value is None)
                failures += 1
                continue
        res = cagrad(gram=G, c=0.5, rescale=0)
        diff = np.linalg.norm((res.weights - wt) @ J) / np.linalg.norm(res.weights @ J)
        worst = max(worst, diff)
        if diff > 1e-6:
            x = np.clip(wt - 1.0 / K, 0.0, None)
            rho = rho_of(G, 0.5)
            theirs = inner_objective(G, x / x.sum(), rho)
            assert res.objective <= theirs + 1e-15 * G.diagonal().max()
        assert diff < 1e-3
    assert failures <= 5
    print(f"max relative direction difference vs torchjd: {worst:.2e} ({failures} failed)")


def test_a_tiny_gradient_next_to_a_large_one():
    # Colinear, both positive: the origin is outside the hull however short g_1 is;
    # the inner optimum is g_w = g_1, so d = g0 + c ||g0|| g_1 / ||g_1|| = (1 + c) g0,
    # with mu = c ||g0|| / ||g_1|| beyond 1e16 for the first.
    for tiny, c in ((1e-20, 0.4), (1.8e-5, 0.1)):
        J = np.array([[tiny], [1.0]])
        res = cagrad(J, c=c, rescale=0)
        assert res.method == "cagrad/exact" and res.converged
        np.testing.assert_allclose(res.direction, (1 + c) * J.mean(axis=0), rtol=1e-12)
