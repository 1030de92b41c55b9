"""SDMGrad: the inner loop against a plain numpy loop, its fixed point (cvxpy), torchjd."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers
from paretomtl.solvers import SDMGrad, mgda_weights
from paretomtl.state import same_plain
from tests.solvers.test_modo import bisection_projection
from tests.strategies import grads_matrices


def naive_sdmgrad(grams, lambda_, lr, momentum, n_iter, pref_vector=None, eps=0.0):
    """Xiao et al.'s update with the authors' heavy-ball inner loop, on plain numpy."""
    K = grams[0].shape[0]
    pref_vector = np.full(K, 1.0 / K) if pref_vector is None else pref_vector
    w = np.full(K, 1.0 / K)
    out = []
    for G in grams:
        s = np.mean(np.sqrt(np.maximum(np.diag(G), 0)))
        A = G / (s**2 + eps) if s**2 + eps > 0 else np.zeros_like(G)
        v = None
        for _ in range(n_iter):
            g = A @ (w + lambda_ * pref_vector)
            v = g if v is None else momentum * v + g
            w = bisection_projection(w - lr * v)
        out.append((w + lambda_ * pref_vector) / (1 + lambda_))
    return out


@given(
    grads_matrices(max_tasks=6, max_dim=8),
    st.sampled_from([0.0, 0.3, 2.0]),
    st.sampled_from([0.05, 0.5]),
    st.sampled_from([0.0, 0.5]),
    st.integers(1, 6),
)
def test_steps_follow_the_papers_rule(J, lambda_, lr, momentum, n_iter):
    K = J.shape[0]
    rng = np.random.default_rng(K)
    noisy = [J + 0.2 * rng.standard_normal(J.shape) for _ in range(2)]
    grams = [Jn @ Jn.T for Jn in noisy] + [J @ J.T]
    sdm = SDMGrad(K, lambda_=lambda_, lr=lr, momentum=momentum, n_iter=n_iter)
    for G, expected in zip(grams, naive_sdmgrad(grams, lambda_, lr, momentum, n_iter), strict=True):
        res = sdm.update(gram=G)
        # lr * ||A|| <= 0.5 K: each step amplifies rounding by at most that (the
        # projection is non-expansive), hence the tolerance.
        np.testing.assert_allclose(res.weights, expected, rtol=0, atol=1e-11 * (1 + K) ** n_iter)
        assert res.weights.sum() == pytest.approx(1.0, abs=1e-12)
        assert res.iterations == n_iter and res.converged


def _cvxpy_fixed_point(G, lambda_, pref_vector):
    cp = pytest.importorskip("cvxpy")
    K = G.shape[0]
    evals, evecs = np.linalg.eigh(G)
    L = evecs * np.sqrt(np.clip(evals, 0, None))
    w = cp.Variable(K)
    objective = cp.sum_squares(L.T @ (w + lambda_ * pref_vector))
    cp.Problem(cp.Minimize(objective), [w >= 0, cp.sum(w) == 1]).solve()
    return w.value


@pytest.mark.parametrize("lambda_", [0.0, 0.3, 1.0])
def test_many_inner_steps_reach_the_direction_oriented_optimum(lambda_):
    # With a fixed G, small steps and no momentum, the inner loop is projected gradient
    # descent on 0.5 ||J^T (w + lambda_ pref_vector)||^2 over the simplex: cvxpy's answer.
    rng = np.random.default_rng(7)
    J = rng.standard_normal((4, 6))
    G = J @ J.T
    pref_vector = np.array([0.1, 0.2, 0.3, 0.4])
    s2 = np.mean(np.sqrt(np.diag(G))) ** 2
    lr = 1.0 / (np.linalg.eigvalsh(G).max() / s2)
    sdm = SDMGrad(4, lambda_=lambda_, lr=lr, momentum=0.0, n_iter=5000, pref_vector=pref_vector)
    res = sdm.update(gram=G)
    w_star = _cvxpy_fixed_point(G, lambda_, pref_vector)
    np.testing.assert_allclose(res.extras["inner_weights"], w_star, atol=1e-5)
    np.testing.assert_allclose(
        res.weights, (w_star + lambda_ * pref_vector) / (1 + lambda_), atol=1e-5
    )
    if lambda_ == 0.0:  # the MGDA weights
        np.testing.assert_allclose(res.weights, mgda_weights(G), atol=1e-5)


def test_large_lamda_gives_the_preferred_direction():
    G = np.diag([1.0, 4.0, 9.0])
    pref_vector = np.array([0.2, 0.3, 0.5])
    res = SDMGrad(3, lambda_=1e12, pref_vector=pref_vector).update(gram=G)
    np.testing.assert_allclose(res.weights, pref_vector, atol=1e-11)


@given(grads_matrices(max_tasks=6, max_dim=6), st.integers(-400, 400))
def test_weights_are_invariant_to_a_common_scale_bit_for_bit(J, k):
    K = J.shape[0]
    a, b = SDMGrad(K), SDMGrad(K)
    for _ in range(2):
        wa = a.update(J).weights
        wb = b.update(np.ldexp(J, k)).weights
        np.testing.assert_array_equal(wa, wb)


def test_zero_gradients_leave_the_weights():
    sdm = SDMGrad(3, lambda_=0.3)
    res = sdm.update(np.zeros((3, 4)))
    np.testing.assert_array_equal(res.extras["inner_weights"], np.full(3, 1 / 3))
    np.testing.assert_allclose(res.weights, np.full(3, 1 / 3), rtol=1e-15)
    np.testing.assert_array_equal(res.direction, np.zeros(4))


@pytest.mark.parametrize("family", ["gaussian", "scaled", "zeros", "colinear", "low_rank"])
@pytest.mark.parametrize("K", [2, 5, 10, 32])
def test_agrees_with_torchjd_over_a_run(family, K):
    # torchjd divides by s^2 + 1e-8: eps=1e-8 here. Same Gram matrices, float64.
    # At lr = 10 an inner step can multiply a difference by 1 + lr (1 + momentum) ||A||
    # (||A|| grows with K): two float64 implementations whose matrix-vector products
    # round differently drift apart over a long run (at K = 32 by 1e-4 after ten
    # updates, from 1e-14 after the first). For K = 32 each update therefore starts
    # from torchjd's inner weights, and the updates are compared one by one.
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchjd")
    from torchjd.aggregation import SDMGradWeighting

    rng = np.random.default_rng(K + 100)
    ours, theirs = SDMGrad(K, eps=1e-8), SDMGradWeighting()
    worst = 0.0
    for _ in range(10):
        J = rng.standard_normal((K, K + 2))
        if family == "scaled":
            J *= 10.0 ** rng.uniform(-3, 3, size=(K, 1))
        elif family == "zeros":
            J[rng.random(K) < 0.4] = 0.0
        elif family == "colinear":
            J[1] = 2.0 * J[0]
        elif family == "low_rank":
            J = rng.standard_normal((K, 1)) @ rng.standard_normal((1, K + 2))
        G = J @ J.T
        if K > 10 and theirs._w is not None:
            state = ours.state_dict()
            state["w"] = theirs._w.numpy().copy()
            ours.load_state_dict(state)
        w = ours.update(gram=G).weights
        t = theirs(torch.from_numpy(G)).numpy()
        worst = max(worst, np.abs(w - t).max() / np.abs(t).max())
    assert worst <= 1e-6


def test_torchjd_eps_is_the_only_difference_on_tiny_gradients():
    # Squared norms of 1e-10: torchjd's s^2 + 1e-8 shrinks A a hundredfold; the exact
    # normalisation (eps=0) does not, and equals the answer at scale 1.
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchjd")
    from torchjd.aggregation import SDMGradWeighting

    J = np.random.default_rng(3).standard_normal((3, 5))
    G = J @ J.T
    tiny = 1e-10 * G
    theirs = SDMGradWeighting()(torch.from_numpy(tiny)).numpy()
    np.testing.assert_allclose(SDMGrad(3, eps=1e-8).update(gram=tiny).weights, theirs, rtol=1e-9)
    exact = SDMGrad(3).update(gram=tiny).weights
    np.testing.assert_allclose(exact, SDMGrad(3).update(gram=G).weights, rtol=1e-12)
    assert np.abs(exact - theirs).max() > 1e-3


@given(grads_matrices(max_tasks=8, max_dim=6))
def test_weights_stay_finite_on_hard_families(J):
    K = J.shape[0]
    sdm = SDMGrad(K)
    for G in (J @ J.T, 1e30 * (J @ J.T), 1e-30 * (J @ J.T)):
        res = sdm.update(gram=G)
        assert np.isfinite(res.weights).all() and (res.weights >= 0).all()
        assert res.weights.sum() == pytest.approx(1.0, abs=1e-12)


def test_k128_and_huge_scales():
    rng = np.random.default_rng(2)
    J = rng.standard_normal((128, 5)) * 10.0 ** rng.uniform(-15, 15, size=(128, 1))
    res = SDMGrad(128).update(J * 1e200)  # the Gram of 2**e * J: same weights
    np.testing.assert_array_equal(res.weights, SDMGrad(128).update(J).weights)
    assert res.gram_exponent != 0
    np.testing.assert_allclose(res.direction, res.weights @ (J * 1e200), rtol=1e-12)


def test_state_round_trip_is_bit_identical():
    rng = np.random.default_rng(5)
    grams = [(lambda J: J @ J.T)(rng.standard_normal((4, 6))) for _ in range(10)]
    a = SDMGrad(4, lambda_=0.5, pref_vector=[0.1, 0.2, 0.3, 0.4], n_iter=7)
    for G in grams[:5]:
        a.update(gram=G)
    b = SDMGrad(4)
    b.load_state_dict(a.state_dict())
    assert b.n_iter == 7 and b.step == 5
    np.testing.assert_array_equal(b.pref_vector, [0.1, 0.2, 0.3, 0.4])
    for G in grams[5:]:
        np.testing.assert_array_equal(a.update(gram=G).weights, b.update(gram=G).weights)
    a.reset()
    np.testing.assert_array_equal(a.inner_weights, np.full(4, 0.25))


@pytest.mark.parametrize(
    "where, key, bad, match",
    [
        (None, "w", np.array([0.5, 0.5, 0.5]), "simplex"),
        (None, "w", np.array([-0.5, 1.0, 0.5]), "w"),
        (None, "step", 1.5, "step"),
        ("hyperparameters", "pref_vector", [1.0, -1.0, 0.0], "pref_vector"),
        ("hyperparameters", "pref_vector", [0.0, 0.0, 0.0], "pref_vector"),
        ("hyperparameters", "n_iter", 0, "n_iter"),
        ("hyperparameters", "momentum", 1.0, "momentum"),
        ("hyperparameters", "lr", -1.0, "lr"),
    ],
)
def test_corrupt_state_is_refused_and_changes_nothing(where, key, bad, match):
    sdm = SDMGrad(3)
    sdm.update(gram=np.diag([1.0, 2.0, 3.0]))
    before = sdm.state_dict()
    state = sdm.state_dict()
    (state if where is None else state[where])[key] = bad
    with pytest.raises(ValueError, match=match):
        sdm.load_state_dict(state)
    assert same_plain(before, sdm.state_dict())


def test_bad_options_name_the_argument():
    for kwargs, name in [
        ({"lambda_": -1.0}, "lambda_"),
        ({"lr": 0.0}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"n_iter": 0}, "n_iter"),
        ({"n_iter": 2.5}, "n_iter"),
        ({"pref_vector": [1.0, 2.0]}, "pref_vector"),
        ({"eps": -1e-8}, "eps"),
    ]:
        with pytest.raises(ValueError, match=name):
            SDMGrad(3, **kwargs)
    with pytest.raises(ValueError, match="3 gradients"):
        SDMGrad(2).update(gram=np.eye(3))


def test_registered_as_a_stateful_method():
    entry = solvers.info("sdmgrad")
    assert entry.kind == "stateful-gradient" and "Direction-oriented" in entry.paper
    assert solvers.method("sdmgrad", num_tasks=3, lambda_=0.6).lambda_ == 0.6
