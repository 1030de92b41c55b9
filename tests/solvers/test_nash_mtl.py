"""Nash-MTL: Newton's solution of G a = 1/a against cvxpy (the paper's route), torchjd."""

import warnings

import numpy as np
import pytest
from hypothesis import example, given

from paretomtl.solvers import NashMTL, info
from paretomtl.solvers.nash_mtl import solve_power_equation
from tests.strategies import grads_matrices


def min_norm_in_hull(G):
    """min over the simplex of w^T G w, by cvxpy (independent of the package)."""
    cp = pytest.importorskip("cvxpy")
    K = G.shape[0]
    evals, evecs = np.linalg.eigh(G)
    L = evecs * np.sqrt(np.clip(evals, 0.0, None))
    w = cp.Variable(K)
    cp.Problem(cp.Minimize(cp.sum_squares(L.T @ w)), [w >= 0, cp.sum(w) == 1]).solve()
    return float(np.clip(w.value, 0, None) @ G @ np.clip(w.value, 0, None))


def min_norm_of_unit_gradients(J):
    """min over the simplex of ||w^T J_n||^2, J_n the rows of J scaled to unit norm
    (0 where a row is zero: the origin is then in the hull), by cvxpy/CLARABEL in the
    gradients' space. (Through a factor of G from eigh, directions of eigenvalues at
    rounding level carry errors of order sqrt(eps): 5.8e-8 was reported for a hull
    that holds the origin exactly, checked in fractions.)"""
    cp = pytest.importorskip("cvxpy")
    norms = np.linalg.norm(J, axis=1)
    if np.any(norms == 0.0):
        return 0.0
    Jn = J / norms[:, None]
    K = J.shape[0]
    w = cp.Variable(K)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(Jn.T @ w)), [w >= 0, cp.sum(w) == 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        problem.solve(solver=cp.CLARABEL)
    x = np.clip(np.asarray(w.value, dtype=float), 0.0, None)
    return float(np.sum(((x / x.sum()) @ Jn) ** 2))


def paper_sequential_route(G, iterations=60):
    """Navon et al.'s Algorithm 1 step: a sequence of convex problems (cvxpy), each
    minimising sum(G a) + phi'(a_prev)^T (a - a_prev), phi(a) = sum log a + sum log G a,
    subject to log(a_i) + log((G a)_i) >= 0; written from the paper, run to a fixed
    point (change below 1e-12) instead of the authors' 20 steps."""
    cp = pytest.importorskip("cvxpy")
    K = G.shape[0]
    a_prev = np.ones(K)
    a = cp.Variable(K, nonneg=True)
    prev = cp.Parameter(K)
    slope = cp.Parameter(K)
    Ga = G @ a
    constraints = [-cp.log(a[i]) - cp.log(Ga[i]) <= 0 for i in range(K)]
    problem = cp.Problem(cp.Minimize(cp.sum(Ga) + slope @ (a - prev)), constraints)
    for _ in range(iterations):
        prev.value = a_prev
        slope.value = 1 / a_prev + (1 / (G @ a_prev)) @ G
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            problem.solve(solver=cp.ECOS, max_iters=500)
        assert a.value is not None, problem.status
        new = np.asarray(a.value, dtype=float)
        if np.max(np.abs(new - a_prev)) <= 1e-12 * np.max(new):
            return new
        a_prev = new
    return a_prev


def test_registered_as_stateful():
    assert info("nash-mtl").kind == "stateful-gradient"
    assert "ICML 2022" in info("nash-mtl").paper


@given(grads_matrices(min_tasks=1, max_tasks=8, max_dim=10))
# Near-singular G (eigenvalues 6e-10..48), a solution with weights ~5e4: residual
# 5.7e-6, within rounding of G a (mpmath agrees to 1e-8), was reported unconverged.
@example(
    J=np.array(
        [
            [0.20479052, 0.53602648, 0.0182921, -0.34977941, 0.12202089],
            [0.13359443, 0.34713092, 0.01362438, -0.22539228, 0.08193185],
            [-0.18786388, -0.49084917, -0.0170903, 0.32065245, -0.11421253],
            [1.56532927, 4.07116818, 0.15033813, -2.648198, 0.94168301],
            [-1.33699706, -3.47939056, -0.12890211, 2.26304978, -0.80522917],
        ]
    )
)
# Nearly colinear rows whose hull holds the origin exactly (slopes in fractions).
@example(
    J=np.array(
        [
            [0.466688, -0.03408753],
            [-0.03372789, 0.00191137],
            [0.52246366, -0.0368796],
            [0.91791492, -0.06335104],
            [-0.39796533, 0.02928364],
        ]
    )
)
def test_solution_satisfies_the_bargaining_equation(J):
    G = J @ J.T
    res = NashMTL(J.shape[0], max_norm=0.0)(J)
    a = res.weights
    assert np.all(np.isfinite(a))
    assert res.converged
    if res.method == "nash-mtl/newton":
        assert np.all(a > 0)
        # each task's utility g_i^T d is 1 / a_i, to 1e-10 or to what rounding in G a
        # allows where it cancels (nearly opposite gradients)
        rounding = 64 * J.shape[0] * 2.2e-16 * np.max(a * (np.abs(G) @ a))
        assert res.kkt_residual <= max(1e-10, rounding)
        np.testing.assert_allclose(a * (G @ a), 1.0, rtol=0, atol=max(1e-9, 2 * rounding))
        np.testing.assert_allclose(res.direction, a @ J)
    elif G.diagonal().max() == 0:
        np.testing.assert_array_equal(a, 0.0)
    else:
        # no solution: the origin is in the hull of the unit gradients (checked by
        # cvxpy, whose accuracy there is ~1e-12; the method's threshold is 64 K eps)
        assert min_norm_of_unit_gradients(J) <= 1e-8
        S = list(res.extras["unbounded_tasks"])
        assert S
        d = res.direction
        top = np.abs(J).max() * max(np.abs(a).max(), 1.0)
        # the limit direction is orthogonal to every task whose weight diverges
        np.testing.assert_allclose(J[S] @ d, 0.0, atol=1e-8 * top * np.abs(J).max())


@pytest.mark.parametrize("seed", range(3))
def test_agrees_with_the_papers_sequential_convex_route(seed):
    rng = np.random.default_rng(seed)
    K = 2 + seed
    J = rng.standard_normal((K, K + 2))
    J[1:] += 0.4 * J[:1]  # (with strong conflicts the linearised problems can be
    G = J @ J.T  # unbounded: the route then fails, see the direct convex test below)
    G = G / G.diagonal().max()
    assert min_norm_in_hull(G) > 1e-4
    sol = solve_power_equation(G, 1.0)
    assert sol.route == "newton" and sol.converged
    ref = paper_sequential_route(G)
    assert np.max(np.abs(ref * (G @ ref) - 1)) < 1e-7  # the reference converged
    np.testing.assert_allclose(sol.weights, ref, rtol=1e-6)


def direct_convex_reference(G):
    """min 1/2 a^T G a - sum log a by cvxpy (the exponential cone), a > 0."""
    cp = pytest.importorskip("cvxpy")
    K = G.shape[0]
    evals, evecs = np.linalg.eigh(G)
    L = evecs * np.sqrt(np.clip(evals, 0.0, None))
    a = cp.Variable(K)
    problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(L.T @ a) - cp.sum(cp.log(a))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return np.asarray(a.value, dtype=float)


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_the_direct_convex_program(seed):
    rng = np.random.default_rng(100 + seed)
    K = 2 + seed
    J = rng.standard_normal((K, K + 1))
    J[1:] -= 0.6 * J[:1]  # conflicting
    G = J @ J.T
    G = G / G.diagonal().max()
    assert min_norm_in_hull(G) > 1e-4
    sol = solve_power_equation(G, 1.0)
    assert sol.route == "newton" and sol.converged
    ref = direct_convex_reference(G)
    assert np.max(np.abs(ref * (G @ ref) - 1)) < 1e-7  # the reference converged
    np.testing.assert_allclose(sol.weights, ref, rtol=1e-6)
    assert sol.residual < np.max(np.abs(ref * (G @ ref) - 1))


def test_orthogonal_gradients_closed_form():
    # G diagonal: a_i = 1 / ||g_i||, d = sum_i g_i / ||g_i||.
    J = np.diag([3.0, 0.5, 2.0])
    res = NashMTL(3, max_norm=0.0)(J)
    np.testing.assert_allclose(res.weights, [1 / 3.0, 2.0, 0.5], rtol=1e-14)
    np.testing.assert_allclose(res.direction, [1.0, 1.0, 1.0], rtol=1e-14)


def test_k2_closed_form():
    # K = 2: a_1 (G11 a_1 + G12 a_2) = 1 = a_2 (G12 a_1 + G22 a_2). With r = a_1 / a_2:
    # G11 r^2 + G12 r = G12 r + G22, so r = sqrt(G22 / G11), then a_2 from either.
    rng = np.random.default_rng(3)
    for _ in range(20):
        J = rng.standard_normal((2, 3))
        J[1] = -0.4 * J[0] + J[1]
        G = J @ J.T
        r = np.sqrt(G[1, 1] / G[0, 0])
        den = G[0, 1] * r + G[1, 1]
        if den <= 0:
            continue  # opposite enough that no solution exists
        a2 = 1 / np.sqrt(den)
        np.testing.assert_allclose(NashMTL(2, max_norm=0.0)(J).weights, [r * a2, a2], rtol=1e-12)


def test_no_solution_cases():
    # Opposite gradients: the limit direction is 0, both weights diverge.
    res = NashMTL(2, max_norm=0.0)(np.array([[1.0, 0.0], [-2.0, 0.0]]))
    assert res.method == "nash-mtl/reduced" and res.extras["unbounded_tasks"] == (0, 1)
    np.testing.assert_allclose(res.direction, 0.0)
    assert np.all(np.isfinite(res.weights))
    # [g, -g, h] with h orthogonal: the pair cancels, h gets its own solution h / |h|.
    J = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0]])
    res = NashMTL(3, max_norm=0.0)(J)
    assert res.extras["unbounded_tasks"] == (0, 1)
    np.testing.assert_allclose(res.direction, [0.0, 1.0], atol=1e-14)
    # A zero gradient: the other tasks solve on their own.
    J = np.array([[2.0, 0.0], [0.0, 0.0], [0.0, 4.0]])
    res = NashMTL(3, max_norm=0.0)(J)
    assert res.extras["unbounded_tasks"] == (1,)
    np.testing.assert_allclose(res.weights, [0.5, 0.0, 0.25], rtol=1e-14)
    # All zero.
    res = NashMTL(2)(np.zeros((2, 3)))
    np.testing.assert_array_equal(res.direction, 0.0)


