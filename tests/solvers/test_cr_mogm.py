"""CR-MOGM: the moving average of exact MGDA weights, against cvxpy and torchjd."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers
from paretomtl.solvers import CRMOGM, mgda, mgda_weights
from paretomtl.state import same_plain
from tests.strategies import grads_matrices


def noisy_grams(J, steps, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        Jn = J + 0.3 * np.abs(J).max() * rng.standard_normal(J.shape)
        out.append(Jn @ Jn.T)
    return out


@given(
    grads_matrices(max_tasks=6, max_dim=8),
    st.sampled_from([0.0, 0.5, 0.9, 1.0]),
    st.integers(1, 5),
    st.integers(0, 2**31 - 1),
)
def test_weights_are_the_moving_average_of_mgda(J, alpha, steps, seed):
    K = J.shape[0]
    cr = CRMOGM(K, alpha=alpha)
    avg = None
    for G in noisy_grams(J, steps, seed):
        res = cr.update(gram=G)
        hat = mgda_weights(G)
        avg = hat if avg is None else alpha * avg + (1 - alpha) * hat
        np.testing.assert_allclose(res.weights, avg, rtol=0, atol=1e-14)
        np.testing.assert_array_equal(res.extras["mgda_weights"], hat)
        assert res.weights.sum() == pytest.approx(1.0, abs=1e-12)
        assert (res.weights >= 0).all() and res.converged


def test_inner_weights_are_mgdas_optimum_by_cvxpy():
    pytest.importorskip("cvxpy")
    rng = np.random.default_rng(0)
    cr = CRMOGM(5, alpha=0.7)
    for _ in range(4):
        J = rng.standard_normal((5, 3))
        G = J @ J.T
        res = cr.update(gram=G)
        reference = mgda(gram=G, method="cvxpy")
        hat = res.extras["mgda_weights"]
        # The optimum value (unique) agrees; the weights need not where G is singular.
        assert hat @ G @ hat <= reference.objective + 1e-9 * G.diagonal().max()
        assert res.kkt_residual <= 1e-9


def test_first_step_is_mgda_then_averages_k2_closed_form():
    # K = 2, orthogonal gradients: MGDA weights (b, a) / (a + b) for squared norms a, b.
    cr = CRMOGM(2, alpha=0.25)
    np.testing.assert_allclose(cr.update(gram=np.diag([1.0, 3.0])).weights, [0.75, 0.25])
    w = cr.update(gram=np.diag([1.0, 1.0])).weights
    np.testing.assert_allclose(w, 0.25 * np.array([0.75, 0.25]) + 0.75 * np.array([0.5, 0.5]))


def test_initial_weights_alpha_one_freezes_alpha_zero_is_mgda():
    G = np.diag([1.0, 4.0])
    frozen = CRMOGM(2, alpha=1.0, initial_weights=[0.3, 0.7])
    for _ in range(3):
        np.testing.assert_array_equal(frozen.update(gram=G).weights, [0.3, 0.7])
    plain = CRMOGM(2, alpha=0.0, initial_weights=[0.3, 0.7])
    np.testing.assert_array_equal(plain.update(gram=G).weights, mgda_weights(G))
    started = CRMOGM(2, alpha=0.5, initial_weights=[0.0, 1.0])
    np.testing.assert_allclose(started.update(gram=G).weights, [0.4, 0.6])
    started.reset()
    np.testing.assert_array_equal(started.weights, [0.0, 1.0])
    assert started.step == 0


def test_alpha_can_follow_a_schedule_and_is_checked():
    cr = CRMOGM(2)
    cr.alpha = 0.3
    assert cr.alpha == 0.3 and cr.state_dict()["hyperparameters"]["alpha"] == 0.3
    with pytest.raises(ValueError, match="alpha"):
        cr.alpha = 1.5
    with pytest.raises(ValueError, match="alpha"):
        CRMOGM(2, alpha=-0.1)
    with pytest.raises(ValueError, match="initial_weights"):
        CRMOGM(2, initial_weights=[1.0, np.nan])
    with pytest.raises(ValueError, match="3 gradients"):
        CRMOGM(2).update(gram=np.eye(3))


@given(grads_matrices(max_tasks=6, max_dim=6), st.integers(-400, 400))
def test_weights_are_invariant_to_a_common_scale_bit_for_bit(J, k):
    K = J.shape[0]
    a, b = CRMOGM(K, alpha=0.5), CRMOGM(K, alpha=0.5)
    for s in (1.0, 0.5):
        np.testing.assert_array_equal(a.update(s * J).weights, b.update(np.ldexp(s * J, k)).weights)


def test_agrees_with_torchjd_smoothing_fed_the_same_mgda_weights():
    # torchjd's CRMOGMWeighting wraps a weighting: given one returning the exact MGDA
    # weights, its average must equal ours.
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchjd")
    from torchjd.aggregation import CRMOGMWeighting
    from torchjd.aggregation._weighting_bases import Weighting

    class ExactMGDA(Weighting):
        def forward(self, gramian):
            return torch.from_numpy(mgda_weights(gramian.numpy()))

    for K in (2, 5, 10, 32):
        rng = np.random.default_rng(K)
        ours, theirs = CRMOGM(K, alpha=0.8), CRMOGMWeighting(ExactMGDA(), alpha=0.8)
        for family in range(8):
            J = rng.standard_normal((K, 3 if family % 2 else K + 2))
            J *= 10.0 ** rng.uniform(-4, 4, size=(K, 1)) if family % 3 == 0 else 1.0
            G = J @ J.T
            w = ours.update(gram=G).weights
            t = theirs(torch.from_numpy(G)).numpy()
            np.testing.assert_allclose(w, t, rtol=1e-12, atol=1e-15)


def test_torchjd_mgda_is_an_approximate_solver_and_ours_is_no_worse():
    # The documented difference with CRMOGMWeighting(MGDAWeighting()): torchjd's MGDA
    # stops at a 1e-3 tolerance. Its objective is never below ours.
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchjd")
    from torchjd.aggregation import CRMOGMWeighting, MGDAWeighting

    rng = np.random.default_rng(11)
    ours, theirs = CRMOGM(6, alpha=0.0), CRMOGMWeighting(MGDAWeighting(), alpha=0.0)
    for _ in range(10):
        J = rng.standard_normal((6, 8))  # full rank: the MGDA weights are unique
        G = J @ J.T
        w = ours.update(gram=G).weights
        t = theirs(torch.from_numpy(G)).numpy()
        assert w @ G @ w <= t @ G @ t + 1e-12 * G.diagonal().max()
        np.testing.assert_allclose(w, t, atol=0.05)


@given(grads_matrices(max_tasks=8, max_dim=6))
def test_weights_stay_finite_on_hard_families(J):
    K = J.shape[0]
    cr = CRMOGM(K)
    for G in (J @ J.T, 1e30 * (J @ J.T), 1e-30 * (J @ J.T)):
        w = cr.update(gram=G).weights
        assert np.isfinite(w).all() and (w >= 0).all()
        assert w.sum() == pytest.approx(1.0, abs=1e-12)


def test_k128_with_directions():
    rng = np.random.default_rng(2)
    J = rng.standard_normal((128, 40)) * 10.0 ** rng.uniform(-15, 15, size=(128, 1))
    res = CRMOGM(128).update(J)
    assert np.isfinite(res.weights).all() and res.converged
    np.testing.assert_allclose(res.direction, res.weights @ J, rtol=1e-10, atol=1e-300)


def test_state_round_trip_is_bit_identical():
    rng = np.random.default_rng(5)
    grams = [(lambda J: J @ J.T)(rng.standard_normal((4, 6))) for _ in range(10)]
    a = CRMOGM(4, alpha=0.6)
    for G in grams[:5]:
        a.update(gram=G)
    b = CRMOGM(4)
    b.load_state_dict(a.state_dict())
    assert b.alpha == 0.6 and b.step == 5
    for G in grams[5:]:
        np.testing.assert_array_equal(a.update(gram=G).weights, b.update(gram=G).weights)
    fresh = CRMOGM(4, initial_weights=[0.1, 0.2, 0.3, 0.4])
    c = CRMOGM(4)
    c.load_state_dict(fresh.state_dict())
    np.testing.assert_array_equal(c.weights, [0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize(
    "where, key, bad, match",
    [
        (None, "lambda", np.array([0.5, np.inf]), "lambda"),
        (None, "lambda", np.array([0.5, 0.5, 0.0]), "shape"),
        (None, "step", -2, "step"),
        (None, "extra", 1, "unknown"),
        ("hyperparameters", "alpha", 2.0, "alpha"),
        ("hyperparameters", "initial_weights", [1.0], "initial_weights"),
    ],
)
def test_corrupt_state_is_refused_and_changes_nothing(where, key, bad, match):
    cr = CRMOGM(2)
    cr.update(gram=np.diag([1.0, 2.0]))
    before = cr.state_dict()
    state = cr.state_dict()
    (state if where is None else state[where])[key] = bad
    with pytest.raises(ValueError, match=match):
        cr.load_state_dict(state)
    assert same_plain(before, cr.state_dict())


def test_registered_as_a_stateful_method():
    entry = solvers.info("cr-mogm")
    assert entry.kind == "stateful-gradient" and "Stochastic Multi-Objective" in entry.paper
    assert solvers.method("cr_mogm", num_tasks=3, alpha=0.5).alpha == 0.5
