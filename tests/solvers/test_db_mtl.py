"""DB-MTL against LibMTL's formulas (written here on the vectors) and the paper's claims."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paretomtl.solvers import DBMTL, get, info
from tests.strategies import grads_matrices


def reference_db_mtl(Js, losses, *, beta=0.9, beta_sigma=0.0, eps=0.0):
    """LibMTL's DB_MTL.backward over a sequence of steps: gradients of log(L + eps),
    buffer = g + beta_t (buffer - g), alpha = max ||buffer|| / (||buffer_i|| + eps).
    With eps = 0 a zero buffer row gets alpha 0 (it contributes nothing either way).
    Returns per step (buffer, alpha, direction)."""
    K, M = Js[0].shape
    buffer = np.zeros((K, M))
    out = []
    for t, (J, L) in enumerate(zip(Js, losses, strict=True), start=1):
        g = np.array(J, dtype=np.float64) / (np.asarray(L)[:, None] + eps)
        buffer = g + (beta / t**beta_sigma) * (buffer - g)
        n = np.linalg.norm(buffer, axis=1)
        alpha = np.array([n.max() / (n[i] + eps) if n[i] + eps > 0 else 0.0 for i in range(K)])
        d = sum(alpha[i] * buffer[i] for i in range(K))
        out.append((buffer.copy(), alpha, d))
    return out


def noisy(J, steps, seed, noise=0.5):
    rng = np.random.default_rng(seed)
    top = np.abs(J).max(initial=0.0)
    return [J + noise * top * rng.standard_normal(J.shape) for _ in range(steps)]


@given(
    grads_matrices(max_tasks=6, max_dim=8),
    st.integers(1, 5),
    st.integers(0, 2**31 - 1),
    st.sampled_from([(0.9, 0.0), (0.0, 0.0), (0.5, 0.5), (0.99, 1.0)]),
)
# Opposite 1-D gradients: d = 0 exactly, LibMTL's eps leaves about 1e-8 (the thorough
# profile found it: a tolerance relative to |d| instead of to the terms failed).
@example(J=np.array([[0.12573022], [-0.13210486]]), steps=1, seed=0, params=(0.0, 0.0))
def test_equals_libmtl_formula(J, steps, seed, params):
    beta, beta_sigma = params
    Js = noisy(J, steps, seed)
    K = J.shape[0]
    rng = np.random.default_rng(seed)
    losses = [rng.uniform(0.05, 5.0, K) for _ in range(steps)]
    db = DBMTL(K, beta=beta, beta_sigma=beta_sigma)
    exact = reference_db_mtl(Js, losses, beta=beta, beta_sigma=beta_sigma)
    libmtl = reference_db_mtl(Js, losses, beta=beta, beta_sigma=beta_sigma, eps=1e-8)
    previous = np.zeros_like(J)
    bound_norms = np.zeros(K)
    for t, (Jt, L) in enumerate(zip(Js, losses, strict=True), start=1):
        res = db.update(Jt, losses=L)
        buffer, alpha, d = exact[t - 1]
        # the EMA cancels where beta_t is near 1: rounding relative to its terms
        terms = max(np.abs(Jt / L[:, None]).max(), np.abs(previous).max(), 1e-300)
        previous = buffer
        n = np.linalg.norm(buffer, axis=1)
        # Every term alpha_i buffer_i of d has norm max_j ||buffer_j||, and d may cancel
        # to 0 (opposite gradients): rounding is relative to the terms, not to |d|.
        scale = max(n.max(), 1e-300)
        assert res.weights is None
        np.testing.assert_allclose(db.buffer, buffer, rtol=0, atol=1e-14 * terms)
        np.testing.assert_allclose(res.extras["alpha"], alpha, rtol=1e-10)
        np.testing.assert_allclose(res.direction, d, rtol=0, atol=1e-10 * scale)
        np.testing.assert_allclose(res.gram, Jt @ Jt.T, rtol=1e-12, atol=1e-300)
        assert res.extras["beta"] == pytest.approx(beta / t**beta_sigma, rel=1e-15)
        # LibMTL's two eps, bounded term by term (each term has norm n_max):
        # - alpha_i = n_max / (n_i + 1e-8) moves the term by n_max 1e-8 / (n_i + 1e-8)
        #   <= n_max 1e-8 / n_i;
        # - log(L + 1e-8) scales each g / L by a factor in [1 - delta, 1], delta =
        #   1e-8 / min L, so buffer_i moves by <= delta B_i, B_i = the same EMA run on
        #   ||g_i / L_i|| (triangle inequality): its unit vector turns by <= 2 delta B_i
        #   / n_i and n_max changes by <= delta max_j B_j.
        # Zero rows contribute 0 in both; the rounding allowed above comes on top.
        bound_norms = bound_norms * (beta / t**beta_sigma) + (1.0 - beta / t**beta_sigma) * (
            np.linalg.norm(Jt, axis=1) / L
        )
        nonzero = n > 0
        if nonzero.any() and n[nonzero].min() >= 1e-2:
            d8 = libmtl[t - 1][2]
            delta = 1e-8 / min(float(np.min(ls)) for ls in losses[:t])
            per_term = 1e-8 / n[nonzero] + 2.0 * delta * bound_norms[nonzero] / n[nonzero]
            shift = n.max() * float(np.sum(per_term)) + K * delta * bound_norms.max()
            np.testing.assert_allclose(res.direction, d8, rtol=0, atol=shift + 1e-10 * scale)


def test_first_step_is_a_weighted_sum_of_the_current_gradients():
    rng = np.random.default_rng(0)
    J = rng.standard_normal((4, 7)) * np.array([[1e-3], [1.0], [10.0], [1e4]])
    L = np.array([0.1, 2.0, 30.0, 5.0])
    for beta in (0.9, 0.0, 0.5):
        res = DBMTL(4, beta=beta).update(J, losses=L)
        w = (1.0 - beta) * res.extras["alpha"] / L
        np.testing.assert_allclose(res.direction, w @ J, rtol=1e-13)
        # each term has the largest smoothed norm: alpha_i ||buffer_i|| = max_j ||buffer_j||
        n = np.linalg.norm((1.0 - beta) * J / L[:, None], axis=1)
        np.testing.assert_allclose(res.extras["alpha"] * n, n.max(), rtol=1e-14)
        np.testing.assert_allclose(res.extras["buffer_norms"], n, rtol=1e-14)


def test_loss_scale_invariance():
    # The log transform: multiplying a task's loss (and so its gradient) by c > 0 leaves
    # log L_i's gradient, and the whole method, unchanged.
    rng = np.random.default_rng(1)
    Js = [rng.standard_normal((3, 6)) for _ in range(4)]
    losses = [rng.uniform(0.5, 2.0, 3) for _ in range(4)]
    c = np.array([1e-6, 1.0, 1e8])
    a, b = DBMTL(3, beta=0.8), DBMTL(3, beta=0.8)
    for J, L in zip(Js, losses, strict=True):
        ra = a.update(J, losses=L)
        rb = b.update(J * c[:, None], losses=L * c)
        np.testing.assert_allclose(rb.direction, ra.direction, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(rb.extras["alpha"], ra.extras["alpha"], rtol=1e-12)


def test_gradient_magnitude_balancing():
    # With no memory, the direction is the largest log-loss gradient's norm times the
    # sum of the unit log-loss gradients: rescaling one task's gradient alone changes
    # only that common factor.
    rng = np.random.default_rng(2)
    J = rng.standard_normal((3, 5))
    L = np.array([1.0, 0.3, 4.0])
    res = DBMTL(3, beta=0.0).update(J, losses=L)
    G = J / L[:, None]
    n = np.linalg.norm(G, axis=1)
    np.testing.assert_allclose(res.direction, n.max() * (G / n[:, None]).sum(axis=0), rtol=1e-13)
    scaled = J.copy()
    scaled[1] *= 1e3
    res2 = DBMTL(3, beta=0.0).update(scaled, losses=L)
    top = res.extras["buffer_norms"].max()
    top2 = res2.extras["buffer_norms"].max()
    np.testing.assert_allclose(res2.direction / top2, res.direction / top, rtol=1e-12)


def test_ema_with_decay_and_constant_gradients():
    # Constant g / L: the buffer is (1 - prod_t beta_t) g / L, and the direction does
    # not depend on that common factor once it is nonzero.
    rng = np.random.default_rng(3)
    J = rng.standard_normal((2, 4))
    L = np.array([2.0, 0.5])
    db = DBMTL(2, beta=0.6, beta_sigma=0.5)
    prod = 1.0
    first = None
    for t in range(1, 8):
        res = db.update(J, losses=L)
        prod *= 0.6 / t**0.5
        np.testing.assert_allclose(db.buffer, (1 - prod) * J / L[:, None], rtol=1e-13)
        first = res.direction / (1 - prod) if first is None else first
        np.testing.assert_allclose(res.direction / (1 - prod), first, rtol=1e-13)


def test_zero_rows_permutations_and_single_task():
    J = np.array([[1.0, 2.0], [0.0, 0.0], [-3.0, 1.0]])
    L = np.array([1.0, 2.0, 0.5])
    db = DBMTL(3)
    for _ in range(3):
        res = db.update(J, losses=L)
        assert res.extras["alpha"][1] == 0.0 and np.isfinite(res.direction).all()
    perm = np.array([2, 0, 1])
    rng = np.random.default_rng(4)
    a, b = DBMTL(3, beta=0.5), DBMTL(3, beta=0.5)
    for _ in range(3):
        Jt, Lt = rng.standard_normal((3, 4)), rng.uniform(0.5, 2, 3)
        ra, rb = a.update(Jt, losses=Lt), b.update(Jt[perm], losses=Lt[perm])
        np.testing.assert_allclose(rb.direction, ra.direction, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(rb.extras["alpha"], ra.extras["alpha"][perm], rtol=1e-13)
    one = DBMTL(1, beta=0.0).update(np.array([[3.0, 4.0]]), losses=[2.0])
    np.testing.assert_allclose(one.direction, [1.5, 2.0], rtol=1e-15)


def test_extreme_scales_stay_finite():
    # Smoothed norms 1e-300 apart: each term still has the largest norm.
    J = np.array([[1e-150, 0.0, 0.0], [0.0, 1e150, 0.0], [0.0, 0.0, 1.0]])
    res = DBMTL(3, beta=0.0).update(J, losses=[1e-10, 1e10, 1.0])
    np.testing.assert_allclose(res.direction, [1e140, 1e140, 1e140], rtol=1e-14)
    res = DBMTL(2, beta=0.0).update(np.array([[5e-320, 0.0], [0.0, 1e10]]), losses=[1.0, 1.0])
    np.testing.assert_allclose(res.direction, [1e10, 1e10], rtol=1e-14)


def test_dtypes_and_gram():
    J = np.array([[1.0, 0.5, -1.0], [0.0, 2.0, 1.0]])
    L = [1.0, 0.5]
    d64 = DBMTL(2).update(J, losses=L).direction
    for dtype, out in ((np.float32, np.float32), (np.float16, np.float32)):
        res = DBMTL(2).update(J.astype(dtype), losses=L)
        assert res.direction.dtype == out
        np.testing.assert_allclose(res.direction, d64, rtol=1e-3)
    assert DBMTL(2).update(J, gram=J @ J.T, losses=L).direction.tobytes() == d64.tobytes()
    with pytest.raises(ValueError, match="gram does not match grads"):
        DBMTL(2).update(J, gram=np.eye(2), losses=L)


def test_state_round_trip_is_bit_identical():
    rng = np.random.default_rng(5)
    Js = [rng.standard_normal((4, 9)) for _ in range(7)]
    losses = [rng.uniform(0.2, 2.0, 4) for _ in range(7)]
    straight = DBMTL(4, beta=0.7, beta_sigma=0.3)
    directions = [straight.update(J, losses=L).direction for J, L in zip(Js, losses, strict=True)]
    first = DBMTL(4, beta=0.7, beta_sigma=0.3)
    for J, L in zip(Js[:3], losses[:3], strict=True):
        first.update(J, losses=L)
    state = first.state_dict()
    assert np.shape(state["buffer"]) == (4, 9) and state["step"] == 3
    resumed = DBMTL(4)
    resumed.load_state_dict(state)
    assert resumed.beta == 0.7 and resumed.beta_sigma == 0.3
    for J, L, d in zip(Js[3:], losses[3:], directions[3:], strict=True):
        assert resumed.update(J, losses=L).direction.tobytes() == d.tobytes()
    assert resumed.buffer.tobytes() == straight.buffer.tobytes()
    first.update(Js[3], losses=losses[3])  # the saved state is a copy
    again = DBMTL(4)
    again.load_state_dict(state)
    assert again.update(Js[3], losses=losses[3]).direction.tobytes() == directions[3].tobytes()


def test_reset_and_fresh_state():
    db = DBMTL(2)
    J, L = np.array([[1.0, 2.0], [3.0, -1.0]]), [1.0, 2.0]
    expected = db.update(J, losses=L).direction
    db.reset()
    assert db.step == 0 and db.buffer is None and db.state_dict()["buffer"] is None
    assert db.update(J, losses=L).direction.tobytes() == expected.tobytes()
    db.reset()
    db.update(np.ones((2, 5)), losses=L)  # another M after reset


def test_corrupt_states_are_refused_and_change_nothing():
    rng = np.random.default_rng(6)
    db = DBMTL(3)
    for _ in range(2):
        db.update(rng.standard_normal((3, 5)), losses=rng.uniform(0.5, 1.5, 3))
    good = db.state_dict()
    bads = {
        "buffer": [None, np.ones((2, 5)), np.ones(15), np.full((3, 5), np.inf), "x"],
        "step": [0, -1, True],
    }
    for key, values in bads.items():
        for bad in values:
            with pytest.raises((ValueError, TypeError), match=key):
                db.load_state_dict({**good, key: bad})
            assert np.asarray(db.state_dict()["buffer"]).tobytes() == (
                np.asarray(good["buffer"]).tobytes()
            )
    with pytest.raises(ValueError, match="beta"):
        db.load_state_dict({**good, "hyperparameters": {"beta": 1.0, "beta_sigma": 0.0}})
    with pytest.raises(ValueError, match="buffer"):
        DBMTL(3).load_state_dict({**DBMTL(3).state_dict(), "buffer": np.ones((3, 2))})


def test_bad_input_is_named_and_changes_nothing():
    db = DBMTL(3)
    J = np.random.default_rng(7).standard_normal((3, 4))
    db.update(J, losses=[1.0, 1.0, 1.0])
    state = db.state_dict()
    with pytest.raises(ValueError, match="needs grads"):
        db.update(gram=J @ J.T, losses=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="losses are needed"):
        db.update(J)
    for bad, where in (
        ([1.0, 0.0, 1.0], r"losses\[1\]"),
        ([1.0, 1.0, -2.0], r"losses\[2\]"),
        ([np.nan, 1.0, 1.0], r"losses\[0\]"),
        ([1.0, 1e-320, 1.0], r"losses\[1\]"),
        ([1.0, 1.0], "losses"),
    ):
        with pytest.raises(ValueError, match=where):
            db.update(J, losses=bad)
    with pytest.raises(TypeError, match="losses"):
        db.update(J, losses=["a", "b", "c"])
    with pytest.raises(ValueError, match="M must stay the same"):
        db.update(np.ones((3, 6)), losses=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="K must stay the same"):
        db.update(np.ones((2, 4)), losses=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"grads\[0\] / losses\[0\]"):
        db.update(np.full((3, 4), 1e300), losses=[1e-10, 1.0, 1.0])
    after = db.state_dict()
    assert np.asarray(after["buffer"]).tobytes() == np.asarray(state["buffer"]).tobytes()
    assert after["step"] == 1


def test_bad_options_are_named():
    for option, bad in [
        ("beta", 1.0),
        ("beta", -0.1),
        ("beta", float("nan")),
        ("beta_sigma", -1.0),
        ("beta_sigma", "0"),
    ]:
        with pytest.raises((ValueError, TypeError), match=option):
            DBMTL(2, **{option: bad})
    with pytest.raises(ValueError, match="num_tasks"):
        DBMTL(0)


def test_registered_as_stateful_gradient_needing_grads():
    assert info("db-mtl").kind == "stateful-gradient"
    assert get("db_mtl") is DBMTL and DBMTL.needs_grads is True
    assert "Dual-Balancing" in info("db-mtl").paper
