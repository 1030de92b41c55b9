"""The simplex QP's reported certificates, checked away from the optimum.

At the optimum every correct residual formula, and many wrong ones, give about 0; a
certificate is only tested where it is large. Here the points are deliberately not
optimal (Frank-Wolfe and Wolfe's method stopped after a few iterations, PE-LTR's
projection, random feasible weights), and the residual is recomputed in plain numpy
from its definition (``mgda`` and ``pareto_step`` docstrings): for the problem

    minimise  w^T G w   subject to  w_i >= c_i,  sum_i w_i = 1,

with mu = (w - c)^T G w / (1 - sum c), every (G w)_i >= mu, with equality wherever
w_i > c_i; the residual is the largest violation, divided by max_i G_ii.

Frank-Wolfe's first iterates are pinned on G = diag(1, 2, 3), worked by hand and
continued in exact rational arithmetic.
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from paretomtl._kernels.simplex_qp import frank_wolfe, kkt_residual
from paretomtl.solvers import mgda, pareto_step
from tests.strategies import grads_matrices


def certificate(G, w, c=None):
    """The KKT residual at a feasible w, from its definition (relative to max_i G_ii)."""
    c = np.zeros(len(w)) if c is None else np.asarray(c, dtype=np.float64)
    Gw = G @ w
    free = w > c
    if not free.any():
        return 0.0
    mu = (w - c) @ Gw / (1.0 - c.sum())
    violation = np.maximum(mu - Gw, 0.0)  # (G w)_i >= mu everywhere
    violation[free] = np.abs(Gw[free] - mu)  # and = mu off the bounds
    scale = np.diagonal(G).max()  # G = 0: every point is optimal, the residual 0
    return float(violation.max() / scale) if scale > 0 else float(violation.max())


def assert_same_residual(reported, G, w, c=None):
    expected = certificate(G, w, c)
    assert reported == pytest.approx(expected, rel=1e-8, abs=1e-12), (reported, expected)
    event("far from optimal (residual > 1e-3)" if expected > 1e-3 else "near optimal")


@st.composite
def bounds(draw, K, total=0.9):
    """Lower bounds c >= 0 with sum c <= total, some of them 0."""
    raw = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=K, max_size=K)))
    raw[np.array(draw(st.lists(st.booleans(), min_size=K, max_size=K)))] = 0.0
    return raw * (total / K)


# ------------------------------------------------------------- reported residuals
@given(grads_matrices(min_tasks=2, max_tasks=8), st.integers(1, 6))
def test_frank_wolfe_cut_short_reports_its_true_residual(J, max_iter):
    res = mgda(J, method="frank-wolfe", max_iter=max_iter, tol=0.0)
    assert_same_residual(res.kkt_residual, J @ J.T, res.weights)


@given(grads_matrices(min_tasks=3, max_tasks=8, allow_zero_rows=False), st.integers(1, 2))
def test_the_exact_route_cut_short_reports_its_true_residual(J, max_iter):
    res = mgda(J, max_iter=max_iter)
    assert_same_residual(res.kkt_residual, J @ J.T, res.weights)


@given(grads_matrices(min_tasks=2, max_tasks=6), st.data())
def test_pareto_step_reports_its_true_residual_off_the_optimum(J, data):
    K = J.shape[0]
    c = data.draw(bounds(K))
    for kwargs in ({"method": "pe-ltr"}, {"max_iter": 1}):
        res = pareto_step(J, lower_bounds=c, **kwargs)
        assert_same_residual(res.kkt_residual, J @ J.T, res.weights, c)


@given(grads_matrices(min_tasks=1, max_tasks=8), st.data())
def test_the_kernel_at_random_feasible_weights(J, data):
    G = J @ J.T
    scale = np.diagonal(G).max()
    if scale == 0.0:
        return
    K = J.shape[0]
    c = data.draw(bounds(K))
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.dirichlet(np.ones(K))
    x[rng.random(K) < 0.3] = 0.0  # some coordinates on their bound
    if not x.any():
        x[rng.integers(K)] = 1.0
    w = c + (1.0 - c.sum()) * x / x.sum()
    mu, residual = kkt_residual(G / scale, w, c)
    assert_same_residual(residual, G, w, c)
    free = w > c
    assert mu == pytest.approx((w - c)[free] @ (G @ w)[free] / scale / (w - c)[free].sum())


# ------------------------------------------------------------- Frank-Wolfe's iterates
G3 = [[Fraction(1), 0, 0], [0, Fraction(2), 0], [0, 0, Fraction(3)]]


def exact_frank_wolfe(G, w, steps):
    """Frank-Wolfe with exact line search, in rationals; yields (w, gap) before each step.

    From w, the vertex is j = argmin_i (G w)_i (first on ties). Along
    w(g) = (1 - g) w + g e_j, f = (1 - g)^2 v + 2 g (1 - g) (G w)_j + g^2 G_jj with
    v = w^T G w, whose minimiser is g = (v - (G w)_j) / (v - 2 (G w)_j + G_jj),
    clipped to [0, 1]; v - (G w)_j is the duality gap.
    """
    K = len(w)
    for _ in range(steps + 1):
        Gw = [sum(G[i][k] * w[k] for k in range(K)) for i in range(K)]
        v = sum(w[i] * Gw[i] for i in range(K))
        j = min(range(K), key=lambda i: (Gw[i], i))
        yield list(w), v - Gw[j]
        g = min(Fraction(1), (v - Gw[j]) / (v - 2 * Gw[j] + G[j][j]))
        w = [(1 - g) * wi for wi in w]
        w[j] += g


def exact_residual(G, w):
    """The certificate (c = 0, every w_i > 0 here) in rationals."""
    K = len(w)
    Gw = [sum(G[i][k] * w[k] for k in range(K)) for i in range(K)]
    mu = sum(w[i] * Gw[i] for i in range(K))
    viol = [abs(Gw[i] - mu) if w[i] > 0 else max(mu - Gw[i], 0) for i in range(K)]
    return max(viol) / max(G[i][i] for i in range(K))


def test_the_first_iterates_by_hand():
    # w0 = 1/3: G w0 = (1/3, 2/3, 1), v = 2/3, j = 0, gap 1/3, g = (1/3) / (2/3 - 2/3 + 1)
    # = 1/3: w1 = (2/3) w0 + (1/3) e_0 = (5/9, 2/9, 2/9). G w1 = (5/9, 4/9, 6/9), v = 5/9,
    # j = 1, gap 1/9, g = (1/9) / (5/9 - 8/9 + 2) = 1/15: w2 = (14/27, 37/135, 28/135).
    iterates = [w for w, _ in exact_frank_wolfe(G3, [Fraction(1, 3)] * 3, 2)]
    assert iterates[1] == [Fraction(5, 9), Fraction(2, 9), Fraction(2, 9)]
    assert iterates[2] == [Fraction(14, 27), Fraction(37, 135), Fraction(28, 135)]
    # at w2, G w2 = (70, 74, 84) / 135 and mu = v = 74 / 135: residual (10 / 135) / 3
    assert exact_residual(G3, iterates[2]) == Fraction(2, 81)


@pytest.mark.parametrize("n", range(1, 9))
def test_frank_wolfe_iterates_on_a_hand_worked_problem(n):
    want, _ = list(exact_frank_wolfe(G3, [Fraction(1, 3)] * 3, n))[n]
    want_f = np.array([float(v) for v in want])
    G = np.diag([1.0, 2.0, 3.0])
    w, it, converged = frank_wolfe(G, np.full(3, 1 / 3), 0.0, n)
    assert it == n and not converged
    np.testing.assert_allclose(w, want_f, rtol=1e-13)
    # through mgda (which divides G by max G_ii = 3 first: the same iterates)
    res = mgda(gram=G, method="frank-wolfe", max_iter=n, tol=0.0)
    assert res.iterations == n and res.converged is False
    np.testing.assert_allclose(res.weights, want_f, rtol=1e-13)
    assert res.kkt_residual == pytest.approx(float(exact_residual(G3, want)), rel=1e-12)


def test_frank_wolfe_stops_at_the_first_iterate_within_tolerance():
    # The duality gap (relative to max G_ii = 3) first falls to 1e-3 at iterate 8.
    tol = Fraction(1, 1000)
    steps = next(
        k
        for k, (_, gap) in enumerate(exact_frank_wolfe(G3, [Fraction(1, 3)] * 3, 12))
        if gap / 3 <= tol
    )
    assert steps == 8
    res = mgda(gram=np.diag([1.0, 2.0, 3.0]), method="frank-wolfe", tol=1e-3)
    assert res.converged and res.iterations == steps
