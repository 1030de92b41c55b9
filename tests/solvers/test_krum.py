"""Krum against a brute force on the vectors and TorchJD's KrumWeighting."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paretomtl import solvers
from paretomtl.solvers import krum
from tests.strategies import grads_matrices


def brute_scores(J, f, squared=True):
    """Blanchard et al. 2017: sum of (squared) distances to the K - f - 2 closest others."""
    K = J.shape[0]
    scores = []
    for i in range(K):
        dist = sorted(
            float(np.sum((J[i] - J[j]) ** 2)) ** (1.0 if squared else 0.5)
            for j in range(K)
            if j != i
        )
        scores.append(sum(dist[: K - f - 2]))
    return np.array(scores)


@st.composite
def krum_cases(draw):
    J = draw(grads_matrices(min_tasks=3, max_tasks=12, max_dim=8))
    K = J.shape[0]
    f = draw(st.integers(0, K - 3))
    m = draw(st.integers(1, K))
    return J, f, m, draw(st.sampled_from(["squared", "euclidean"]))


@given(krum_cases())
@example(case=(np.array([[-0.56676377], [-0.56676377], [1.06207993]]), 0, 1, "euclidean"))
@example(case=(np.array([[-0.56676377], [-0.56676377 + 6.4e-10], [1.06207993]]), 0, 1, "euclidean"))
def test_selects_the_lowest_brute_force_scores(case):
    J, f, m, distance = case
    res = krum(J, n_byzantine=f, n_selected=m, distance=distance)
    ref = brute_scores(J, f, squared=distance == "squared")
    sel = res.extras["selected"]
    assert len(set(sel.tolist())) == m
    np.testing.assert_array_equal(np.flatnonzero(res.weights), np.sort(sel))
    np.testing.assert_array_equal(res.weights[sel], np.full(m, 1.0 / m))
    # The chosen scores are the m lowest, up to the Gram route's cancellation. Each
    # G_ij = g_i . g_j carries at most M eps |g_i| |g_j| <= M eps max G_ii of rounding,
    # and G_ii + G_jj - 2 G_ij two more roundings of at most 4 eps max G_ii each, so
    # each squared distance is off by at most delta = 4 (M + 2) eps max G_ii; a plain
    # distance by at most sqrt(delta) (|sqrt(a + e) - sqrt(a)| <= sqrt(|e|)), which is
    # far more than eps relative where two gradients nearly coincide. A score sums at
    # most K of them; the choice made on our scores can then exceed the m-th lowest
    # exact score by twice that.
    K, M = J.shape
    delta = 4 * (M + 2) * np.finfo(float).eps * np.sum(J * J, axis=1).max()
    tol = K * (delta if distance == "squared" else np.sqrt(delta))
    assert ref[sel].max() <= np.sort(ref)[m - 1] + 2 * tol
    np.testing.assert_allclose(res.extras["scores"], ref, rtol=1e-6, atol=tol)


def test_squared_and_plain_distances_can_choose_differently():
    # Points on a line, each scored by its K - 1 - 2 = 2 nearest others.
    J = np.array([[-2.0], [-0.4], [1.6], [-5.0], [-4.6]])
    # Task 1: neighbours at 1.6 and 2.0 -> 3.6 plain, 6.56 squared.
    # Task 4: neighbours at 0.4 and 2.6 -> 3.0 plain, 6.92 squared.
    np.testing.assert_allclose(brute_scores(J, 1)[[1, 4]], [6.56, 6.92])
    np.testing.assert_allclose(brute_scores(J, 1, squared=False)[[1, 4]], [3.6, 3.0])
    assert krum(J, n_byzantine=1).extras["selected"][0] == 1  # the paper's score
    assert krum(J, n_byzantine=1, distance="euclidean").extras["selected"][0] == 4


def test_multi_krum_averages_and_ties_go_to_the_lower_index():
    J = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [9.0, 9.0]])
    res = krum(J, n_selected=2)
    np.testing.assert_array_equal(res.weights, [0.5, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(res.direction, [1.0, 0.0])
    assert res.method == "krum/multi"


@given(grads_matrices(min_tasks=4, max_tasks=8, max_dim=6), st.sampled_from([-700, -90, 90, 700]))
def test_common_scale_keeps_the_choice(J, k):
    a, b = krum(J, n_byzantine=1), krum(np.ldexp(J, k), n_byzantine=1)
    np.testing.assert_array_equal(a.weights, b.weights)


def test_options_are_checked():
    J = np.eye(4)
    with pytest.raises(ValueError, match=r"at least n_byzantine \+ 3 = 5 gradients"):
        krum(J, n_byzantine=2)
    with pytest.raises(ValueError, match="n_selected must be at most K = 4"):
        krum(J, n_selected=5)
    with pytest.raises(ValueError, match="n_byzantine must be an integer >= 0"):
        krum(J, n_byzantine=True)
    with pytest.raises(ValueError, match="n_selected must be an integer >= 1"):
        krum(J, n_selected=0)
    with pytest.raises(ValueError, match="distance must be one of"):
        krum(J, distance="l1")
    assert solvers.get("krum") is krum
    assert solvers.method("krum", n_byzantine=1)(gram=J).weights.sum() == 1.0


# ----------------------------------------------------------------------------------
# TorchJD (KrumWeighting sums plain distances: distance="euclidean")
# ----------------------------------------------------------------------------------


@given(krum_cases())
def test_agrees_with_torchjd(case):
    torch = pytest.importorskip("torch")
    torchjd = pytest.importorskip("torchjd")
    J, f, m, _ = case
    G = J @ J.T
    theirs = torchjd.aggregation.KrumWeighting(f, m)(torch.from_numpy(G)).numpy()
    ours = krum(gram=G, n_byzantine=f, n_selected=m, distance="euclidean")
    np.testing.assert_array_equal(np.sort(theirs[theirs > 0]), np.full(m, 1.0 / m))
    # Ties (equal scores) may go either way: the chosen scores must be the same.
    scores = ours.extras["scores"]
    np.testing.assert_allclose(
        np.sort(scores[theirs > 0]), np.sort(scores[ours.weights > 0]), rtol=1e-9, atol=1e-12
    )
    untied = (
        np.diff(np.sort(scores)).min() > 1e-9 * max(scores.max(), 1e-300)
        if len(scores) > 1
        else True
    )
    if untied:
        np.testing.assert_array_equal(ours.weights, theirs)


@pytest.mark.parametrize("K, f", [(40, 0), (40, 15), (40, 30), (128, 100)])
def test_many_tasks_both_exclusion_routes(K, f):
    # K - f - 2 neighbours kept: the 1 + f farthest excluded (tracked for f + 1 <= 16,
    # by sorting the row beyond).
    rng = np.random.default_rng(K + f)
    J = rng.standard_normal((K, 6))
    J[: K // 4] *= 30.0  # a far group
    for distance in ("squared", "euclidean"):
        res = krum(J, n_byzantine=f, n_selected=3, distance=distance)
        ref = brute_scores(J, f, squared=distance == "squared")
        np.testing.assert_allclose(res.extras["scores"], ref, rtol=1e-9)
        np.testing.assert_array_equal(np.sort(res.extras["selected"]), np.sort(np.argsort(ref)[:3]))
