"""Aligned-MTL against its aligned Gram matrix, a 2 x 2 closed form, LibMTL's and TorchJD's."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers
from paretomtl.solvers import aligned_mtl
from tests.strategies import grads_matrices

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)


@given(
    grads_matrices(min_tasks=1, max_tasks=10, max_dim=12),
    st.sampled_from(["min", "median", "rmse"]),
)
def test_aligned_gradients_have_condition_number_one(J, mode):
    res = aligned_mtl(J, scale_mode=mode)
    B, R = res.extras["transform"], res.extras["rank"]
    w = res.weights
    assert np.isfinite(w).all()
    np.testing.assert_allclose(res.direction, w @ J, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(w, B @ np.ones(J.shape[0]), rtol=1e-12, atol=0)
    G = J @ J.T
    if R == 0:
        assert not G.any()
        return
    # The aligned gradients B J (formed here from the vectors): R nonzero singular
    # values, all equal (sqrt(s)), the rest ~0.
    sv = np.linalg.svd(B @ J, compute_uv=False)
    top = np.linalg.eigvalsh(G)[-1]
    s = res.extras["scale"] * top
    np.testing.assert_allclose(sv[:R], np.sqrt(s), rtol=1e-6)
    assert (sv[R:] <= 1e-6 * np.sqrt(s)).all()
    # B is symmetric, maps into G's kept eigenspace, and B G B = s P.
    np.testing.assert_allclose(B, B.T, atol=1e-12 * np.abs(B).max())


def sqrtm_2x2(G):
    # For a 2 x 2 SPD G: sqrt(G) = (G + sqrt(det G) I) / sqrt(tr G + 2 sqrt(det G)).
    r = np.sqrt(np.linalg.det(G))
    return (G + r * np.eye(2)) / np.sqrt(np.trace(G) + 2 * r)


@given(st.floats(-2, 2), st.floats(-2, 2), st.floats(0.2, 2.9), st.integers(0, 2**32 - 1))
def test_two_tasks_closed_form(e1, e2, angle, seed):
    # B = sqrt(lambda_min) G^{-1/2}, lambda_min = (tr - sqrt(tr^2 - 4 det)) / 2.
    Q = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 2)))[0].T
    J = np.stack([10.0**e1 * Q[0], 10.0**e2 * (np.cos(angle) * Q[0] + np.sin(angle) * Q[1])])
    G = J @ J.T
    tr, det = np.trace(G), np.linalg.det(G)
    lam_min = (tr - np.sqrt(tr * tr - 4 * det)) / 2
    B = np.sqrt(lam_min) * np.linalg.inv(sqrtm_2x2(G))
    # Full rank at float64's cut-off (the default, float32's, may drop lambda_min).
    np.testing.assert_allclose(aligned_mtl(J, eps=EPS64).weights, B @ np.ones(2), rtol=1e-6)


def libmtl_weights(G, eps=EPS32):
    """LibMTL's Aligned_MTL (and the authors' ProcrustesSolver), written from its formula."""
    lam, V = np.linalg.eigh(G)
    tol = lam.max() * G.shape[0] * eps
    keep = lam > tol
    lam, V = lam[keep][::-1], V[:, keep][:, ::-1]
    B = np.sqrt(lam[-1]) * (V / np.sqrt(lam)) @ V.T
    return B.sum(axis=0)


@given(grads_matrices(min_tasks=2, max_tasks=10, max_dim=12))
def test_matches_libmtls_formula(J):
    G = J @ J.T
    if not G.any():
        return
    lam = np.linalg.eigvalsh(G)
    cut = lam.max() * G.shape[0] * EPS32
    if np.any(np.abs(lam - cut) <= 1e-3 * cut + 1e-12 * lam.max()):
        return  # an eigenvalue at the cut-off itself: either side is right
    ref = libmtl_weights(G)
    np.testing.assert_allclose(
        aligned_mtl(gram=G).weights, ref, rtol=1e-6, atol=1e-9 * np.abs(ref).max()
    )


@given(grads_matrices(max_tasks=8, max_dim=8), st.sampled_from([-700, -100, 100, 700]))
def test_common_scale_leaves_the_weights(J, k):
    np.testing.assert_allclose(
        aligned_mtl(np.ldexp(J, k)).weights, aligned_mtl(J).weights, rtol=1e-9, atol=1e-12
    )


def test_rank_deficient_zero_and_huge_inputs():
    rng = np.random.default_rng(2)
    J = rng.standard_normal((128, 20))
    res = aligned_mtl(J)
    assert res.extras["rank"] == 20 and np.isfinite(res.weights).all()
    np.testing.assert_array_equal(aligned_mtl(np.zeros((3, 2))).weights, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(
        aligned_mtl(np.zeros((2, 2)), pref_vector=[2.0, 3.0]).weights, [2.0, 3.0]
    )
    J = rng.standard_normal((6, 8)) * 10.0 ** np.linspace(-30, 30, 6)[:, None]
    res = aligned_mtl(J)
    assert np.isfinite(res.weights).all() and np.isfinite(res.direction).all()


def test_the_rank_cut_off():
    # Eigenvalues 1, 1e-10: dropped by K eps32 (the authors'), kept by K eps64 (TorchJD).
    J = np.diag([1.0, 1e-5])
    assert aligned_mtl(J).extras["rank"] == 1
    np.testing.assert_allclose(aligned_mtl(J).weights, [1.0, 0.0])
    kept = aligned_mtl(J, eps=EPS64)
    assert kept.extras["rank"] == 2
    np.testing.assert_allclose(kept.weights, [1e-5, 1.0])


def test_options_are_checked():
    J = np.eye(3)
    with pytest.raises(ValueError, match="scale_mode must be one of"):
        aligned_mtl(J, scale_mode="max")
    with pytest.raises(ValueError, match=r"eps must lie in \[0, 1\)"):
        aligned_mtl(J, eps=1.0)
    with pytest.raises(ValueError, match="pref_vector"):
        aligned_mtl(J, pref_vector=[1.0, 1.0])
    assert solvers.get("aligned_mtl") is aligned_mtl
    assert solvers.method("aligned-mtl", scale_mode="rmse")(J).method == "aligned-mtl/rmse"


# ----------------------------------------------------------------------------------
# TorchJD (AlignedMTLWeighting: pref 1/K by default, cut-off with the dtype's eps)
# ----------------------------------------------------------------------------------


def torchjd_weights(G, mode="min", pref=None):
    torch = pytest.importorskip("torch")
    torchjd = pytest.importorskip("torchjd")
    pv = None if pref is None else torch.from_numpy(np.asarray(pref, dtype=np.float64))
    weighting = torchjd.aggregation.AlignedMTLWeighting(pref_vector=pv, scale_mode=mode)
    return weighting(torch.from_numpy(G)).numpy()


@given(
    grads_matrices(min_tasks=2, max_tasks=12, max_dim=16),
    st.sampled_from(["min", "median", "rmse"]),
)
def test_agrees_with_torchjd(J, mode):
    G = J @ J.T
    lam = np.linalg.eigvalsh(G)
    kept = lam[lam > lam.max() * len(lam) * EPS64]
    if not G.any() or kept.min() < 1e-6 * kept.max():
        return  # tiny kept eigenvalues are known to eps * lambda_max only, in both
    K = J.shape[0]
    theirs = torchjd_weights(G, mode) * K  # their default preference is 1/K
    ours = aligned_mtl(gram=G, scale_mode=mode, eps=EPS64).weights
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9 * np.abs(theirs).max())
    pref = np.linspace(0.5, 2.0, K)
    np.testing.assert_allclose(
        aligned_mtl(gram=G, scale_mode=mode, eps=EPS64, pref_vector=pref).weights,
        torchjd_weights(G, mode, pref),
        rtol=1e-6,
        atol=1e-9 * np.abs(theirs).max(),
    )


def test_agrees_with_torchjd_when_rank_deficient():
    rng = np.random.default_rng(8)
    for K, M in ((5, 2), (9, 4), (32, 10)):
        J = rng.standard_normal((K, M))
        G = J @ J.T
        ours = aligned_mtl(gram=G, eps=EPS64)
        assert ours.extras["rank"] == M
        np.testing.assert_allclose(ours.weights, torchjd_weights(G) * K, rtol=1e-8, atol=1e-10)
