"""ConFIG against its definition on the vectors, its conflict-free property and TorchJD."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paretomtl import solvers
from paretomtl.solvers import config, imtl_g
from tests.strategies import grads_matrices

EPS = float(np.finfo(np.float64).eps)


def reference(J, w=None):
    """ConFIG eq. 2 on the vectors: d0 = lstsq(U, w), length = sum_i g_i . d0 / |d0|."""
    K = J.shape[0]
    w = np.ones(K) if w is None else w
    n = np.linalg.norm(J, axis=1)
    U = np.divide(J, n[:, None], out=np.zeros_like(J), where=n[:, None] > 0)
    # d0 = (U^T U)^+ U^T w is 0 exactly when U^T w = 0, and its way is undefined when
    # U^T w is within rounding of 0: computed from the rows u_i (each rounded by their
    # division, relative eps), every entry of U^T w carries an error of at most
    # (K + 1) eps ||U[:, m]|| ||w||, so ||U^T w|| <= 2 (K + 1) eps ||U||_F ||w|| means
    # "zero to float64" (None: lstsq would normalise its rounding, e.g. U = (1, -1)^T,
    # w = (1, 1) gives d0 ~ 1e-17 and a length of g_1 + g_2 on a random sign).
    if np.linalg.norm(U.T @ w) <= 2 * (K + 1) * EPS * np.linalg.norm(U) * np.linalg.norm(w):
        return None
    d0 = np.linalg.lstsq(U, w, rcond=None)[0]
    if not np.linalg.norm(d0) > 0:
        return np.zeros(J.shape[1])
    unit = d0 / np.linalg.norm(d0)
    return (J @ unit).sum() * unit


def unit_condition(J):
    n = np.linalg.norm(J, axis=1)
    if (n == 0).any():
        return np.inf
    U = J / n[:, None]
    return np.linalg.cond(U @ U.T)


@given(grads_matrices(min_tasks=1, max_tasks=10, max_dim=12))
def test_conflict_free_where_the_unit_gradients_are_independent(J):
    res = config(J)
    assert np.isfinite(res.weights).all()
    np.testing.assert_allclose(res.direction, res.weights @ J, rtol=1e-12, atol=1e-300)
    if J.shape[0] <= J.shape[1] and unit_condition(J) < 1e8:
        d = res.direction
        n = np.linalg.norm(J, axis=1)
        cos = (J @ d) / (n * np.linalg.norm(d))
        assert (cos > 0).all()  # every task's loss decreases along -d
        # ... and equally: the cosines are the preference (1) times a constant.
        assert np.ptp(cos) <= 1e-12 * unit_condition(J) + 1e-12
        # The length rule: |d| = sum_i g_i . d / |d|.
        assert abs(np.linalg.norm(d) - (J @ d).sum() / np.linalg.norm(d)) <= 1e-9 * n.sum()


@given(
    grads_matrices(min_tasks=1, max_tasks=8, max_dim=10),
    st.lists(st.floats(0.1, 5.0), min_size=8, max_size=8),
)
@example(J=np.array([[0.12573022], [-0.13210486]]), prefs=[1.0] * 8)
def test_matches_the_definition_on_the_vectors(J, prefs):
    w = np.array(prefs[: J.shape[0]])
    if unit_condition(J) > 1e6 and J.shape[0] <= J.shape[1]:
        return  # near dependence: the K x M pseudo-inverse resolves more than G can
    ref = reference(J, w)
    scale = np.linalg.norm(J, axis=1).sum()
    if ref is None:  # d0 = 0 to float64: any way, but |d| = |sum_i g_i . d^| <= sum_i n_i
        d = config(J, pref_vector=w).direction
        assert np.isfinite(d).all() and np.linalg.norm(d) <= scale * (1 + 1e-12)
        return
    np.testing.assert_allclose(config(J, pref_vector=w).direction, ref, rtol=0, atol=1e-8 * scale)


@given(st.floats(-40, 40), st.floats(-40, 40), st.floats(0.05, 3.1), st.integers(0, 2**32 - 1))
def test_two_tasks_closed_form(e1, e2, angle, seed):
    # K = 2: d = (n1 + n2) / 2 (u1 + u2).
    n1, n2 = 10.0**e1, 10.0**e2
    Q = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 2)))[0].T
    u1, u2 = Q[0], np.cos(angle) * Q[0] + np.sin(angle) * Q[1]
    d = config(np.stack([n1 * u1, n2 * u2])).direction
    np.testing.assert_allclose(d, (n1 + n2) / 2 * (u1 + u2), rtol=1e-8, atol=1e-12 * (n1 + n2))


@given(grads_matrices(min_tasks=2, max_tasks=8, max_dim=10))
def test_same_direction_as_imtl_g(J):
    a, b = config(J), imtl_g(J)
    if b.extras["degenerate"] or not np.linalg.norm(a.direction) > 0:
        return
    da, db = a.direction, b.direction
    assert abs(abs(da @ db) / (np.linalg.norm(da) * np.linalg.norm(db)) - 1) <= 1e-9


@given(grads_matrices(max_tasks=8, max_dim=8), st.sampled_from([-700, -100, 100, 700]))
def test_common_scale_leaves_the_weights(J, k):
    np.testing.assert_allclose(config(np.ldexp(J, k)).weights, config(J).weights, rtol=1e-12)


def test_degenerate_inputs():
    np.testing.assert_array_equal(config(np.array([[1.0, 2.0], [-1.0, -2.0]])).weights, [0, 0])
    np.testing.assert_array_equal(config(np.zeros((3, 2))).weights, [0, 0, 0])
    J = np.random.default_rng(1).standard_normal((128, 30))
    J[5] = 0.0
    res = config(J)
    assert np.isfinite(res.weights).all() and res.weights[5] == 0 and res.extras["rank"] == 30


def test_opposite_one_dimensional_gradients_give_zero():
    # Regression (thorough profile): U = (1, -1)^T exactly, w = (1, 1): U^T w = 0 in
    # exact arithmetic, so d0 = U^+ w = 0 and ConFIG's d0 / |d0| is undefined; the
    # documented answer is zero weights (not a length g_1 + g_2 on a rounding's sign).
    for J in (np.array([[0.12573022], [-0.13210486]]), np.array([[-3.0], [1e-3]])):
        res = config(J)
        assert not res.weights.any() and not res.direction.any()


def test_bad_preference_is_refused():
    J = np.eye(3)
    with pytest.raises(ValueError, match=r"pref_vector must have shape \(3,\)"):
        config(J, pref_vector=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"pref_vector\[1\] \(task 1\) is nan"):
        config(J, pref_vector=[1.0, np.nan, 1.0])
    with pytest.raises(TypeError, match="pref_vector"):
        config(J, pref_vector="abc")
    assert solvers.get("config") is config
    assert solvers.method("config", pref_vector=[1, 2, 3])(J).weights.shape == (3,)


# ----------------------------------------------------------------------------------
# TorchJD (ConFIG, an Aggregator on the K x M matrix: pinv of the unit rows)
# ----------------------------------------------------------------------------------


def torchjd_direction(J, pref=None):
    torch = pytest.importorskip("torch")
    torchjd = pytest.importorskip("torchjd")
    pv = None if pref is None else torch.from_numpy(np.asarray(pref, dtype=np.float64))
    return torchjd.aggregation.ConFIG(pref_vector=pv)(torch.from_numpy(J)).numpy()


@given(grads_matrices(min_tasks=1, max_tasks=12, max_dim=16))
def test_agrees_with_torchjd(J):
    if J.shape[0] <= J.shape[1] and unit_condition(J) > 1e6:
        return  # documented: near-dependent unit gradients (see the docstring)
    ours, theirs = config(J).direction, torchjd_direction(J)
    # TorchJD's rounding leaves up to about 1e-8 of the norms where the answer is 0
    # (opposite gradients): an absolute floor on that scale.
    floor = 1e-7 * np.linalg.norm(J, axis=1).sum()
    assert np.abs(ours - theirs).max() <= 1e-6 * np.abs(theirs).max() + floor


def test_agrees_with_torchjd_with_a_preference_and_rank_deficiency():
    rng = np.random.default_rng(4)
    for K, M in ((3, 7), (6, 3), (9, 9), (20, 5)):
        J = rng.standard_normal((K, M)) * 10.0 ** rng.uniform(-5, 5, (K, 1))
        w = rng.uniform(0.2, 3.0, K)
        theirs = torchjd_direction(J, w)
        np.testing.assert_allclose(
            config(J, pref_vector=w).direction, theirs, rtol=1e-6, atol=1e-9 * np.abs(theirs).max()
        )
