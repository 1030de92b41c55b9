"""DualProj against brute force, closed forms, the paper's properties and TorchJD."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers
from tests.oracles import gram64
from tests.solvers.test_upgrad import box_qp_reference, direction_error, kkt_violation
from tests.strategies import grads_matrices

prefs = st.lists(st.floats(0.0, 10.0), min_size=8, max_size=8).filter(lambda p: sum(p) > 0)


def _pref(J, p):
    p = np.array(p[: J.shape[0]])
    return p if p.any() else np.ones(J.shape[0])


@given(J=grads_matrices(max_tasks=7, max_dim=7), p=prefs)
def test_the_projection_is_the_brute_force_one_and_meets_kkt(J, p):
    pref = _pref(J, p)
    res = solvers.dualproj(J, pref_vector=pref)
    G = gram64(J)
    assert res.converged
    assert np.all(res.weights >= pref)  # v >= p exactly
    assert kkt_violation(G, pref, res.weights) <= 1e-8
    assert res.kkt_residual <= 1e-8
    ref = box_qp_reference(G, pref)
    assert direction_error(J, res.weights, ref) <= 1e-7 * np.abs(pref).sum()
    # <g_i, d> >= 0 for every task, up to rounding relative to the largest gradient
    scale = float(np.max(np.diagonal(G))) * np.abs(res.weights).sum()
    assert (J @ res.direction).min() >= -1e-8 * scale
    np.testing.assert_allclose(res.objective, res.weights @ G @ res.weights, rtol=1e-12)


@given(J=grads_matrices(max_tasks=6, max_dim=6), power=st.sampled_from([-250, -7, 1, 300]))
def test_a_common_scale_leaves_the_weights_unchanged(J, power):
    base = solvers.dualproj(J)
    np.testing.assert_array_equal(solvers.dualproj(np.ldexp(J, power)).weights, base.weights)
    assert direction_error(J, solvers.dualproj(J * 1e-25).weights, base.weights) <= 1e-7


@given(J=grads_matrices(max_tasks=7, max_dim=8), seed=st.integers(0, 2**32 - 1))
def test_permuting_the_tasks_permutes_the_direction(J, seed):
    K = J.shape[0]
    rng = np.random.default_rng(seed)
    perm, pref = rng.permutation(K), rng.random(K) + 0.1
    res = solvers.dualproj(J, pref_vector=pref)
    res_p = solvers.dualproj(J[perm], pref_vector=pref[perm])
    scale = float(np.linalg.norm(J, axis=1).max()) * max(np.abs(res.weights).sum(), 1.0)
    assert np.linalg.norm(res_p.direction - res.direction) <= 1e-8 * max(scale, 1e-300)


@given(J=grads_matrices(min_tasks=2, max_tasks=2, max_dim=5), p=st.floats(0.01, 1.0))
def test_two_tasks_match_the_closed_form(J, p):
    pref = np.array([p, 1.0 - p + 0.01])
    G = gram64(J)
    y = G @ pref  # both cannot be negative: pref^T G pref >= 0
    v = pref.copy()
    if y[1] < 0 and G[1, 1] > 0:
        v[1] = -G[0, 1] * pref[0] / G[1, 1]
    elif y[0] < 0 and G[0, 0] > 0:
        v[0] = -G[0, 1] * pref[1] / G[0, 0]
    res = solvers.dualproj(J, pref_vector=pref)
    assert direction_error(J, res.weights, v) <= 1e-9


@given(J=grads_matrices(max_tasks=8, max_dim=6))
def test_without_conflict_dualproj_is_the_mean(J):
    J = np.abs(J)
    res = solvers.dualproj(J)
    np.testing.assert_array_equal(res.weights, np.full(J.shape[0], 1.0 / J.shape[0]))
    assert res.iterations == 0


def test_hard_cases_and_errors():
    rng = np.random.default_rng(9)
    for J in (
        np.zeros((3, 2)),
        rng.standard_normal((128, 1)) * rng.standard_normal((1, 4)),
        rng.standard_normal((128, 200)) - 0.2,
        rng.standard_normal((16, 30)) * 10.0 ** rng.uniform(-30, 30, (16, 1)),
    ):
        res = solvers.dualproj(J)
        assert np.isfinite(res.weights).all() and res.converged
        assert res.kkt_residual <= 1e-9 and res.extras["cone_violation"] <= 1e-9
    J = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(
        solvers.dualproj(J).weights, solvers.method("dualproj")(gram=J @ J.T).weights
    )
    with pytest.raises(ValueError, match=r"pref_vector\[2\] \(task 2\) is inf"):
        solvers.dualproj(J, pref_vector=[1, 1, np.inf])
    with pytest.raises(ValueError, match=r"grads\[0\].*dualproj"):
        solvers.dualproj(np.array([[1e-200, 0.0], [0.0, 1.0]]))


def test_matches_torchjd_with_tiny_eps_and_its_default_is_the_ridge():
    torch = pytest.importorskip("torch")
    torchjd = pytest.importorskip("torchjd")
    from torchjd._linalg import QuadprogProjector

    tiny = torchjd.aggregation.DualProjWeighting(
        projector=QuadprogProjector(norm_eps=1e-12, reg_eps=1e-12)
    )
    default = torchjd.aggregation.DualProjWeighting()
    rng = np.random.default_rng(11)
    worst_tiny, worst_default, worst_ridge = 0.0, 0.0, 0.0
    for _ in range(30):
        K = int(rng.integers(2, 12))
        J = rng.standard_normal((K, K + int(rng.integers(2, 8))))
        J[1:] = -0.5 * J[:1] + rng.standard_normal((K - 1, J.shape[1]))
        G = J @ J.T
        for p in (None, rng.random(K) + 0.05):
            tp = None if p is None else torch.from_numpy(p)
            tiny.pref_vector = tp
            default.pref_vector = tp
            w = solvers.dualproj(gram=G, pref_vector=p).weights
            scale = np.abs(w).max()
            worst_tiny = max(
                worst_tiny, np.abs(w - tiny(torch.from_numpy(G)).numpy()).max() / scale
            )
            w_default = default(torch.from_numpy(G)).numpy()
            worst_default = max(worst_default, np.abs(w - w_default).max() / scale)
            ridge = G / np.trace(G) + 1e-4 * np.eye(K)  # what TorchJD solves by default
            w_ridge = solvers.dualproj(gram=ridge, pref_vector=p).weights
            worst_ridge = max(worst_ridge, np.abs(w_ridge - w_default).max() / scale)
    assert worst_tiny <= 1e-8
    assert worst_ridge <= 1e-10
    assert worst_default > 1e-4