@pytest.mark.parametrize("power", [1.0, 0.5, 2.0])
def test_reduced_route_is_the_limit_of_regularised_problems(power):
    # With G + eps I a solution exists; its direction tends to the reduced one.
    rng = np.random.default_rng(1)
    J = rng.standard_normal((5, 6))
    J[1] = -2.0 * J[0]
    J[3] = 0.0
    G = J @ J.T
    sol = solve_power_equation(G, power)
    assert sol.route == "reduced" and sol.unbounded == (0, 1, 3)
    d = sol.weights @ J
    errors = []
    for eps in (1e-4, 1e-6, 1e-8):
        reg = solve_power_equation(G + eps * np.eye(5), power)
        assert reg.route == "newton" and reg.converged
        errors.append(np.linalg.norm(reg.weights @ J - d) / np.linalg.norm(d))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 2e-3


def test_max_norm_clips_from_the_gram():
    rng = np.random.default_rng(5)
    J = rng.standard_normal((4, 7)) * 10
    free = NashMTL(4, max_norm=0.0)(J)
    norm = np.linalg.norm(free.direction)
    assert norm > 0.5
    res = NashMTL(4, max_norm=0.5)(J)
    assert res.extras["clipped"] and res.extras["norm"] == pytest.approx(norm, rel=1e-12)
    np.testing.assert_allclose(np.linalg.norm(res.direction), 0.5, rtol=1e-12)
    np.testing.assert_allclose(res.weights, free.weights * 0.5 / norm, rtol=1e-12)
    loose = NashMTL(4, max_norm=1e9)(J)
    assert not loose.extras["clipped"]
    np.testing.assert_array_equal(loose.weights, free.weights)


