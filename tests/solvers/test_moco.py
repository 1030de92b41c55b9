"""MoCo against the paper's Algorithm 1 and LibMTL's formulas, written here on the vectors."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paretomtl.solvers import MoCo, get, info
from paretomtl.solvers.moco import project_to_simplex, row_norms, softmax
from tests.oracles import brute_force
from tests.strategies import grads_matrices


# -- independent references -----------------------------------------------------------------
def bisection_projection(v, iterations=200):
    """The simplex projection as max(v - theta, 0) with sum 1, theta found by bisection
    on the (decreasing, piecewise linear) sum: no sorting."""
    v = np.asarray(v, dtype=np.float64)
    v = v - v.max()  # a common shift moves theta only; now max(v) = 0
    # theta lies in [-1, 0): the top entry alone gives sum >= 1 at -1, the sum is 0 at 0.
    # (A bracket from min(v) - 1 is 1e60 wide for v ~ 1e60: 200 halvings leave it ~0.6
    # wide, which the thorough profile caught; from [-1, 0] they reach the last ulp.)
    lo, hi = -1.0, 0.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if np.maximum(v - mid, 0.0).sum() > 1.0:
            lo = mid
        else:
            hi = mid
    w = np.maximum(v - 0.5 * (lo + hi), 0.0)
    return w / w.sum()


def reference_softmax(v):
    z = np.exp(np.asarray(v, dtype=np.float64) - np.max(v))
    return z / z.sum()


def reference_moco(
    Js,
    losses=None,
    *,
    beta=0.5,
    beta_sigma=0.5,
    gamma=0.1,
    gamma_sigma=0.5,
    rho=0.0,
    lambda_update="projection",
    normalize=False,
    eps=0.0,
):
    """Fernando et al.'s Algorithm 1 (projection) or LibMTL's MoCo.backward (softmax,
    grads / (||grads|| + eps) * losses) over a sequence of steps, on the vectors.
    Returns per step (Y, lambda, direction)."""
    K, M = Js[0].shape
    y = np.zeros((K, M))
    lam = np.ones(K) / K
    out = []
    for t, J in enumerate(Js, start=1):
        g = np.array(J, dtype=np.float64)
        if normalize:
            n = np.linalg.norm(g, axis=1)
            for i in range(K):
                g[i] = g[i] / (n[i] + eps) * losses[t - 1][i] if n[i] + eps > 0 else 0.0
        y = y - (beta / t**beta_sigma) * (y - g)
        v = lam - (gamma / t**gamma_sigma) * (y @ y.T + rho * np.eye(K)) @ lam
        lam = bisection_projection(v) if lambda_update == "projection" else reference_softmax(v)
        out.append((y.copy(), lam.copy(), y.T @ lam))
    return out


def unit_scaled(J):
    """J divided by its largest row norm (so that gamma Y Y^T stays O(1) and the
    lambda iteration does not amplify rounding)."""
    top = float(np.linalg.norm(J, axis=1).max())
    return J / top if top > 0 else J


def noisy(J, steps, seed, noise=0.5):
    rng = np.random.default_rng(seed)
    return [
        J + noise * rng.standard_normal(J.shape) * np.abs(J).max(initial=0.0) for _ in range(steps)
    ]


# -- the simplex projection ------------------------------------------------------------------
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=40),
    st.sampled_from([1e-30, 1e-6, 1.0, 1e6, 1e60]),
)
@example(values=[0.0, 1.6040336212667753e-64, -1.0], scale=1e60)  # the old oracle's bracket
def test_projection_is_the_euclidean_projection(values, scale):
    v = np.array(values) * scale
    w = project_to_simplex(v)
    assert np.isfinite(w).all() and (w >= 0).all()
    assert abs(w.sum() - 1.0) <= 1e-14 * len(v)
    np.testing.assert_allclose(w, bisection_projection(v), rtol=0, atol=1e-12)
    # KKT on u = v - max(v) (the projection ignores a common shift): u_i - w_i = theta
    # on the support, u_i <= theta off it, theta in [-1, 0). Support entries have
    # |u_i| <= 1, so forming u rounds them by <= 2^-53, and the sums of <= 40 terms of
    # size <= 1 add <= 40 * 2^-53 ~ 5e-15: 1e-12 is absolute, whatever the scale of v.
    u = v - v.max()
    support = w > 0
    theta = np.mean((u - w)[support])
    assert -1.0 - 1e-12 <= theta < 0.0
    assert np.abs((u - w)[support] - theta).max() <= 1e-12
    assert (u[~support] <= theta + 1e-12).all()


def test_projection_and_softmax_small_cases():
    np.testing.assert_allclose(project_to_simplex(np.array([0.3, 0.7])), [0.3, 0.7], atol=1e-16)
    np.testing.assert_array_equal(project_to_simplex(np.array([5.0, -5.0])), [1.0, 0.0])
    np.testing.assert_array_equal(project_to_simplex(np.array([2.0, 2.0])), [0.5, 0.5])
    np.testing.assert_array_equal(project_to_simplex(np.array([-7.0])), [1.0])
    w = softmax(np.array([1000.0, 1000.0 + np.log(2.0), -1e300]))  # no overflow
    np.testing.assert_allclose(w, [1 / 3, 2 / 3, 0.0], rtol=1e-13)


def test_row_norms_at_every_scale():
    rng = np.random.default_rng(0)
    for s in (1e-300, 1e-160, 1e-30, 1.0, 1e30, 1e160, 1e300):
        R = rng.standard_normal((4, 7))
        R[2] = 0.0
        n = row_norms(R * s)
        expected = np.linalg.norm(R, axis=1)
        np.testing.assert_allclose(n / s, expected, rtol=1e-14)
        assert n[2] == 0.0


# -- the method against the references -------------------------------------------------------
@given(
    grads_matrices(max_tasks=6, max_dim=8),
    st.integers(1, 5),
    st.integers(0, 2**31 - 1),
    st.sampled_from(
        [(0.5, 0.5, 0.1, 0.5, 0.0), (1.0, 0.0, 0.7, 0.0, 0.3), (0.2, 1.0, 2.0, 0.3, 0.0)]
    ),
    st.sampled_from(["projection", "softmax"]),
)
def test_equals_the_paper_loop_on_the_vectors(J, steps, seed, params, lambda_update):
    beta, beta_sigma, gamma, gamma_sigma, rho = params
    Js = noisy(unit_scaled(J), steps, seed)
    K = J.shape[0]
    options = dict(beta=beta, beta_sigma=beta_sigma, gamma=gamma, gamma_sigma=gamma_sigma, rho=rho)
    moco = MoCo(K, lambda_update=lambda_update, **options)
    reference = reference_moco(Js, lambda_update=lambda_update, **options)
    for t, (Jt, (y, lam, d)) in enumerate(zip(Js, reference, strict=True), start=1):
        res = moco.update(Jt)
        assert res.weights is None
        np.testing.assert_allclose(moco.tracked, y, rtol=0, atol=1e-13)
        np.testing.assert_allclose(res.extras["lambda"], lam, rtol=0, atol=1e-11)
        np.testing.assert_allclose(res.direction, d, rtol=0, atol=1e-11)
        np.testing.assert_allclose(res.gram, Jt @ Jt.T, rtol=1e-12, atol=1e-300)
        assert res.extras["beta"] == pytest.approx(beta / t**beta_sigma, rel=1e-15)
        assert res.extras["gamma"] == pytest.approx(gamma / t**gamma_sigma, rel=1e-15)
        assert abs(res.extras["lambda"].sum() - 1.0) <= 1e-14 * K
    assert moco.step == steps


@given(
    grads_matrices(max_tasks=6, max_dim=8),
    st.integers(1, 5),
    st.integers(0, 2**31 - 1),
)
# The thorough profile found it: d cancels to 0.0145 from rows of norm ~2, and the
# former rtol=1e-6 on d (not on its terms) failed at 1.2e-5.
@example(J=np.array([[0.12573022], [-0.13210486], [0.64042265], [0.10490012]]), steps=2, seed=0)
def test_libmtl_configuration_equals_libmtl_formula(J, steps, seed):
    # LibMTL: softmax, gradients scaled to their losses, g L / (||g|| + 1e-8): each scaled
    # row moves by <= L_max 1e-8 / n_min =: e, and so does each tracked row (a convex
    # combination of them, norms <= L_max). The softmax moves by <= 2 |input change|_inf
    # in 1-norm (its Jacobian diag(p) - p p^T), and its input lam - gamma_t Y Y^T lam by
    # <= dl + gamma_t (2 e L_max + L_max^2 dl), dl the previous bound on |lam - lam8|_1;
    # then |d - d8| <= e + L_max dl. Rounding (1e-12, as above) comes on top.
    Js = noisy(J, steps, seed)
    K = J.shape[0]
    rng = np.random.default_rng(seed)
    losses = [rng.uniform(0.1, 3.0, K) for _ in range(steps)]
    moco = MoCo(K, lambda_update="softmax", normalization="loss")
    exact = reference_moco(Js, losses, lambda_update="softmax", normalize=True)
    libmtl = reference_moco(Js, losses, lambda_update="softmax", normalize=True, eps=1e-8)
    n_min = min(float(np.linalg.norm(Jt, axis=1).min()) for Jt in Js)
    L_max = max(float(L.max()) for L in losses)
    big = n_min >= 1e-2
    e = L_max * 1e-8 / n_min if big else np.inf
    dl = 0.0
    for t, (Jt, L, (y, lam, d), (_, lam8, d8)) in enumerate(
        zip(Js, losses, exact, libmtl, strict=True), start=1
    ):
        res = moco.update(Jt, losses=L)
        np.testing.assert_allclose(moco.tracked, y, rtol=0, atol=1e-13)
        np.testing.assert_allclose(res.extras["lambda"], lam, rtol=0, atol=1e-12)
        np.testing.assert_allclose(res.direction, d, rtol=0, atol=1e-12)
        if big:
            dl = 2.0 * (dl + 0.1 / t**0.5 * (2.0 * e * L_max + L_max**2 * dl))
            atol = e + L_max * dl + 1e-12
            np.testing.assert_allclose(res.direction, d8, rtol=0, atol=atol)
            np.testing.assert_allclose(res.extras["lambda"], lam8, rtol=0, atol=dl + 1e-12)


def test_normalised_rows_have_their_losses_as_length():
    J = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [1e-20, 0.0, 0.0], [0.0, 1e200, 1e200]])
    moco = MoCo(4, beta=1.0, normalization="loss")
    moco.update(J, losses=[2.0, 5.0, 7.0, 0.5])
    Y = moco.tracked
    np.testing.assert_allclose(row_norms(Y), [2.0, 0.0, 7.0, 0.5], rtol=1e-15)
    np.testing.assert_allclose(Y[0], [1.2, 1.6, 0.0], rtol=1e-15)
    # a loss of 0 gives a zero row; a tiny gradient with a huge loss does not overflow
    moco = MoCo(2, beta=1.0, normalization="loss")
    moco.update(np.array([[1e-300, 0.0], [1.0, 1.0]]), losses=[1e100, 0.0])
    np.testing.assert_array_equal(moco.tracked, [[1e100, 0.0], [0.0, 0.0]])


def test_first_step_closed_form():
    rng = np.random.default_rng(3)
    J = rng.standard_normal((4, 6))
    beta, gamma, rho = 0.3, 0.2, 0.1
    res = MoCo(4, beta=beta, gamma=gamma, rho=rho).update(J)
    Y = beta * J
    v = np.full(4, 0.25) - gamma * (beta**2 * (J @ J.T) + rho * np.eye(4)) @ np.full(4, 0.25)
    lam = bisection_projection(v)
    np.testing.assert_allclose(res.extras["lambda"], lam, atol=1e-14)
    np.testing.assert_allclose(res.direction, lam @ Y, atol=1e-14)
    np.testing.assert_allclose(res.extras["tracked_gram"], Y @ Y.T, rtol=1e-14)


def test_gamma_zero_gives_the_mean_of_the_tracked_gradients():
    rng = np.random.default_rng(4)
    moco = MoCo(3, gamma=0.0)
    for _ in range(4):
        res = moco.update(rng.standard_normal((3, 5)))
        np.testing.assert_array_equal(res.extras["lambda"], np.full(3, 1 / 3))
        np.testing.assert_allclose(res.direction, moco.tracked.mean(axis=0), atol=1e-15)


@pytest.mark.parametrize("rho", [0.0, 0.5])
def test_lambda_converges_to_the_min_norm_weights_on_fixed_gradients(rho):
    # With beta = 1 the tracked gradients are the gradients; constant steps of a
    # projected gradient method on 1/2 l^T (G + rho I) l converge to its minimiser
    # (the MGDA weights of G + rho I), found here by brute force over active sets.
    rng = np.random.default_rng(5)
    J = rng.standard_normal((4, 6))
    J[1] = -0.6 * J[0] + 0.4 * J[1]
    J /= np.linalg.norm(J, axis=1).max()
    A = J @ J.T + rho * np.eye(4)
    step = 1.0 / np.linalg.eigvalsh(A).max()
    moco = MoCo(4, beta=1.0, beta_sigma=0.0, gamma=step, gamma_sigma=0.0, rho=rho)
    for _ in range(3000):
        res = moco.update(J)
    expected = brute_force(A).weights
    np.testing.assert_allclose(res.extras["lambda"], expected, atol=1e-9)
    np.testing.assert_allclose(res.direction, expected @ J, atol=1e-9)


def test_tracking_averages_the_noise():
    # Y is an average of the noisy gradients: with beta_t = 1/t it is their running
    # mean, exactly (the "correction" of the paper's title).
    rng = np.random.default_rng(6)
    mean = rng.standard_normal((3, 8))
    moco = MoCo(3, beta=1.0, beta_sigma=1.0)
    draws = [mean + rng.standard_normal((3, 8)) for _ in range(50)]
    for J in draws:
        moco.update(J)
    np.testing.assert_allclose(moco.tracked, np.mean(draws, axis=0), atol=1e-13)


def test_permuting_tasks_permutes_everything():
    rng = np.random.default_rng(7)
    Js = [rng.standard_normal((4, 5)) for _ in range(3)]
    losses = [rng.uniform(0.5, 2.0, 4) for _ in range(3)]
    perm = np.array([2, 0, 3, 1])
    for update in ("projection", "softmax"):
        a = MoCo(4, lambda_update=update, normalization="loss")
        b = MoCo(4, lambda_update=update, normalization="loss")
        for J, L in zip(Js, losses, strict=True):
            ra, rb = a.update(J, losses=L), b.update(J[perm], losses=L[perm])
            np.testing.assert_allclose(rb.direction, ra.direction, atol=1e-14)
            np.testing.assert_allclose(rb.extras["lambda"], ra.extras["lambda"][perm], atol=1e-15)


def test_single_task_and_zero_gradients():
    moco = MoCo(1)
    res = moco.update(np.array([[3.0, -4.0]]))
    np.testing.assert_array_equal(res.extras["lambda"], [1.0])
    np.testing.assert_array_equal(res.direction, [1.5, -2.0])
    moco = MoCo(3, normalization="loss")
    for _ in range(2):
        res = moco.update(np.zeros((3, 4)), losses=[1.0, 2.0, 3.0])
        np.testing.assert_array_equal(res.direction, np.zeros(4))
        np.testing.assert_allclose(res.extras["lambda"], np.full(3, 1 / 3), atol=1e-16)


def test_dtypes_and_gram():
    J = np.array([[1.0, 0.5, -1.0], [0.0, 2.0, 1.0]])
    d64 = MoCo(2).update(J).direction
    for dtype, out in ((np.float32, np.float32), (np.float16, np.float32)):
        res = MoCo(2).update(J.astype(dtype))
        assert res.direction.dtype == out
        np.testing.assert_allclose(res.direction, d64, rtol=1e-3)
        assert res.gram.dtype == np.float64
    res = MoCo(2).update(J, gram=J @ J.T)
    np.testing.assert_array_equal(res.direction, d64)
    with pytest.raises(ValueError, match="gram does not match grads"):
        MoCo(2).update(J, gram=np.eye(2))


# -- state ------------------------------------------------------------------------------------
def test_state_round_trip_is_bit_identical():
    rng = np.random.default_rng(8)
    Js = [rng.standard_normal((4, 9)) for _ in range(7)]
    losses = [rng.uniform(0.2, 2.0, 4) for _ in range(7)]
    options = dict(beta=0.7, gamma=0.3, rho=0.05, lambda_update="softmax", normalization="loss")
    straight = MoCo(4, **options)
    directions = [straight.update(J, losses=L).direction for J, L in zip(Js, losses, strict=True)]
    first = MoCo(4, **options)
    for J, L in zip(Js[:3], losses[:3], strict=True):
        first.update(J, losses=L)
    state = first.state_dict()
    assert np.shape(state["tracked"]) == (4, 9) and state["step"] == 3
    resumed = MoCo(4)  # other options: the state brings its own
    resumed.load_state_dict(state)
    assert resumed.lambda_update == "softmax" and resumed.rho == 0.05
    for J, L, d in zip(Js[3:], losses[3:], directions[3:], strict=True):
        assert resumed.update(J, losses=L).direction.tobytes() == d.tobytes()
    assert resumed.tracked.tobytes() == straight.tracked.tobytes()
    assert resumed.lambda_.tobytes() == straight.lambda_.tobytes()
    # the saved state is a copy
    first.update(Js[3], losses=losses[3])
    again = MoCo(4)
    again.load_state_dict(state)
    assert again.update(Js[3], losses=losses[3]).direction.tobytes() == directions[3].tobytes()


def test_fresh_state_round_trip_and_reset():
    moco = MoCo(3, gamma=0.4)
    fresh = moco.state_dict()
    assert fresh["tracked"] is None and fresh["step"] == 0
    J = np.random.default_rng(9).standard_normal((3, 4))
    expected = moco.update(J).direction
    other = MoCo(3)
    other.load_state_dict(fresh)
    assert other.update(J).direction.tobytes() == expected.tobytes()
    moco.reset()
    assert moco.step == 0 and moco.tracked is None
    np.testing.assert_array_equal(moco.lambda_, np.full(3, 1 / 3))
    assert moco.update(J).direction.tobytes() == expected.tobytes()
    moco.reset()
    moco.update(np.ones((3, 7)))  # after reset, another M is fine


def test_corrupt_states_are_refused_and_change_nothing():
    rng = np.random.default_rng(10)
    moco = MoCo(3)
    for _ in range(2):
        moco.update(rng.standard_normal((3, 5)))
    good = moco.state_dict()
    bads = {
        "tracked": [None, np.ones((2, 5)), np.ones(15), np.ones((3, 0)), np.full((3, 5), np.nan)],
        "lambda": [np.array([0.5, 0.5, 0.5]), np.array([1.5, -0.5, 0.0]), np.ones(2) / 2],
        "step": [0, -1, 1.5],
    }
    for key, values in bads.items():
        for bad in values:
            with pytest.raises((ValueError, TypeError), match=key):
                moco.load_state_dict({**good, key: bad})
            assert np.asarray(moco.state_dict()["tracked"]).tobytes() == (
                np.asarray(good["tracked"]).tobytes()
            )
            assert moco.step == 2
    with pytest.raises(ValueError, match="tracked"):
        moco.load_state_dict({**good, "tracked": np.array([["a"] * 5] * 3)})
    fresh = MoCo(3).state_dict()
    with pytest.raises(ValueError, match="tracked"):
        MoCo(3).load_state_dict({**fresh, "tracked": np.ones((3, 5))})  # array at step 0
    with pytest.raises(ValueError, match="3 tasks"):
        MoCo(2).load_state_dict(good)


# -- bad input ------------------------------------------------------------------------------
def test_bad_input_is_named_and_changes_nothing():
    moco = MoCo(3, normalization="loss")
    J = np.random.default_rng(11).standard_normal((3, 4))
    moco.update(J, losses=[1.0, 1.0, 1.0])
    state = moco.state_dict()
    with pytest.raises(ValueError, match="needs grads"):
        moco.update(gram=J @ J.T, losses=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="M must stay the same"):
        moco.update(np.ones((3, 5)), losses=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="K must stay the same"):
        moco.update(np.ones((2, 4)), losses=[1.0, 1.0])
    with pytest.raises(ValueError, match="losses"):
        moco.update(J)
    with pytest.raises(ValueError, match=r"losses\[1\]"):
        moco.update(J, losses=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="losses"):
        moco.update(J, losses=[1.0, 1.0])
    with pytest.raises(ValueError, match="NaN"):
        moco.update(np.where(np.eye(3, 4) > 0, np.nan, J), losses=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="overflows"):
        MoCo(2).update(np.array([[1e160, 0.0], [0.0, 1.0]]))
    after = moco.state_dict()
    assert np.asarray(after["tracked"]).tobytes() == np.asarray(state["tracked"]).tobytes()
    assert after["step"] == 1
    # without normalisation the losses are not read, only checked to be K numbers
    MoCo(3).update(J, losses=[-1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="losses"):
        MoCo(3).update(J, losses=[1.0])


def test_bad_options_are_named():
    for option, bad in [
        ("beta", 0.0),
        ("beta", 1.5),
        ("beta_sigma", -0.1),
        ("gamma", -1.0),
        ("gamma", float("inf")),
        ("gamma_sigma", float("nan")),
        ("rho", -1e-3),
        ("lambda_update", "proj"),
        ("normalization", "l2"),
    ]:
        with pytest.raises((ValueError, TypeError), match=option):
            MoCo(2, **{option: bad})
    with pytest.raises(ValueError, match="num_tasks"):
        MoCo(0)


def test_registered_as_stateful_gradient_needing_grads():
    assert info("moco").kind == "stateful-gradient"
    assert get("moco") is MoCo and MoCo.needs_grads is True
    assert "ICLR 2023" in info("moco").paper
