"""examples/pe_ltr.py: its analytic gradients, and the Pareto step's weights it relies on.

The weights are checked against two routes that do not use the solver: for two
objectives, min ||w_1 g_1 + w_2 g_2||^2 over w_1 in [c_1, 1 - c_2], w_2 = 1 - w_1, is a
one-dimensional convex quadratic, minimised by clipping its stationary point
(g_2 - g_1) . g_2 / ||g_1 - g_2||^2 to the interval; and a brute-force grid over the
interval.
"""

from __future__ import annotations

import numpy as np
import pytest

from paretomtl import solvers
from tests.examples import example_module


@pytest.fixture(scope="module")
def pe_ltr():
    with example_module("pe_ltr") as module:
        yield module


@pytest.fixture(scope="module")
def data(pe_ltr):
    return pe_ltr.make_data(400, 400, seed=3)[0]


def test_purchases_are_rare_clicks(data):
    clicks, purchases = data.labels
    assert set(np.unique(data.labels)) <= {0.0, 1.0}
    assert (purchases <= clicks).all()  # a purchase needs a click
    assert 0 < purchases.mean() < clicks.mean() < 0.5
    assert (data.features[:, -1] == 1.0).all()  # the intercept column


def test_gradients_match_finite_differences(pe_ltr, data):
    theta = np.random.default_rng(0).normal(0.0, 0.5, data.features.shape[1])
    analytic = pe_ltr.gradients(theta, data)
    h = 1e-6
    numeric = np.empty_like(analytic)
    for j in range(len(theta)):
        e = np.zeros_like(theta)
        e[j] = h
        numeric[:, j] = (pe_ltr.losses(theta + e, data) - pe_ltr.losses(theta - e, data)) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_losses_are_logistic_losses(pe_ltr, data):
    theta = np.random.default_rng(1).normal(0.0, 0.5, data.features.shape[1])
    p = 1.0 / (1.0 + np.exp(-(data.features @ theta)))
    for y, loss in zip(data.labels, pe_ltr.losses(theta, data), strict=True):
        assert loss == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rel=1e-12)


def test_auc_matches_scikit_learn(pe_ltr, data):
    metrics = pytest.importorskip("sklearn.metrics")
    scores = np.round(np.random.default_rng(2).normal(size=len(data.labels[0])), 1)  # ties
    for labels in data.labels:
        assert pe_ltr.auc(scores, labels) == pytest.approx(metrics.roc_auc_score(labels, scores))


def _closed_form(g1: np.ndarray, g2: np.ndarray, c: np.ndarray) -> float:
    diff = g1 - g2
    w1 = -float(diff @ g2) / float(diff @ diff) if diff.any() else c[0]
    return float(np.clip(w1, c[0], 1.0 - c[1]))


def _cases(n: int = 40):
    rng = np.random.default_rng(16)
    for k in range(n):
        m = int(rng.integers(2, 30))
        J = rng.standard_normal((2, m)) * rng.uniform(0.01, 10.0, (2, 1))
        if k % 4 == 0:  # conflicting: the second gradient points partly against the first
            J[1] = -0.7 * J[0] + 0.3 * J[1]
        c = rng.dirichlet([1.0, 1.0, 1.0])[:2] * rng.uniform(0.0, 1.0)
        if k % 5 == 0:
            c[:] = 0.0  # MGDA
        yield J, c


@pytest.mark.parametrize(("J", "c"), list(_cases()))
def test_pareto_step_is_the_bounded_min_norm(J, c):
    w = solvers.pareto_step(J, lower_bounds=c).weights
    assert (w >= c - 1e-12).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    w1 = _closed_form(J[0], J[1], c)
    assert w[0] == pytest.approx(w1, abs=1e-8)

    def sq_norm(a):
        return np.sum((np.outer(a, J[0]) + np.outer(1 - a, J[1])) ** 2, axis=1)

    grid = np.linspace(c[0], 1.0 - c[1], 20001)
    best = sq_norm(grid).min()
    found = sq_norm(np.array([w[0]]))[0]
    scale = max(np.sum(J[0] ** 2), np.sum(J[1] ** 2))
    assert found <= best + 1e-12 * scale


def test_training_keeps_the_bounds(pe_ltr):
    data = pe_ltr.make_data(2000, 10)[0]  # the --quick size, where the bounds bind
    run = pe_ltr.train(data, 15, bounds=pe_ltr.BOUNDS)
    assert (run.applied >= np.array(pe_ltr.BOUNDS) - 1e-12).all()
    np.testing.assert_allclose(run.applied.sum(axis=1), 1.0, atol=1e-12)
    assert run.binding.all()  # MGDA alone would give purchases less than the bound
    assert run.losses[-1, 1] < run.losses[0, 1]
