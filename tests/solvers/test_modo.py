"""MoDo: the projected step against a bisection projection, MGDA's fixed point, torchjd."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers
from paretomtl.solvers import MoDo, mgda_weights
from paretomtl.solvers.modo import simplex_projection
from tests.strategies import grads_matrices


def bisection_projection(y):
    """Proj onto the simplex by bisection on the threshold of sum(max(y - t, 0)) = 1.

    Independent of the sort: the threshold of the shifted vector y - max(y) lies in
    [-1, 0], where the sum decreases from >= 1 to 0.
    """
    z = np.asarray(y, dtype=np.float64) - np.max(y)
    lo, hi = -1.0, 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.clip(z - mid, 0, None).sum() > 1.0:
            lo = mid
        else:
            hi = mid
    x = np.clip(z - 0.5 * (lo + hi), 0, None)
    return x


def naive_modo(grams, gamma, rho, lam=None):
    K = grams[0].shape[0]
    lam = np.full(K, 1.0 / K) if lam is None else lam
    out = []
    for G in grams:
        lam = bisection_projection(lam - gamma * (G @ lam + rho * lam))
        out.append(lam)
    return out


vectors = st.integers(1, 12).flatmap(
    lambda K: st.tuples(
        st.lists(st.floats(-10, 10), min_size=K, max_size=K),
        st.sampled_from([1e-30, 1e-8, 1.0, 1e8, 1e30]),
    )
)


@given(vectors)
def test_projection_is_the_bisection_answer_and_on_the_simplex(case):
    values, scale = case
    y = np.array(values) * scale
    x = simplex_projection(y)
    assert (x >= 0).all()
    assert x.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(x, bisection_projection(y), rtol=0, atol=1e-12)
    # KKT of min ||x - y||^2 on the simplex: y - x = theta on the support, <= theta off it.
    support = x > 0
    theta = (y - x)[support]
    assert np.ptp(theta) <= 1e-12 * max(1.0, np.abs(y).max())
    assert ((y - x)[~support] <= theta.max() + 1e-12 * max(1.0, np.abs(y).max())).all()


def test_projection_of_points_on_the_simplex_is_the_identity_and_matches_cvxpy():
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(6))
    np.testing.assert_allclose(simplex_projection(p), p, atol=1e-15)
    y = rng.standard_normal(6) * 3
    x = cp.Variable(6)
    cp.Problem(cp.Minimize(cp.sum_squares(x - y)), [x >= 0, cp.sum(x) == 1]).solve()
    np.testing.assert_allclose(simplex_projection(y), x.value, atol=1e-6)
    with pytest.raises(ValueError, match="finite vector"):
        simplex_projection([1.0, np.nan])


@given(
    grads_matrices(max_tasks=8, max_dim=8),
    st.sampled_from([1e-3, 0.1, 1.0]),
    st.sampled_from([0.0, 0.1, 1.0]),
)
def test_steps_follow_the_papers_rule(J, gamma, rho):
    K = J.shape[0]
    rng = np.random.default_rng(K)
    noisy = [J + 0.3 * rng.standard_normal(J.shape) for _ in range(2)]
    grams = [Jn @ Jn.T for Jn in noisy] + [J @ J.T] * 2
    modo = MoDo(K, gamma=gamma, rho=rho)
    expected = naive_modo(grams, gamma, rho)
    for G, lam in zip(grams, expected, strict=True):
        res = modo.update(gram=G)
        scale = max(1.0, gamma * np.abs(G).max())
        np.testing.assert_allclose(res.weights, lam, rtol=0, atol=1e-12 * scale)
        assert res.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert modo.step == len(grams)


@given(grads_matrices(min_tasks=2, max_tasks=6, max_dim=8))
def test_mgda_weights_are_a_fixed_point_without_regularisation(J):
    # KKT of min w^T G w on the simplex: w = Proj(w - gamma G w) for every gamma > 0.
    G = J @ J.T
    K = J.shape[0]
    w = mgda_weights(G)
    modo = MoDo(K, gamma=0.5 / max(G.diagonal().max(), 1e-300), rho=0.0)
    state = modo.state_dict()
    state["lambda"] = w
    modo.load_state_dict(state)
    np.testing.assert_allclose(modo.update(gram=G).weights, w, atol=1e-9)


def test_repeated_steps_converge_to_the_regularised_minimiser():
    # With a fixed G, MoDo is projected gradient descent on
    # 0.5 w^T (G + rho I) w over the simplex: it reaches the minimiser (cvxpy).
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(3)
    J = rng.standard_normal((4, 6))
    G, rho = J @ J.T, 0.1
    L = np.linalg.eigvalsh(G).max() + rho
    modo = MoDo(4, gamma=1.0 / L, rho=rho)
    for _ in range(3000):
        res = modo.update(gram=G)
    w = cp.Variable(4)
    H = G + rho * np.eye(4)
    cp.Problem(cp.Minimize(cp.quad_form(w, cp.psd_wrap(H))), [w >= 0, cp.sum(w) == 1]).solve()
    np.testing.assert_allclose(res.weights, w.value, atol=1e-5)


def test_direction_uses_the_new_weights():
    rng = np.random.default_rng(1)
    J = rng.standard_normal((3, 5))
    res = MoDo(3).update(J)
    np.testing.assert_allclose(res.direction, res.weights @ J, rtol=1e-14)
    np.testing.assert_allclose(res.gram, J @ J.T, rtol=1e-14)
    assert res.objective == pytest.approx(res.weights @ J @ J.T @ res.weights)


@pytest.mark.parametrize("family", ["gaussian", "scaled", "zeros", "colinear", "low_rank"])
@pytest.mark.parametrize("K", [2, 5, 10, 32])
def test_agrees_with_torchjd_over_a_run(family, K):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchjd")
    from torchjd.aggregation import MoDoWeighting

    rng = np.random.default_rng(K)
    ours, theirs = MoDo(K, gamma=0.1, rho=0.1), MoDoWeighting(gamma=0.1, rho=0.1)
    worst = 0.0
    for _ in range(12):
        J = rng.standard_normal((K, K + 2))
        if family == "scaled":
            J *= 10.0 ** rng.uniform(-3, 1, size=(K, 1))
        elif family == "zeros":
            J[rng.random(K) < 0.4] = 0.0
        elif family == "colinear":
            J[1] = 2.0 * J[0]
        elif family == "low_rank":
            J = rng.standard_normal((K, 1)) @ rng.standard_normal((1, K + 2))
        G = J @ J.T
        w = ours.update(gram=G).weights
        t = theirs(torch.from_numpy(G)).numpy()
        worst = max(worst, np.abs(w - t).max() / np.abs(t).max())
    assert worst <= 1e-6


def test_torchjd_loses_the_simplex_on_huge_steps_and_we_do_not():
    # The documented difference: the peers' projection subtracts a threshold of the
    # order of the step from entries of that order, which rounds away.
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchjd")
    from torchjd.aggregation import MoDoWeighting

    G = np.diag([1e40, 2e40])
    theirs = MoDoWeighting(gamma=0.1, rho=0.0)(torch.from_numpy(G)).numpy()
    ours = MoDo(2, gamma=0.1, rho=0.0).update(gram=G).weights
    assert theirs.sum() < 0.5  # off the simplex
    np.testing.assert_array_equal(ours, [1.0, 0.0])  # Proj([-5e38, -1e39]) = e_0


@given(grads_matrices(max_tasks=8, max_dim=6))
def test_weights_stay_finite_on_hard_families(J):
    K = J.shape[0]
    modo = MoDo(K, gamma=1.0)
    for G in (J @ J.T, 1e30 * (J @ J.T), 1e-30 * (J @ J.T)):
        w = modo.update(gram=G).weights
        assert np.isfinite(w).all() and (w >= 0).all()
        assert w.sum() == pytest.approx(1.0, abs=1e-12)


def test_k128_and_rank_deficient():
    rng = np.random.default_rng(2)
    J = rng.standard_normal((128, 5)) * 10.0 ** rng.uniform(-15, 15, size=(128, 1))
    modo = MoDo(128)
    for _ in range(3):
        w = modo.update(J).weights
    assert np.isfinite(w).all() and w.sum() == pytest.approx(1.0, abs=1e-12)


def test_overflow_is_refused_and_changes_nothing():
    modo = MoDo(2, gamma=1e10)
    before = modo.state_dict()
    with pytest.raises(ValueError, match="overflows float64"):
        modo.update(gram=np.diag([1e300, 1.0]))
    assert solvers_same(before, modo.state_dict())


def solvers_same(a, b):
    from paretomtl.state import same_plain

    return same_plain(a, b)


def test_state_round_trip_is_bit_identical():
    rng = np.random.default_rng(5)
    grams = [(lambda J: J @ J.T)(rng.standard_normal((4, 6))) for _ in range(10)]
    a = MoDo(4, gamma=0.3, rho=0.05)
    for G in grams[:5]:
        a.update(gram=G)
    saved = a.state_dict()
    b = MoDo(4)
    b.load_state_dict(saved)
    assert (b.gamma, b.rho, b.step) == (0.3, 0.05, 5)
    for G in grams[5:]:
        np.testing.assert_array_equal(a.update(gram=G).weights, b.update(gram=G).weights)
    a.reset()
    np.testing.assert_array_equal(a.weights, np.full(4, 0.25))
    assert a.step == 0


@pytest.mark.parametrize(
    "key, bad, match",
    [
        ("lambda", np.array([0.5, 0.5, 0.5]), "simplex"),
        ("lambda", np.array([1.5, -0.5, 0.0]), "lambda"),
        ("lambda", np.array([np.nan, 0.5, 0.5]), "lambda"),
        ("lambda", np.array([0.5, 0.5]), "shape"),
        ("step", -1, "step"),
        ("method", "GradVac", "method"),
        ("num_tasks", 4, "tasks"),
    ],
)
def test_corrupt_state_is_refused_and_changes_nothing(key, bad, match):
    modo = MoDo(3)
    modo.update(gram=np.diag([1.0, 2.0, 3.0]))
    before = modo.state_dict()
    state = modo.state_dict()
    state[key] = bad
    with pytest.raises(ValueError, match=match):
        modo.load_state_dict(state)
    assert solvers_same(before, modo.state_dict())
    state = modo.state_dict()
    state["hyperparameters"]["gamma"] = 0.0
    with pytest.raises(ValueError, match="gamma"):
        modo.load_state_dict(state)


def test_bad_options_and_inputs_name_the_argument():
    with pytest.raises(ValueError, match="gamma"):
        MoDo(2, gamma=0.0)
    with pytest.raises(ValueError, match="rho"):
        MoDo(2, rho=-1.0)
    with pytest.raises(ValueError, match="num_tasks"):
        MoDo(0)
    with pytest.raises(ValueError, match="3 gradients"):
        MoDo(2).update(gram=np.eye(3))
    with pytest.raises(ValueError, match="not positive semi-definite"):
        MoDo(2).update(gram=np.array([[1.0, 2.0], [2.0, 1.0]]))


def test_registered_as_a_stateful_method():
    entry = solvers.info("modo")
    assert entry.kind == "stateful-gradient" and "Three-Way Trade-Off" in entry.paper
    m = solvers.method("modo", num_tasks=3, gamma=0.2)
    assert isinstance(m, MoDo) and m.gamma == 0.2
