"""IMTL-G against the paper's closed form, its equal-projection property and TorchJD."""

import itertools

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paretomtl import solvers
from paretomtl.solvers import imtl_g
from tests.strategies import grads_matrices

EPS = float(np.finfo(np.float64).eps)


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
    _check_permutation(J, perm)


def test_permutation_of_a_nearly_colinear_family():
    # Thorough-profile input: six near multiples of one vector in R^4, kept eigenvalues
    # of C from 1.3e-7 to 6 (kappa 4.6e7), no equal projection (kkt_residual ~ 1):
    # the weights move by up to 6e-7 relative with the order of the tasks, within the
    # bound (1.4e-3 here, the kappa^2 term), and the orders must still agree to it.
    J = np.array(
        [
            [1.65755711, -3.53174591, -0.90909582, 0.17658792],
            [-0.35255578, 0.75231929, 0.19381116, -0.03768896],
            [-1.89433738, 4.03581592, 1.03933562, -0.20376929],
            [-0.77479324, 1.64615193, 0.4249901, -0.08243688],
            [-0.20497783, 0.43643214, 0.11326863, -0.02225573],
            [1.20959426, -2.58106795, -0.66282595, 0.12928758],
        ]
    )
    rng = np.random.default_rng(0)
    for _ in range(20):
        _check_permutation(J, rng.permutation(6))


def _check_permutation(J, perm):
    """Equal weights up to a bound on the rounding of each run.

    Exact arithmetic gives equal answers; each run solves y = C^+ 1 on a C perturbed
    by E, ||E|| <= eta = K (M + 3) eps ||C|| (the rounding of G = J J^T and of the
    division by the norms). To first order (Wedin), with the rank unchanged,
    ||dy|| / ||y|| <= kappa eta / ||C|| (2 + ||C^+|| ||r|| / ||y||), kappa the ratio
    of C's extreme kept eigenvalues and r = 1 - C y the least-squares residual (large
    where no equal projection exists: then kappa^2 enters). The weights w = v / sum v,
    v = N^-1 y, compared as w o n = y / sum v: relative error at most that of y times
    (1 + ||y|| ||1 / n|| / |sum v|), twice for the two runs, and 10 times for the
    first-order terms and eigh's own backward error. Near the rank cut-off (a kept
    or dropped eigenvalue within 10x of it) the two runs may keep different ranks:
    only finiteness is asserted there.
    """
    a, b = imtl_g(J).weights[perm], imtl_g(J[perm]).weights
    assert np.isfinite(a).all() and np.isfinite(b).all()
    K, M = J.shape
    n = np.linalg.norm(J[perm], axis=1)
    nz = n > 0
    if not nz.any():
        assert not a.any() and not b.any()
        return
    U = J[perm][nz] / n[nz, None]
    lam, Q = np.linalg.eigh(U @ U.T)
    cut = 8 * nz.sum() * EPS * lam[-1]
    if np.any((lam > cut / 10) & (lam < cut * 10)):
        return  # the rank is decided by rounding
    keep = lam > cut
    Qk = Q[:, keep]
    y = Qk @ ((Qk.T @ np.ones(nz.sum())) / lam[keep])
    if not np.linalg.norm(y) > 1e-8:
        return  # C^+ 1 = 0: degenerate; the regression test below covers it
    r = np.ones(nz.sum()) - (U @ U.T) @ y
    kappa = lam[-1] / lam[keep].min()
    rho = kappa * K * (M + 3) * EPS * (2 + np.linalg.norm(r) / lam[keep].min() / np.linalg.norm(y))
    total = abs(np.sum(y / n[nz]))
    spread = 1 + np.linalg.norm(y) * np.linalg.norm(1 / n[nz]) / max(total, 1e-300)
    bound = 20 * rho * spread
    diff = np.linalg.norm((a - b)[nz] * n[nz])
    assert diff <= (bound + 1e-13) * max(np.linalg.norm(b[nz] * n[nz]), 1e-300) or bound >= 1


def test_sign_balanced_colinear_gradients_are_degenerate_in_every_order():
    # Regression (thorough profile): one dimension, signs (+, -, +, -). The unit
    # gradients are s = (1, -1, 1, -1), C = s s^T, and C^+ 1 = s (s . 1) / 16 = 0
    # exactly (Fraction-free: s . 1 = 0 in integers), so no weights summing to 1 give
    # equal nonzero projections. eigh's rounding used to leave v ~ 1e-17, whose sum
    # passed the degeneracy test in some task orders (weights up to 3.3).
    J = np.array([[2.04091912], [-2.55566503], [0.41809885], [-0.56776961]])
    for perm in itertools.permutations(range(4)):
        res = imtl_g(J[list(perm)])
        assert res.extras["degenerate"] and not res.weights.any()
        _check_permutation(J, np.array(perm))


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
@example(J=np.array([[-0.80193143], [-1.324359], [-0.24836162], [0.42044524], [1.13604653]]))
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
    # Compare the directions v @ J = U^T y (unique), not v (defined up to C's null
    # space). Where rhs is orthogonal to C's range (e.g. rhs = (1, 1.25, 1.5, 1.75, 2)
    # on signs (-, -, -, +, +): s . rhs = 0 exactly), the exact y is 0; either route
    # leaves a component of Q^T rhs of at most 8 K eps ||rhs|| (ours zeroes it), divided
    # by a kept eigenvalue and mapped by U^T (norm sqrt(lambda_max)): an absolute floor.
    lam = np.linalg.eigvalsh(C)
    kept = lam[lam > 1e-12 * lam[-1]].min()
    floor = 8 * nz.sum() * EPS * np.linalg.norm(rhs[nz]) * np.sqrt(lam[-1]) / kept
    np.testing.assert_allclose(v @ J, ref @ J, rtol=1e-6, atol=1e-8 * np.abs(ref @ J).max() + floor)
