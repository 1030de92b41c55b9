"""Random loss weighting: softmax of standard-normal draws, reproducible from a seed."""

import numpy as np
import pytest

from paretomtl.weighting import RandomLossWeighting


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def test_weights_are_the_softmax_of_the_generators_normal_draws():
    # The reference draws from its own generator with the same seed: K standard normals
    # per step, in order (LibMTL: F.softmax(torch.randn(K))).
    rlw = RandomLossWeighting(4, seed=123)
    rng = np.random.default_rng(123)
    for _ in range(20):
        np.testing.assert_allclose(
            rlw.update(np.ones(4)), softmax(rng.standard_normal(4)), rtol=1e-15
        )


def test_uniform_distribution():
    rlw = RandomLossWeighting(3, seed=5, distribution="uniform")
    rng = np.random.default_rng(5)
    for _ in range(10):
        np.testing.assert_allclose(rlw.update(np.ones(3)), softmax(rng.random(3)), rtol=1e-15)


def test_same_seed_same_sequence_bit_for_bit():
    a, b = RandomLossWeighting(5, seed=42), RandomLossWeighting(5, seed=42)
    c = RandomLossWeighting(5, seed=43)
    wa = [a.update(np.ones(5)).tobytes() for _ in range(50)]
    assert wa == [b.update(np.ones(5)).tobytes() for _ in range(50)]
    assert wa != [c.update(np.ones(5)).tobytes() for _ in range(50)]


def test_a_generator_is_copied_not_advanced():
    rng = np.random.default_rng(9)
    before = rng.bit_generator.state
    rlw = RandomLossWeighting(3, seed=rng)
    w = rlw.update([1.0, 1.0, 1.0])
    assert rng.bit_generator.state == before  # the caller's generator did not move
    np.testing.assert_allclose(w, softmax(rng.standard_normal(3)), rtol=1e-15)


def test_other_bit_generators_round_trip():
    rlw = RandomLossWeighting(3, seed=np.random.Generator(np.random.Philox(11)))
    rlw.update(np.ones(3))
    state = rlw.state_dict()
    assert state["rng"]["bit_generator"] == "Philox"
    expected = [rlw.update(np.ones(3)).tobytes() for _ in range(5)]
    resumed = RandomLossWeighting(3, seed=0)  # PCG64: replaced by the state's Philox
    resumed.load_state_dict(state)
    assert [resumed.update(np.ones(3)).tobytes() for _ in range(5)] == expected


def test_reset_rewinds_to_the_seed():
    rlw = RandomLossWeighting(3, seed=1)
    first = [rlw.update(np.ones(3)).tobytes() for _ in range(3)]
    rlw.reset()
    assert [rlw.update(np.ones(3)).tobytes() for _ in range(3)] == first


def test_weights_lie_on_the_simplex_and_average_to_one_over_k():
    K = 3
    rlw = RandomLossWeighting(K, seed=0)
    draws = np.array([rlw.update(np.ones(K)) for _ in range(4000)])
    assert (draws > 0).all()
    np.testing.assert_allclose(draws.sum(axis=1), 1.0, rtol=1e-14)
    # Exchangeable draws: each mean is 1/K; the weights' std is ~0.2, so the standard
    # error of a mean of 4000 is ~0.003.
    np.testing.assert_allclose(draws.mean(axis=0), 1 / K, atol=0.015)


def test_losses_do_not_change_the_draws():
    a, b = RandomLossWeighting(2, seed=3), RandomLossWeighting(2, seed=3)
    assert a.update([1.0, 2.0]).tobytes() == b.update([-7.0, 1e9]).tobytes()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "0"}, TypeError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"seed": True}, TypeError, "seed"),
        ({"distribution": "dirichlet"}, ValueError, "distribution"),
    ],
)
def test_bad_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        RandomLossWeighting(2, **kwargs)


def test_unknown_bit_generator_in_a_state():
    state = RandomLossWeighting(2, seed=0).state_dict()
    state["rng"]["bit_generator"] = "Generator"
    with pytest.raises(ValueError, match="bit generator"):
        RandomLossWeighting(2).load_state_dict(state)
