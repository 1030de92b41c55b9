"""IMTL-G against the paper's closed form, its equal-projection property and TorchJD."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers
from paretomtl.solvers import imtl_g
from tests.strategies import grads_matrices


def unit_projections(J, w):
    """u_i . d for the nonzero rows, formed from the vectors (not from G)."""
    d = w @ J
    n = np.linalg.norm(J, axis=1)
    nz = n > 0
    return (J[nz] @ d) / n[nz]


def cosine_condition(J):
    n = np.linalg.norm(J, axis=1)
    U = J[n > 0] / n[n > 0, None]
    return np.linalg.cond(U @ U.T) if len(U) else 1.0


def paper_closed_form(J):
    """Liu et al. 2021: alpha_{2:K} = g_1 U^T (D U^T)^{-1}, alpha_1 = 1 - sum."""
    U = J / np.linalg.norm(J, axis=1, keepdims=True)
    D = J[0] - J[1:]
    Ud = U[0] - U[1:]
    a = np.linalg.solve((D @ Ud.T).T, (J[0] @ Ud.T))
    return np.concatenate([[1.0 - a.sum()], a])


@given(grads_matrices(min_tasks=1, max_tasks=10, max_dim=12))
def test_equal_projections_where_the_unit_gradients_are_independent(J):
    res = imtl_g(J)
    w = res.weights
    assert np.isfinite(w).all()
    np.testing.assert_allclose(res.direction, w @ J, rtol=1e-12, atol=1e-300)
    nonzero = np.linalg.norm(J, axis=1) > 0
    assert (w[~nonzero] == 0).all()  # no unit vector, no weight
    if nonzero.any() and cosine_condition(J) < 1e8:
        assert res.extras["rank"] == nonzero.sum()
        if not res.extras["degenerate"]:
            assert abs(w.sum() - 1.0) <= 1e-9
            r = unit_projections(J, w)
            spread = (r.max() - r.min()) / np.abs(r).max()
            assert spread <= 1e-14 * cosine_condition(J) + 1e-12
            assert res.kkt_residual <= 1e-14 * cosine_condition(J) + 1e-12


@given(grads_matrices(min_tasks=2, max_tasks=6, max_dim=10, allow_zero_rows=False))
def test_matches_the_papers_closed_form(J):
    n = np.linalg.norm(J, axis=1)
    if J.shape[0] > J.shape[1] or cosine_condition(J) > 1e4 or n.max() > 1e3 * n.min():
        return  # the paper's formula needs D U^T invertible; it mixes the norms' scales
    a = paper_closed_form(J)
    w = imtl_g(J).weights
    np.testing.assert_allclose(w, a, rtol=1e-6, atol=1e-9 * np.abs(a).max())


@given(st.floats(-50, 50), st.floats(-50, 50), st.floats(0.05, 3.0), st.integers(0, 2**32 - 1))
def test_two_tasks_closed_form(e1, e2, angle, seed):
    # alpha = (n2, n1) / (n1 + n2), d = n1 n2 / (n1 + n2) (u1 + u2): the bisector.
    n1, n2 = 10.0**e1, 10.0**e2
    Q = np.linalg.qr(np.random.default_rng(seed).standard_normal((4, 2)))[0].T
    u1, u2 = Q[0], np.cos(angle) * Q[0] + np.sin(angle) * Q[1]
    J = np.stack([n1 * u1, n2 * u2])
    w = imtl_g(J).weights
    np.testing.assert_allclose(w, np.array([n2, n1]) / (n1 + n2), rtol=1e-9)


@given(
    grads_matrices(min_tasks=2, max_tasks=8, max_dim=10, allow_zero_rows=False),
    st.lists(st.floats(-8, 8), min_size=8, max_size=8),
)
def test_the_direction_depends_on_the_unit_gradients_only(J, logs):
    # Impartial: rescaling each task's gradient changes the length of d, not its way.
    t = 10.0 ** np.array(logs[: J.shape[0]])
    a, b = imtl_g(J), imtl_g(J * t[:, None])
    if a.extras["degenerate"] or b.extras["degenerate"]:
        return
    da, db = a.direction, b.direction
    cos = da @ db / (np.linalg.norm(da) * np.linalg.norm(db))
    assert abs(abs(cos) - 1.0) <= 1e-9


@given(grads_matrices(max_tasks=8, max_dim=8), st.sampled_from([-700, -100, 100, 700]))
def test_common_scale_leaves_the_weights(J, k):
    # Powers of two scale exactly: the same weights at any scale.
    np.testing.assert_allclose(imtl_g(np.ldexp(J, k)).weights, imtl_g(J).weights, rtol=1e-12)


def test_opposite_gradients_have_no_weights_summing_to_one():
    J = np.array([[1.0, 2.0], [-1.0, -2.0]])
    res = imtl_g(J)
    assert res.extras["degenerate"] and (res.weights == 0).all()
    assert imtl_g(np.zeros((3, 4))).extras["degenerate"]
    np.testing.assert_array_equal(imtl_g(np.array([[0.0, 3.0]])).weights, [1.0])


def test_norms_over_sixty_decades_keep_every_direction():
    rng = np.random.default_rng(5)
    U = np.linalg.qr(rng.standard_normal((12, 6)))[0].T + 0.3  # independent, not orthogonal
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    n = 10.0 ** np.linspace(-30, 30, 6)
    res = imtl_g(U * n[:, None])
    # Projections u_i . d with d = sum_i (w_i n_i) u_i, formed without the huge scales.
    r = U @ ((res.weights * n) @ U)
    assert np.isfinite(res.weights).all()
    assert (r.max() - r.min()) / np.abs(r).max() <= 1e-10
    assert abs(res.weights.sum() - 1.0) <= 1e-12


def test_128_tasks_rank_deficient_and_duplicated():
    rng = np.random.default_rng(6)
    J = rng.standard_normal((128, 40))
    J[100:] = J[:28] * 3.0  # colinear copies
    J[7] = 0.0
    res = imtl_g(J)
    assert np.isfinite(res.weights).all() and res.weights[7] == 0.0
    assert res.extras["rank"] == 40


def test_a_gradient_lost_next_to_the_longest_is_refused():
    with pytest.raises(ValueError, match=r"grads\[1\] \(task 1\) is nonzero but too short"):
        imtl_g(np.array([[1.0, 0.0], [0.0, 1e-200]]))


@given(grads_matrices(min_tasks=2, max_tasks=8, max_dim=8), st.randoms(use_true_random=False))
def test_permutation_equivariance(J, rnd):
    perm = np.array(rnd.sample(range(J.shape[0]), J.shape[0]))
    np.testing.assert_allclose(
        imtl_g(J).weights[perm], imtl_g(J[perm]).weights, rtol=1e-7, atol=1e-12
    )


def test_registered_with_the_gram_route():
    assert solvers.get("imtl-g") is imtl_g and solvers.info("imtl_g").kind == "gradient"
    J = np.random.default_rng(0).standard_normal((3, 5))
    np.testing.assert_allclose(imtl_g(gram=J @ J.T).weights, imtl_g(J).weights, rtol=1e-12)


# ----------------------------------------------------------------------------------
# TorchJD (IMTLGWeighting: v = pinv(G) n, weights v / sum v, or 0 if |sum v| < 1e-12)
# ----------------------------------------------------------------------------------


def torchjd_weights(G):
    torch = pytest.importorskip("torch")
    torchjd = pytest.importorskip("torchjd")
    return torchjd.aggregation.IMTLGWeighting()(torch.from_numpy(G)).numpy()


@given(grads_matrices(min_tasks=2, max_tasks=12, max_dim=16, allow_zero_rows=False))
def test_agrees_with_torchjd_where_g_is_well_conditioned(J):
    G = J @ J.T
    if np.linalg.cond(G) > 1e6:
        return
    ours, theirs = imtl_g(gram=G).weights, torchjd_weights(G)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6 * np.abs(theirs).max())


def test_agrees_with_torchjd_on_duplicated_tasks_and_zero_rows():
    rng = np.random.default_rng(3)
    for _ in range(20):
        J = rng.standard_normal((5, 7))
        J[4] = J[1]  # a duplicated task: the null vector (e_1 - e_4) sums to 0
        J[2] = 0.0 if rng.random() < 0.5 else J[2]
        G = J @ J.T
        np.testing.assert_allclose(imtl_g(J).weights, torchjd_weights(G), rtol=1e-8, atol=1e-10)


def test_documented_differences_from_torchjd():
    g = np.array([1.0, 2.0, -1.0])
    J = np.stack([g, 2.0 * g])
    # Colinear tasks: any multiple of g has equal projections; pinv(G) n gives 5/3 g,
    # the unit-gradient route 4/3 g (alpha = (2/3, 1/3)).
    np.testing.assert_allclose(torchjd_weights(J @ J.T) @ J, 5.0 / 3.0 * g, rtol=1e-12)
    np.testing.assert_allclose(imtl_g(J).direction, 4.0 / 3.0 * g, rtol=1e-12)
    # Norms 1e10 and 1e-10: TorchJD's cut-off on G drops the short task's direction.
    J = np.array([[1e10, 0.0], [0.0, 1e-10]])
    np.testing.assert_allclose(torchjd_weights(J @ J.T), [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(imtl_g(J).weights, [1e-20, 1.0], rtol=1e-12)
    np.testing.assert_allclose(imtl_g(J).direction, [1e-10, 1e-10], rtol=1e-12)
    # Ill-conditioned but nonsingular G: both are G^-1 n, ours to a smaller spread.
    rng = np.random.default_rng(0)
    J = rng.standard_normal((10, 24)) * 10.0 ** rng.uniform(-3, 3, (10, 1))
    spread = lambda w: np.ptp(unit_projections(J, w)) / np.abs(unit_projections(J, w)).max()  # noqa: E731
    assert spread(imtl_g(J).weights) <= 1e-12 < spread(torchjd_weights(J @ J.T))


@given(grads_matrices(min_tasks=1, max_tasks=10, max_dim=12))
def test_unit_solve_is_numpys_pseudo_inverse_of_the_cosine_matrix(J):
    # Both routes (certified Cholesky, eigendecomposition) against numpy's pinv of C.
    from paretomtl.solvers.imtl_g import unit_pinv_coefficients

    G = J @ J.T
    n = np.sqrt(np.diag(G))
    nz = n > 0
    rhs = np.linspace(1.0, 2.0, J.shape[0])
    v = unit_pinv_coefficients(G, rhs).coefficients
    if not nz.any():
        assert not v.any()
        return
    C = (G[np.ix_(nz, nz)] / n[nz, None]) / n[None, nz]
    if np.linalg.cond(C) > 1e8 and np.linalg.cond(C) < 1e14:
        return  # between "clearly singular" and "clearly not": the cut-off decides
    ref = np.zeros_like(v)
    ref[nz] = np.linalg.pinv(C, rcond=1e-12, hermitian=True) @ rhs[nz] / n[nz]
    # Compare the directions v @ J (unique), not v (defined up to C's null space).
    np.testing.assert_allclose(v @ J, ref @ J, rtol=1e-6, atol=1e-8 * np.abs(ref @ J).max())