def test_update_weights_every_reuses_the_last_solution():
    rng = np.random.default_rng(6)
    nash = NashMTL(3, max_norm=0.0, update_weights_every=3)
    first = nash(rng.standard_normal((3, 5)))
    for _ in range(2):
        res = nash(rng.standard_normal((3, 5)))
        assert not res.extras["solved"] and res.method == "nash-mtl/reused"
        np.testing.assert_array_equal(res.weights, first.weights)
    J = rng.standard_normal((3, 5))
    res = nash(J)  # step 3: solved again
    assert res.extras["solved"]
    np.testing.assert_allclose(res.weights, NashMTL(3, max_norm=0.0)(J).weights, rtol=1e-15)
    assert nash.step == 4


def test_scale_behaviour():
    # a(tJ) = a(J) / t: the direction does not depend on the scale, at any scale.
    J = np.random.default_rng(8).standard_normal((4, 6))
    base = NashMTL(4, max_norm=0.0)(J)
    for t in (1e-30, 1e-5, 1e5, 1e30):
        res = NashMTL(4, max_norm=0.0)(J * t)
        np.testing.assert_allclose(res.weights * t, base.weights, rtol=1e-10)
        np.testing.assert_allclose(res.direction, base.direction, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("K", [32, 128])
def test_large_k(K):
    rng = np.random.default_rng(K)
    J = rng.standard_normal((K, 2 * K)) * 10.0 ** rng.uniform(-3, 3, size=(K, 1))
    res = NashMTL(K, max_norm=0.0)(J)
    assert res.converged and res.kkt_residual <= 1e-10
    G = J @ J.T
    np.testing.assert_allclose(res.weights * (G @ res.weights), 1.0, atol=1e-9)


def test_state_round_trip_is_bit_identical():
    rng = np.random.default_rng(9)
    steps = [rng.standard_normal((3, 4)) for _ in range(8)]
    a = NashMTL(3, update_weights_every=3)
    for J in steps[:4]:
        a(J)
    state = a.state_dict()
    b = NashMTL(3)  # other options: the state brings them
    b.load_state_dict(state)
    assert b.update_weights_every == 3
    for J in steps[4:]:
        ra, rb = a(J), b(J)
        np.testing.assert_array_equal(ra.weights, rb.weights)
        np.testing.assert_array_equal(ra.direction, rb.direction)
    assert a.step == b.step == 8


def test_corrupt_state_is_refused_and_nothing_changes():
    nash = NashMTL(3)
    nash(np.eye(3))
    before = nash.state_dict()
    for key, bad in (
        ("step", -1),
        ("weights", np.array([1.0, np.nan, 1.0])),
        ("weights", np.ones(4)),
        ("num_tasks", 4),
    ):
        state = {**before, key: bad}
        with pytest.raises(ValueError, match=key):
            nash.load_state_dict(state)
    for key, bad in (("update_weights_every", 0), ("max_norm", -1.0), ("tol", 2.0)):
        state = {**before, "hyperparameters": {**before["hyperparameters"], key: bad}}
        with pytest.raises(ValueError, match=key):
            nash.load_state_dict(state)
    after = nash.state_dict()
    np.testing.assert_array_equal(after["weights"], before["weights"])
    assert after["step"] == before["step"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_tasks"):
        NashMTL(0)
    with pytest.raises(ValueError, match="max_norm"):
        NashMTL(2, max_norm=-1.0)
    with pytest.raises(ValueError, match="update_weights_every"):
        NashMTL(2, update_weights_every=0)
    with pytest.raises(ValueError, match="K must stay the same"):
        NashMTL(2)(np.eye(3))


def test_against_torchjd():
    # TorchJD's NashMTL (the authors' sequential cvxpy/ECOS route, on a Jacobian).
    # Where its own residual max|a (G a) - 1| is below 1e-7 the weights agree within
    # 1e-6; elsewhere its solver stopped early and ours has the smaller residual.
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchjd")
    from torchjd.aggregation import NashMTL as TorchNash

    rng = np.random.default_rng(0)
    agreed = 0
    for t in range(16):
        K = int(rng.integers(2, 8))
        J = rng.standard_normal((K, int(rng.integers(K, 3 * K + 2))))
        if t % 2:
            J[1:] = -0.5 * J[:1] + 0.5 * J[1:]
        G = J @ J.T
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = TorchNash(n_tasks=K, max_norm=0.0).weighting(torch.tensor(J)).numpy()
        theirs = theirs.astype(np.float64)
        res = NashMTL(K, max_norm=0.0)(J)
        their_residual = float(np.max(np.abs(theirs * (G @ theirs) - 1)))
        if their_residual < 1e-7:
            np.testing.assert_allclose(res.weights, theirs, rtol=1e-6)
            agreed += 1
        else:
            assert res.kkt_residual < their_residual
    assert agreed >= 8


def test_norms_over_thirty_decades():
    # Task scales from 1e-15 to 1e15 (the solve is rescaled task by task).
    rng = np.random.default_rng(12)
    for _ in range(10):
        J = rng.standard_normal((6, 8)) * 10.0 ** rng.uniform(-15, 15, size=(6, 1))
        res = NashMTL(6, max_norm=0.0)(J)
        assert res.converged and res.method == "nash-mtl/newton"
        a = res.weights
        np.testing.assert_allclose(a * ((J @ J.T) @ a), 1.0, atol=1e-9)
