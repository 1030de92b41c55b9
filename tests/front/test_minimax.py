"""The Tchebycheff step's QPs against cvxpy."""

import numpy as np
import pytest

from paretomtl.front._minimax import box_minimax_step, simplex_qp

cp = pytest.importorskip("cvxpy")


@pytest.mark.parametrize("K", [2, 3, 5])
def test_simplex_qp_matches_cvxpy(K):
    rng = np.random.default_rng(K)
    for _ in range(10):
        B = rng.normal(size=(K, int(rng.integers(1, 6))))
        a = rng.normal(size=K)
        lam = simplex_qp(B @ B.T, a)
        assert lam.min() >= 0 and lam.sum() == pytest.approx(1.0)
        var = cp.Variable(K)
        ref = cp.Problem(
            cp.Minimize(0.5 * cp.sum_squares(B.T @ var) - a @ var), [var >= 0, cp.sum(var) == 1]
        )
        ref.solve()
        assert 0.5 * lam @ B @ B.T @ lam - a @ lam <= ref.value + 1e-8


def test_simplex_qp_degenerate_inputs():
    np.testing.assert_array_equal(
        simplex_qp(np.zeros((3, 3)), np.array([0.0, 2.0, 1.0])), [0, 1, 0]
    )
    np.testing.assert_array_equal(simplex_qp(np.ones((1, 1)), np.zeros(1)), [1.0])


@pytest.mark.parametrize(("K", "t"), [(2, 0.1), (2, 1.0), (2, 30.0), (3, 1.0), (3, 30.0)])
def test_box_minimax_step_matches_cvxpy(K, t):
    rng = np.random.default_rng(int(t * 10) + K)
    for _ in range(10):
        B = rng.normal(size=(K, 6))
        a = rng.normal(size=K)
        low = -rng.uniform(0, 1, 6) * (rng.random(6) < 0.7)
        high = rng.uniform(0, 1, 6) * (rng.random(6) < 0.7)
        d, _ = box_minimax_step(B, a, t, low, high)
        assert (d >= low - 1e-12).all() and (d <= high + 1e-12).all()
        var = cp.Variable(6)
        obj = cp.max(a + B @ var) + cp.sum_squares(var) / (2 * t)
        ref = cp.Problem(cp.Minimize(obj), [var >= low, var <= high])
        ref.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
        ours = np.max(a + B @ d) + d @ d / (2 * t)
        assert ours <= ref.value + 1e-9
        np.testing.assert_allclose(d, var.value, atol=1e-5)


@pytest.mark.parametrize("scale", [1e-12, 1e-8, 1.0, 1e6])
def test_simplex_qp_is_scale_invariant(scale):
    # The minimiser of s * (x'Gx/2 - c'x) is that of x'Gx/2 - c'x; a tiny G block once
    # failed every residual test (a Tchebycheff end-ray pass at weights 1e-8).
    rng = np.random.default_rng(3)
    for _ in range(20):
        B = rng.normal(size=(3, 4))
        B[2] = 0.0 if rng.random() < 0.5 else B[2]
        a = rng.normal(size=3)
        G = B @ B.T
        ref = simplex_qp(G, a)
        lam = simplex_qp(scale * G, scale * a)
        value = 0.5 * lam @ G @ lam - a @ lam
        assert value <= 0.5 * ref @ G @ ref - a @ ref + 1e-12
