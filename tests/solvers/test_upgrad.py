"""UPGrad against brute force, closed forms, the paper's properties and TorchJD."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers
from paretomtl.solvers import _dual_cone
from tests.oracles import gram64
from tests.strategies import grads_matrices


def box_qp_reference(G, u):
    """argmin_{v >= u} v^T G v by enumerating the free set F (K <= 8), written from KKT.

    Solved on the unit gradients (G_ij / (n_i n_j), n the gradient norms, with v = v' / n
    and v' >= n u: the same problem, well scaled when the norms span many decades). On
    F: G_FF x_F = -(G u)_F (least squares: G_FF may be singular), x_F >= 0, and
    (G v)_j >= 0 off F. Every candidate meeting these (to a loose tolerance) is a
    feasible point; the one with the smallest objective is returned (the direction
    J^T v is unique; v need not be).
    """
    K = G.shape[0]
    n = np.sqrt(np.clip(np.diagonal(G), 0.0, None))
    n = np.where(n > 0, n, 1.0)
    Gs = G / np.outer(n, n)
    un = u * n
    b = Gs @ un
    best, best_val = un.copy(), float(un @ Gs @ un)
    for size in range(1, K + 1):
        for F in itertools.combinations(range(K), size):
            idx = np.array(F)
            x = np.linalg.lstsq(Gs[np.ix_(idx, idx)], -b[idx], rcond=None)[0]
            if x.min() < -1e-12:
                continue
            v = un.copy()
            v[idx] += np.clip(x, 0.0, None)
            if (Gs @ v).min() < -1e-9 * np.abs(v).sum():
                continue
            val = float(v @ Gs @ v)
            if val < best_val:
                best, best_val = v, val
    return best / n


def kkt_violation(G, u, v):
    """max over the three KKT conditions of the box QP, relative to max G_ii ||u||_1."""
    scale = max(float(np.max(np.diagonal(G))) * float(np.abs(u).sum()), 1e-300)
    y = G @ v
    primal = max(0.0, float((u - v).max()))
    dual = max(0.0, -float(y.min())) / scale
    comp = float(np.max(np.abs((v - u) * y))) / scale
    return max(primal, dual, comp)


def direction_error(J, w, w_ref):
    scale = max(float(np.linalg.norm(J, axis=1).max()), 1e-300)
    return float(np.linalg.norm((w - w_ref) @ J)) / (scale * max(np.abs(w_ref).sum(), 1.0))


@given(J=grads_matrices(max_tasks=6, max_dim=7))
def test_each_projection_is_the_brute_force_one_and_the_direction_follows(J):
    res = solvers.upgrad(J)
    K = J.shape[0]
    G = gram64(J)
    # compared at the largest gradient's scale (the "scaled" family spans 12 decades)
    ref = sum(box_qp_reference(G, np.eye(K)[i]) for i in range(K)) / K
    assert res.converged
    assert direction_error(J, res.weights, ref) <= 1e-7


@given(J=grads_matrices(max_tasks=8, max_dim=8))
def test_every_projection_meets_kkt_and_the_direction_lies_in_the_dual_cone(J):
    res = solvers.upgrad(J)
    K = J.shape[0]
    G = gram64(J)
    proj = _dual_cone.project(G, np.eye(K))
    for i in range(K):
        assert kkt_violation(G, np.eye(K)[i], proj.V[i]) <= 1e-8
        assert np.all(proj.V[i] >= np.eye(K)[i])  # v >= u exactly
    np.testing.assert_allclose(res.weights, proj.V.mean(axis=0), rtol=1e-12, atol=0.0)
    assert res.kkt_residual <= 1e-8
    # <g_i, d> >= 0 for every task, up to rounding relative to the largest gradient
    scale = float(np.max(np.diagonal(G))) * np.abs(res.weights).sum()
    assert (J @ res.direction).min() >= -1e-8 * scale
    assert res.extras["cone_violation"] <= 1e-8


@given(
    J=grads_matrices(max_tasks=6, max_dim=6),
    power=st.sampled_from([-300, -60, -1, 3, 200]),
    factor=st.sampled_from([1e-30, 0.37, 1e30]),
)
def test_a_common_scale_leaves_the_weights_unchanged(J, power, factor):
    base = solvers.upgrad(J).weights
    exact = solvers.upgrad(np.ldexp(J, power)).weights  # power of two: G scales exactly
    np.testing.assert_array_equal(exact, base)
    scaled = solvers.upgrad(J * factor)
    assert direction_error(J, scaled.weights, base) <= 1e-7


@given(J=grads_matrices(max_tasks=7, max_dim=8), seed=st.integers(0, 2**32 - 1))
def test_permuting_the_tasks_permutes_the_direction_and_weights(J, seed):
    K = J.shape[0]
    perm = np.random.default_rng(seed).permutation(K)
    res, res_p = solvers.upgrad(J), solvers.upgrad(J[perm])
    scale = float(np.linalg.norm(J, axis=1).max()) * max(np.abs(res.weights).sum(), 1.0)
    assert np.linalg.norm(res_p.direction - res.direction) <= 1e-8 * max(scale, 1e-300)
    G = gram64(J)
    if np.linalg.eigvalsh(G / max(G.diagonal().max(), 1e-300)).min() > 1e-6:
        np.testing.assert_allclose(res_p.weights, res.weights[perm], rtol=1e-8, atol=1e-10)


@given(J=grads_matrices(min_tasks=2, max_tasks=2, max_dim=5), p=st.floats(0.0, 1.0))
def test_two_tasks_match_the_closed_form(J, p):
    pref = np.array([p, 1.0 - p]) if p < 1.0 else np.array([1.0, 0.0])
    G = gram64(J)
    c = G[0, 1]
    # projection of g1: g1 - c / |g2|^2 g2 when c < 0, else g1; and symmetrically
    v1 = np.array([1.0, -c / G[1, 1] if c < 0 and G[1, 1] > 0 else 0.0])
    v2 = np.array([-c / G[0, 0] if c < 0 and G[0, 0] > 0 else 0.0, 1.0])
    expected = pref[0] * v1 + pref[1] * v2
    res = solvers.upgrad(J, pref_vector=pref)
    assert direction_error(J, res.weights, expected) <= 1e-9
    if np.linalg.eigvalsh(G / max(G.diagonal().max(), 1e-300)).min() > 1e-6:
        np.testing.assert_allclose(res.weights, expected, rtol=1e-9)


@given(J=grads_matrices(max_tasks=8, max_dim=6), seed=st.integers(0, 2**32 - 1))
def test_without_conflict_upgrad_is_the_preference_weighted_sum(J, seed):
    J = np.abs(J)  # every inner product >= 0: each gradient is in the dual cone
    pref = np.random.default_rng(seed).random(J.shape[0]) + 0.1
    res = solvers.upgrad(J, pref_vector=pref)
    np.testing.assert_array_equal(res.weights, pref)
    np.testing.assert_array_equal(solvers.upgrad(J).weights, np.full(J.shape[0], 1 / len(J)))
    assert res.iterations == 0


def test_hard_cases_get_finite_exact_answers():
    rng = np.random.default_rng(5)
    cases = {
        "zero": np.zeros((4, 3)),
        "one task": np.array([[3.0, -4.0]]),
        "duplicated conflicting": np.array([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.1]]),
        "zero row": np.array([[1.0, 0.0], [0.0, 0.0], [-1.0, 1.0]]),
        "rank one, K = 128": rng.standard_normal((128, 1)) * rng.standard_normal((1, 5)),
        "decades": rng.standard_normal((32, 40)) * 10.0 ** rng.uniform(-30, 30, (32, 1)),
        "K = 128 wide": rng.standard_normal((128, 300)) - 0.3,
        "K = 128 rank 20": rng.standard_normal((128, 20)) @ rng.standard_normal((20, 50)),
    }
    for name, J in cases.items():
        res = solvers.upgrad(J)
        assert np.isfinite(res.weights).all(), name
        assert res.converged, name
        assert res.kkt_residual <= 1e-9, (name, res.kkt_residual)
        assert res.extras["cone_violation"] <= 1e-9, name
        assert res.extras["stalled"] == 0, name
    np.testing.assert_array_equal(solvers.upgrad(cases["zero"]).weights, np.full(4, 0.25))
    # the zero gradient keeps its bound: its weight is exactly its preference
    assert solvers.upgrad(cases["zero row"]).weights[1] == 1 / 3


def test_gram_route_equals_grads_route_and_errors_name_the_argument():
    J = np.random.default_rng(0).standard_normal((5, 9))
    np.testing.assert_array_equal(
        solvers.upgrad(J).weights, solvers.method("upgrad")(gram=J @ J.T).weights
    )
    assert solvers.info("upgrad").kind == "gradient"
    with pytest.raises(ValueError, match=r"pref_vector\[1\] \(task 1\) is -1.0"):
        solvers.upgrad(J, pref_vector=[1, -1, 1, 1, 1])
    with pytest.raises(ValueError, match="pref_vector must have shape"):
        solvers.upgrad(J, pref_vector=[1, 1])
    with pytest.raises(ValueError, match=r"pref_vector.* nan"):
        solvers.upgrad(J, pref_vector=[1, np.nan, 1, 1, 1])
    with pytest.raises(ValueError, match="pref_vector must have a positive entry"):
        solvers.upgrad(J, pref_vector=np.zeros(5))
    lost = np.array([[1.0, 0.0], [1e-200, 1e-200]])
    with pytest.raises(ValueError, match=r"grads\[1\].*upgrad"):
        solvers.upgrad(lost)


def test_deterministic_bit_for_bit_on_a_singular_gram():
    rng = np.random.default_rng(3)
    J = rng.standard_normal((12, 3))
    J[5] = J[2]
    first = solvers.upgrad(J).weights
    for _ in range(3):
        np.testing.assert_array_equal(solvers.upgrad(J).weights, first)
    # the canonical v: the free gradients are independent, so of two duplicated
    # tasks at most one is free in any projection
    V = _dual_cone.project(gram64(J), np.eye(12)).V
    free = V > np.eye(12)
    assert free.any() and not (free[:, 2] & free[:, 5]).any()


# ----------------------------------------------------------------------------- torchjd


def _random_full_rank(rng, K):
    J = rng.standard_normal((K, K + int(rng.integers(2, 8))))
    J[1:] = -0.5 * J[:1] + rng.standard_normal((K - 1, J.shape[1]))  # conflicts
    return J @ J.T


def test_matches_torchjd_with_tiny_eps_and_its_default_is_the_ridge():
    torch = pytest.importorskip("torch")
    torchjd = pytest.importorskip("torchjd")
    from torchjd._linalg import QuadprogProjector

    tiny = torchjd.aggregation.UPGradWeighting(
        projector=QuadprogProjector(norm_eps=1e-12, reg_eps=1e-12)
    )
    default = torchjd.aggregation.UPGradWeighting()
    rng = np.random.default_rng(7)
    worst_tiny, worst_default, worst_ridge = 0.0, 0.0, 0.0
    for _ in range(25):
        K = int(rng.integers(2, 12))
        G = _random_full_rank(rng, K)
        pref = rng.random(K) + 0.05
        for p in (None, pref):
            tp = None if p is None else torch.from_numpy(p)
            tiny.pref_vector = tp
            default.pref_vector = tp
            w = solvers.upgrad(gram=G, pref_vector=p).weights
            scale = np.abs(w).max()
            worst_tiny = max(
                worst_tiny, np.abs(w - tiny(torch.from_numpy(G)).numpy()).max() / scale
            )
            w_default = default(torch.from_numpy(G)).numpy()
            worst_default = max(worst_default, np.abs(w - w_default).max() / scale)
            # TorchJD's default is the exact projection for G / tr G + 1e-4 I
            ridge = G / np.trace(G) + 1e-4 * np.eye(K)
            w_ridge = solvers.upgrad(gram=ridge, pref_vector=p).weights
            worst_ridge = max(worst_ridge, np.abs(w_ridge - w_default).max() / scale)
    assert worst_tiny <= 1e-8
    assert worst_ridge <= 1e-10
    assert worst_default > 1e-4  # the ridge's effect is real, and it is all of it


def test_the_iteration_cap_is_reported_honestly():
    from paretomtl._kernels.dual_cone import dual_cone_weights

    rng = np.random.default_rng(4)
    J = rng.standard_normal((30, 60))
    J[10:] *= -1.0  # two camps: each projection frees several tasks
    G = J @ J.T
    K = 30
    full = _dual_cone.project(G, np.eye(K))
    assert full.converged and full.iterations > 2 * K
    V, w, its, residual, unsolved, stalled, violation = dual_cone_weights(
        G, np.eye(K), np.ones(K), _dual_cone.TOL, 1, _dual_cone.KKT_ACCEPT
    )
    assert its <= 2 * K  # one entering round per row (and at most one drop after it)
    assert unsolved > 0 and residual > _dual_cone.KKT_ACCEPT
    assert np.all(V >= np.eye(K))  # still feasible: v >= u
    np.testing.assert_allclose(w, V.sum(axis=0), rtol=1e-12)
    assert stalled == 0 and violation >= 0.0
