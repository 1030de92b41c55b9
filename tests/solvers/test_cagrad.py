"""CAGrad: the exact inner solve against cvxpy (dual and primal), scipy, torchjd."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import example, given, note, settings
from hypothesis import strategies as st

from paretomtl.solvers import cagrad, info, mean
from tests.strategies import grads_matrices


def inner_objective(G, w, rho):
    K = G.shape[0]
    return float(w @ G @ np.full(K, 1.0 / K)) + rho * math.sqrt(max(float(w @ G @ w), 0.0))


def inner_objective_from_grads(J, w, rho):
    """F(w) in the gradients' space: g_w = w J is formed with an error of about
    K eps max_i ||g_i|| (w on the simplex), so F is within about
    K eps (1 + c) max_i ||g_i||^2 of the truth. The Gram route (sqrt(w^T G w)) loses
    half the digits where g_w is near 0: an error up to rho sqrt(K eps max_i G_ii)."""
    g_w = w @ J
    return float(g_w @ J.mean(axis=0)) + rho * float(np.linalg.norm(g_w))


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
    pytest.importorskip("cvxpy")
    # Stated on J / max_i ||g_i|| (d scales as J, t as J^2): CLARABEL fails on raw
    # rows whose norms span 7 decades (1e-3 .. 6e3).
    top = float(np.max(np.linalg.norm(J, axis=1)))
    if top > 0.0:
        d, t = cvxpy_primal_unit(J / top, c)
        return d * top, t * top * top
    return np.zeros(J.shape[1]), 0.0


def cvxpy_primal_unit(J, c):
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
# Norms 7 decades apart, the origin in the hull, the cone {0} outside the ball: the
# ridged cone "projection" was taken (converged=False); the exact root is right.
@example(J=np.array([[-6.42355625e-05], [1.31289033e03]]), c=0.1)
# The origin in the hull: F = 0 at g_w = 0, which the Gram route sees as ~1e-9.
@example(J=np.array([[-0.80283694], [0.14536592]]), c=2.0)
@example(J=np.array([[2.04091912], [-2.55566503]]), c=2.0)
@example(
    J=np.array(
        [
            [1.36043602e00, 3.23440406e00],
            [7.07616791e-07, -2.79065518e-06],
            [9.97646364e02, 4.91877267e02],
            [-1.54048056e00, 1.66718642e00],
        ]
    ),
    c=0.4,
)
# Two tasks 7-9 decades below the others hold the optimum (F < 0, mu ~ 1e7): the
# bounded QPs' absolute tolerance could not tell them apart (F = +0.004 against
# cvxpy's -0.134; now -0.154).
@example(
    J=np.array(
        [
            [2.44506832e03, -2.56903562e03, 1.24542621e04],
            [2.65340093e-07, -1.35495141e-06, 9.14638306e-07],
            [7.43263770e02, 5.39824342e02, -4.01120311e02],
            [-1.62219346e-04, -7.99000001e-05, 5.29773953e-06],
        ]
    ),
    c=0.4,
)
# A tiny task and a small one: at mu = 1e6 the bounded QP stopped short of its
# optimum (its residual 1e-14 on G's scale, the optimum's value 2e-14), psi fell
# back below rho, and the search ended at mu = 1e9 (F = 4.06 against -5556; now
# -5559), reported converged with a KKT residual of 1e-8.
@example(
    J=np.array(
        [
            [7.90903277e04, -1.17371110e05, -5.32370811e05],
            [-1.94201457e05, 7.26291182e05, 6.04415855e05],
            [1.46621609e-05, 1.81483668e-05, -2.89031164e-05],
            [1.22561952e-01, -2.25396361e-02, 1.29542640e-01],
        ]
    ),
    c=0.4,
)
# The cone {0} within the ball, reached only with a multiplier ~1e8 on the tiny
# task: a ridge on lambda itself left d at g0 (certificate 0.5, converged=False).
@example(J=np.array([[1.11504742e03], [-6.62649771e-06]]), c=2.0)
@example(
    J=np.array(
        [
            [2779.441203655959, -2197.8363103701877],
            [0.0009415680027542943, -0.002211206388593849],
            [0.036445366208501924, 0.03805168572379664],
            [-19081.979472477353, 97.38965843807198],
        ]
    ),
    c=2.0,
)
# The cone {0}: eigenvalues of G at rounding level (square roots ~1e-8) in the
# factor left d 2e-9 outside the cone (converged=False).
@example(
    J=np.array(
        [
            [49541.54247075384, -39069.26817008054],
            [-0.033253982033076335, 0.4312578799847478],
            [-6315.828055215951, -369.016040730345],
        ]
    ),
    c=2.0,
)
# Tasks 6.5 decades apart, the cone {0}: a factor of G itself (not of the unit
# gradients') left d 1e-4 outside the cone; the inner weights from MGDA's point on
# G had ||g_w|| = 3e-3 (F = 23 against 0).
@example(
    J=np.array(
        [
            [0.0019316865650144855, -0.003659064593828615],
            [-10366.647116740054, 1489.2923575747807],
            [0.004296208835941227, 0.0037457437670522014],
        ]
    ),
    c=2.0,
)
# Nearly colinear rows (G's eigenvalues down to 1e-10, mu = 2.3e4): the KKT
# residual stays at 2.0e-9 (2.8e-9 in mpmath), F within 1e-12 of cvxpy's.
@example(
    J=np.array(
        [
            [-0.6072314104066439, 0.348705349493357, -0.10279875691454153],
            [-0.9773672968616943, 0.560879862047851, -0.1684366268609181],
            [2.859658881324167, -1.6449701029298551, 0.4909770893545313],
            [-4.3151887691839965, 2.4822965112050315, -0.7416088895492968],
        ]
    ),
    c=2.0,
)
@example(
    J=np.array(
        [
            [0.36675523124234216, -0.26181108511082485, -0.32062372710802095],
            [1.4697253882012509, -1.0445734142073968, -1.2799082992182507],
            [1.1516866025705224, -0.8188307496723927, -1.0025028188518788],
            [0.2210324927623608, -0.15659802538675657, -0.19253432033077988],
            [-1.5128224497998257, 1.0757209942059365, 1.3169908156083094],
            [1.122917169341279, -0.7981807548280723, -0.9772751193766286],
        ]
    ),
    c=2.0,
)
def test_inner_optimum_is_no_worse_than_cvxpy_and_certified(J, c):
    note(f"J = {J.tolist()!r}")  # exactly (numpy's repr rounds to 8 digits)
    G = J @ J.T
    scale = float(G.diagonal().max())
    res = cagrad(J, c=c)
    assert np.all(np.isfinite(res.weights))
    if not res.converged:
        # The documented limit: nearly singular G at large mu fixes w* only to a
        # KKT residual that grows with mu (2.8e-9 by mpmath at the returned weights
        # of the mu = 2.3e4 example below, 1.9e-7 at mu = 1.3e5): rounding in the
        # QP's z (K eps on G's scale) is amplified by (1 + mu) into e = (1 + mu) z
        # - 1/K and again by mu in gamma = b + mu G w; 64 K eps mu^2 bounds both
        # observed cases (4.7e-7 and 2.2e-5; an empirical bound, not a theorem).
        # The objective is still checked against cvxpy below.
        mu = res.extras["mu"]
        assert res.method == "cagrad/exact" and mu > 1e3
        assert res.kkt_residual <= 64 * J.shape[0] * 2.2e-16 * mu * mu
    if scale == 0.0:
        return
    rho = rho_of(G, c)
    w = res.extras["inner_weights"]
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
    # Both evaluated in the gradients' space (error <= ~K eps (1 + c) scale, far
    # below the 1e-12 scale allowed; see inner_objective_from_grads).
    ours = inner_objective_from_grads(J, w, rho)
    # cvxpy on G / max_i G_ii (the minimiser is unchanged with rho / sqrt(scale)):
    # CLARABEL returns no point on some raw Gram matrices of norm ~1e9.
    theirs = inner_objective_from_grads(J, cvxpy_inner(G / scale, rho / math.sqrt(scale)), rho)
    slack = 1e-12 * scale
    if res.extras["dual_cone"]:
        # The inner optimum is g_w = 0 (F = 0); its weights are a min-norm point of
        # the hull, which any solver on G determines only to ||g_w||^2 ~ K eps scale
        # (the origin strictly inside the hull, norms over 11 decades: ||g_w|| ~ 1e-6
        # next to ||g_i|| ~ 2e4, F = 0.027 against cvxpy's 0.007, both above 0).
        # F <= (||g0|| + rho) ||g_w|| for any w, so that is the slack on F.
        g_w = float(np.linalg.norm(w @ J))
        hull_zero = math.sqrt(64 * J.shape[0] * 2.2e-16 * scale)
        assert g_w <= hull_zero
        slack = max(slack, (np.linalg.norm(J.mean(axis=0)) + rho) * hull_zero)
    assert ours <= theirs + slack
    # res.objective is F on G: sqrt(w^T G w), with w^T G w off by up to
    # delta = 4 K eps scale, is off by min(sqrt(delta), delta / (2 ||g_w||)).
    delta = 4 * J.shape[0] * 2.2e-16 * scale
    n_w = float(np.linalg.norm(w @ J))
    gram_err = rho * (math.sqrt(delta) if n_w == 0.0 else min(math.sqrt(delta), delta / (2 * n_w)))
    assert res.objective == pytest.approx(ours, rel=1e-9, abs=max(1e-12 * scale, 2 * gram_err))
    if not res.extras["dual_cone"] and res.converged:
        assert res.kkt_residual <= 1e-9


@settings(max_examples=30)  # each example calls cvxpy
@given(
    grads_matrices(min_tasks=2, max_tasks=5, max_dim=6, allow_zero_rows=False),
    st.sampled_from([0.2, 0.4, 0.9]),
)
@example(J=np.array([[2.58751648e03], [-1.12508153e-03], [6.43153973e03], [5.48296192e-01]]), c=0.9)
# The origin in the hull through a gradient 9 decades below the others: the cone
# {0} is outside the ball, but its ridged "projection" passed an absolute gap test
# (the tiny task's improvement was -0.13 of its own scale); the root is right.
@example(
    J=np.array(
        [
            [1.36043602e00, 3.23440406e00],
            [7.07616791e-07, -2.79065518e-06],
            [9.97646364e02, 4.91877267e02],
            [-1.54048056e00, 1.66718642e00],
        ]
    ),
    c=0.4,
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
# Zero rows: their multipliers in the cone projection were left to nnls's tolerance
# (~2e-5, changing with the rounding of J * t); they are 0 now.
@example(
    J=np.array(
        [
            [-0.80193143, -1.324359, -0.24836162, 0.42044524, 1.13604653],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.27276878, -1.23332866, -0.95826521, 1.60001909, 0.20288244],
            [-1.73213484, -0.08369619, -1.16322597, -0.62928809, -0.48800582],
            [0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    ),
    seed=0,
)
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
