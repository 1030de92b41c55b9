"""MGDA's gradient normalisations (Sener & Koltun's code, LibMTL's mgda_gn).

The reference normalises the gradients as LibMTL's ``_gradient_normalizers`` does
(written here from its formulas: ||g_i||, L_i, L_i ||g_i||), solves the min-norm
problem on them by brute force (tests/oracles.py) and forms the direction from the
normalised gradients, as LibMTL's backward does.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers
from paretomtl.solvers import mgda
from tests import oracles
from tests.strategies import grads_matrices

MODES = st.sampled_from(["l2", "loss", "loss+"])


def libmtl_normalizers(J, losses, mode):
    n = np.linalg.norm(J, axis=1)
    if mode == "l2":
        return n
    if mode == "loss":
        return np.asarray(losses, dtype=float)
    return np.asarray(losses, dtype=float) * n


@given(
    grads_matrices(min_tasks=1, max_tasks=6, max_dim=8, allow_zero_rows=False),
    MODES,
    st.lists(st.floats(1e-3, 1e3), min_size=6, max_size=6),
)
def test_matches_libmtls_normalised_min_norm_point(J, mode, loss_list):
    K = J.shape[0]
    losses = np.array(loss_list[:K])
    c = libmtl_normalizers(J, losses, mode)
    Jn = J / c[:, None]
    Gn = Jn @ Jn.T
    ref = oracles.brute_force(Gn)
    res = mgda(J, normalization=mode, losses=losses)
    lam = res.extras["normalized_weights"]
    oracles.assert_feasible(lam)
    assert oracles.kkt_residual(Gn, None, lam) <= 1e-8
    scale = oracles.scale_of(Gn)
    assert abs(lam @ Gn @ lam - ref.objective) <= 1e-10 * scale
    # direction = weights @ grads = the min-norm point of the normalised hull.
    d_ref = ref.weights @ Jn
    np.testing.assert_allclose(res.direction, lam @ Jn, rtol=1e-9, atol=1e-12 * np.sqrt(scale))
    np.testing.assert_allclose(res.weights, lam / c, rtol=1e-12)
    np.testing.assert_allclose(res.extras["normalizers"], c, rtol=1e-12)
    if oracles.pd_margin(Gn) > 1e-4:
        np.testing.assert_allclose(res.direction, d_ref, rtol=0, atol=1e-7 * np.sqrt(scale))
    assert res.method == f"mgda/exact/{mode}"
    np.testing.assert_allclose(
        res.objective, res.direction @ res.direction, rtol=1e-9, atol=1e-14 * scale
    )


@given(grads_matrices(max_tasks=10, max_dim=10))
def test_none_is_plain_mgda_bit_for_bit(J):
    a = mgda(J)
    b = mgda(J, normalization="none", losses=np.arange(1.0, J.shape[0] + 1))
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.direction, b.direction)
    assert a.method == b.method and a.objective == b.objective


@given(
    grads_matrices(min_tasks=2, max_tasks=8, max_dim=8, allow_zero_rows=False),
    st.lists(st.floats(-6, 6), min_size=8, max_size=8),
)
def test_l2_sees_unit_gradients_only(J, logs):
    t = 10.0 ** np.array(logs[: J.shape[0]])
    a, b = mgda(J, normalization="l2"), mgda(J * t[:, None], normalization="l2")
    G = J @ J.T
    if oracles.pd_margin(G / np.outer(np.sqrt(np.diag(G)), np.sqrt(np.diag(G)))) > 1e-6:
        np.testing.assert_allclose(a.direction, b.direction, rtol=0, atol=1e-7)


def test_l2_stops_the_collapse_onto_the_shortest_gradient():
    J = np.array([[1e-3, 0.0], [0.0, 1.0]])
    plain = mgda(J)
    assert plain.weights[0] > 0.99  # plain MGDA: nearly all weight on the short one
    res = mgda(J, normalization="l2")
    np.testing.assert_allclose(res.extras["normalized_weights"], [0.5, 0.5])
    np.testing.assert_allclose(res.direction, [0.5, 0.5])
    np.testing.assert_allclose(res.weights, [500.0, 0.5])


def test_a_common_loss_scale_scales_the_direction():
    J = np.random.default_rng(3).standard_normal((4, 6))
    L = np.array([0.5, 1.0, 2.0, 4.0])
    a, b = mgda(J, normalization="loss", losses=L), mgda(J, normalization="loss", losses=3 * L)
    np.testing.assert_allclose(b.direction, a.direction / 3, rtol=1e-12)


def test_zero_gradients_and_extreme_scales_stay_finite():
    J = np.array([[0.0, 0.0], [1.0, 2.0], [-1.0, 0.5]])
    for mode in ("l2", "loss+"):
        res = mgda(J, normalization=mode, losses=[1.0, 2.0, 3.0])
        assert np.isfinite(res.weights).all()
        np.testing.assert_allclose(res.direction, [0.0, 0.0], atol=1e-15)
    J = np.array([[1e-60, 0.0], [0.0, 1e60]])
    for mode in ("l2", "loss", "loss+"):
        res = mgda(J, normalization=mode, losses=[1e-300, 1e300])
        assert np.isfinite(res.weights).all() and res.converged
    res = mgda(J, normalization="l2")
    np.testing.assert_allclose(res.weights, [0.5e60, 0.5e-60], rtol=1e-12)
    np.testing.assert_allclose(res.direction, [0.5, 0.5], rtol=1e-12)
    huge = mgda(np.array([[1e200, 0.0], [0.0, 3e200]]), normalization="l2")
    np.testing.assert_allclose(huge.weights, [0.5e-200, 0.5 / 3e200], rtol=1e-12)


def test_losses_are_required_and_checked():
    J = np.eye(3)
    with pytest.raises(ValueError, match=r"normalization='loss' divides .* pass losses="):
        mgda(J, normalization="loss")
    with pytest.raises(
        ValueError, match=r"losses\[1\] \(task 1\) is 0.0; each entry must be finite and > 0"
    ):
        mgda(J, normalization="loss+", losses=[1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"losses\[2\] \(task 2\) is nan"):
        mgda(J, normalization="loss", losses=[1.0, 1.0, np.nan])
    with pytest.raises(ValueError, match=r"losses must have shape \(3,\)"):
        mgda(J, normalization="loss", losses=[1.0, 1.0])
    with pytest.raises(ValueError, match="normalization must be one of"):
        mgda(J, normalization="L2")
    # Unused losses are ignored (the object form passes them to every call).
    mgda(J, normalization="l2", losses=[-1.0, 0.0, np.nan])


def test_object_form_passes_the_losses():
    J = np.random.default_rng(5).standard_normal((3, 4))
    L = [0.2, 1.0, 5.0]
    obj = solvers.method("mgda", normalization="loss")
    np.testing.assert_array_equal(
        obj(J, losses=L).weights, mgda(J, normalization="loss", losses=L).weights
    )
    np.testing.assert_allclose(
        mgda(gram=J @ J.T, normalization="loss+", losses=L).weights,
        mgda(J, normalization="loss+", losses=L).weights,
        rtol=1e-12,
    )
    fw = mgda(J, normalization="l2", method="frank-wolfe")
    exact = mgda(J, normalization="l2")
    assert fw.method == "mgda/frank-wolfe/l2"
    # The exact route's value is the optimum; Frank-Wolfe's is above it, within its
    # duality gap (tol 1e-6 of the normalised problem's scale, here 1) if converged.
    assert exact.objective - 1e-12 <= fw.objective
    assert fw.objective <= exact.objective + (1e-6 if fw.converged else 1e-2)


def test_a_lost_gradient_is_refused_once_normalised():
    J = np.array([[1e-150, 0.0], [0.0, 1e150]])
    np.testing.assert_allclose(mgda(J).weights, [1.0, 0.0])  # plain MGDA: counts as 0
    with pytest.raises(ValueError, match=r"grads\[0\] \(task 0\) is nonzero but too short"):
        mgda(J, normalization="l2")
