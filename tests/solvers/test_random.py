"""Random gradient weighting: seeded draws, RLW's draw, TorchJD's distribution."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers, weighting
from paretomtl.solvers import random as random_weighting


@given(st.integers(1, 40), st.integers(0, 2**63))
def test_softmax_of_a_standard_normal_draw(K, seed):
    res = random_weighting(gram=np.eye(K), seed=seed)
    z = np.random.default_rng(seed).standard_normal(K)
    np.testing.assert_array_equal(res.extras["z"], z)
    expected = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(res.weights, expected, rtol=1e-13)
    assert (res.weights > 0).all() and abs(res.weights.sum() - 1) <= 1e-14


def test_same_seed_same_weights_and_a_generator_advances():
    J = np.random.default_rng(0).standard_normal((4, 6))
    a, b = random_weighting(J, seed=7), random_weighting(J, seed=7)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_allclose(a.direction, a.weights @ J, rtol=1e-12)
    rng = np.random.default_rng(7)
    first, second = random_weighting(J, seed=rng), random_weighting(J, seed=rng)
    np.testing.assert_array_equal(first.weights, a.weights)
    assert not np.array_equal(first.weights, second.weights)
    # The object form holds one generator: the same sequence.
    obj = solvers.method("random", seed=7)
    np.testing.assert_array_equal(obj(J).weights, a.weights)
    np.testing.assert_array_equal(obj(J).weights, second.weights)


def test_the_loss_weighting_rlw_draws_the_same_weights():
    K = 5
    rlw = weighting.RandomLossWeighting(K, seed=11)
    rng = np.random.default_rng(11)
    for _ in range(3):
        np.testing.assert_array_equal(
            random_weighting(gram=np.eye(K), seed=rng).weights, rlw.update(np.ones(K))
        )


def test_seed_is_checked():
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        random_weighting(gram=np.eye(2), seed=-1)
    with pytest.raises(TypeError, match="seed must be an int"):
        random_weighting(gram=np.eye(2), seed=1.5)


def test_same_distribution_as_torchjd():
    torch = pytest.importorskip("torch")
    torchjd = pytest.importorskip("torchjd")
    stats = pytest.importorskip("scipy.stats")
    K, n = 4, 3000
    torch.manual_seed(0)
    w_torch = torchjd.aggregation.RandomWeighting()
    theirs = np.stack([w_torch(torch.zeros(K, 2, dtype=torch.float64)).numpy() for _ in range(n)])
    rng = np.random.default_rng(0)
    ours = np.stack([random_weighting(gram=np.eye(K), seed=rng).weights for _ in range(n)])
    for i in range(K):
        assert stats.ks_2samp(ours[:, i], theirs[:, i]).pvalue > 1e-4
    # E[w_i] = 1/K by symmetry: both means agree with it.
    np.testing.assert_allclose(ours.mean(axis=0), 1.0 / K, atol=0.01)
    np.testing.assert_allclose(theirs.mean(axis=0), 1.0 / K, atol=0.01)
