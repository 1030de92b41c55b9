"""ConflictTracker: the moving averages against a plain loop over the cosines."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.solvers import ConflictStats, ConflictTracker
from paretomtl.solvers.conflict import bias_correction
from tests.strategies import grads_matrices


def noisy_steps(J, steps, noise, seed):
    """``steps`` gradient matrices around J: each row gets noise of its own scale."""
    rng = np.random.default_rng(seed)
    scale = np.linalg.norm(J, axis=1, keepdims=True) / np.sqrt(J.shape[1])
    return [J + noise * scale * rng.standard_normal(J.shape) for _ in range(steps)]


def naive_moments(Js, beta1, beta2):
    """The tracker's statistics after each step, from the vectors, written from its docstring."""
    K = Js[0].shape[0]
    m = np.zeros((K, K))
    v = np.zeros((K, K))
    f = np.zeros((K, K))
    out = []
    for t, J in enumerate(Js, start=1):
        C = np.zeros((K, K))
        for i in range(K):
            for j in range(K):
                ni, nj = np.linalg.norm(J[i]), np.linalg.norm(J[j])
                if ni > 0 and nj > 0:
                    C[i, j] = np.clip(J[i] @ J[j] / (ni * nj), -1, 1)
        m = beta1 * m + (1 - beta1) * C
        v = beta2 * v + (1 - beta2) * C**2
        f = beta1 * f + (1 - beta1) * (C < 0)
        out.append((C, m / (1 - beta1**t), v / (1 - beta2**t), f / (1 - beta1**t)))
    return out


@given(
    grads_matrices(max_tasks=6, max_dim=8),
    st.integers(1, 6),
    st.floats(0.0, 2.0),
    st.sampled_from([0.0, 0.5, 0.9]),
    st.sampled_from([0.0, 0.9, 0.999]),
    st.integers(0, 2**31 - 1),
)
def test_moments_equal_plain_loop(J, steps, noise, beta1, beta2, seed):
    Js = noisy_steps(J, steps, noise, seed)
    tracker = ConflictTracker(J.shape[0], beta1=beta1, beta2=beta2)
    reference = naive_moments(Js, beta1, beta2)
    for t, (Jt, (C, m, v, f)) in enumerate(zip(Js, reference, strict=True), start=1):
        stats = tracker.update(Jt)
        assert stats.step == t
        # Cosines from the Gram matrix against those from the vectors.
        np.testing.assert_allclose(stats.cosine, C, rtol=0, atol=1e-12)
        np.testing.assert_allclose(stats.mean_cosine, m, rtol=0, atol=1e-12)
        np.testing.assert_allclose(stats.mean_square_cosine, v, rtol=0, atol=1e-12)
        # The indicator can flip only where a cosine is within rounding of 0.
        flips = (stats.cosine < 0) != (C < 0)
        if not flips.any():
            np.testing.assert_allclose(stats.conflict_frequency, f, rtol=0, atol=1e-12)
        std = np.sqrt(np.maximum(v - m**2, 0))
        np.testing.assert_allclose(stats.cosine_std, std, rtol=0, atol=1e-6)


def test_hand_worked_two_steps():
    # cos = -1/sqrt(2), then +1/sqrt(2); beta1 = 0.9, beta2 = 0.999.
    tracker = ConflictTracker(2)
    s1 = tracker.update(np.array([[1.0, 0.0], [-1.0, 1.0]]))
    c = 1 / np.sqrt(2)
    assert s1.mean_cosine[0, 1] == pytest.approx(-c, rel=1e-15)
    assert s1.mean_square_cosine[0, 1] == pytest.approx(0.5, rel=1e-14)
    assert s1.conflict_frequency[0, 1] == 1.0
    assert s1.cosine_std[0, 1] == 0.0  # one value: no spread
    s2 = tracker.update(np.array([[1.0, 0.0], [1.0, 1.0]]))
    m = (0.9 * 0.1 * -c + 0.1 * c) / (1 - 0.81)
    f = 0.9 * 0.1 / (1 - 0.81)
    v = (0.999 * 0.001 * 0.5 + 0.001 * 0.5) / (1 - 0.999**2)
    assert s2.mean_cosine[0, 1] == pytest.approx(m, rel=1e-13)
    assert s2.conflict_frequency[0, 1] == pytest.approx(f, rel=1e-14)
    assert s2.mean_square_cosine[0, 1] == pytest.approx(v, rel=1e-12)
    assert s2.cosine_std[0, 1] == pytest.approx(np.sqrt(v - m * m), rel=1e-12)
    np.testing.assert_array_equal(s2.cosine, s2.cosine.T)


def test_constant_cosine_has_exact_mean_and_zero_spread():
    rng = np.random.default_rng(0)
    J = rng.standard_normal((4, 6))
    tracker = ConflictTracker(4)
    for _ in range(50):
        stats = tracker.update(J * rng.uniform(0.1, 10.0, size=(4, 1)))  # scale: same cosines
    C = stats.cosine
    np.testing.assert_allclose(stats.mean_cosine, C, rtol=0, atol=1e-14)
    np.testing.assert_allclose(stats.mean_square_cosine, C * C, rtol=0, atol=1e-14)
    assert not stats.cosine_std.any()
    np.testing.assert_allclose(stats.conflict_frequency, (C < 0).astype(float), atol=1e-14)
    np.testing.assert_allclose(np.diagonal(stats.mean_cosine), 1.0, atol=1e-15)


def test_zero_gradient_has_cosine_zero():
    J = np.array([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.5]])
    stats = ConflictTracker(3).update(J)
    assert np.isfinite(stats.cosine).all()
    np.testing.assert_array_equal(stats.cosine[1], 0.0)
    np.testing.assert_array_equal(stats.cosine[:, 1], 0.0)
    np.testing.assert_array_equal(np.diagonal(stats.cosine), [1.0, 0.0, 1.0])
    assert stats.conflict_frequency[0, 2] == 1.0 and stats.conflict_frequency[0, 1] == 0.0


def test_beta_zero_gives_this_steps_values():
    rng = np.random.default_rng(1)
    tracker = ConflictTracker(3, beta1=0.0, beta2=0.0)
    for _ in range(3):
        stats = tracker.update(rng.standard_normal((3, 5)))
    np.testing.assert_array_equal(stats.mean_cosine, stats.cosine)
    np.testing.assert_array_equal(stats.mean_square_cosine, stats.cosine**2)
    np.testing.assert_array_equal(stats.conflict_frequency, stats.cosine < 0)
    assert not stats.cosine_std.any()


def test_bias_correction_is_accurate():
    for beta in (0.0, 0.5, 0.9, 0.999, 0.999999):
        for t in (1, 2, 10, 1000, 10**6):
            exact = 1 - np.longdouble(beta) ** t
            assert bias_correction(beta, t) == pytest.approx(float(exact), rel=1e-14)


def test_gram_and_grads_agree_and_stats_are_copies():
    rng = np.random.default_rng(2)
    J = rng.standard_normal((3, 7))
    a = ConflictTracker(3).update(J)
    b = ConflictTracker(3).update(gram=J @ J.T)
    np.testing.assert_allclose(a.mean_cosine, b.mean_cosine, rtol=0, atol=1e-15)
    assert isinstance(a, ConflictStats)
    tracker = ConflictTracker(3)
    stats = tracker.update(J)
    stats.mean_cosine[:] = 99.0
    state = tracker.state_dict()
    state["first_moment"][0][0] = 99.0  # the state is plain lists: edit one entry
    assert tracker.update(J).mean_cosine.max() <= 1.0


def test_state_round_trip_is_bit_identical():
    rng = np.random.default_rng(3)
    Js = [rng.standard_normal((4, 5)) for _ in range(6)]
    straight = ConflictTracker(4, beta1=0.8, beta2=0.99)
    for J in Js:
        expected = straight.update(J)
    first = ConflictTracker(4, beta1=0.8, beta2=0.99)
    for J in Js[:3]:
        first.update(J)
    resumed = ConflictTracker(4)  # other betas: the state brings its own
    resumed.load_state_dict(first.state_dict())
    for J in Js[3:]:
        got = resumed.update(J)
    assert got.step == expected.step == 6
    for name in ("mean_cosine", "mean_square_cosine", "conflict_frequency", "cosine_std"):
        assert getattr(got, name).tobytes() == getattr(expected, name).tobytes(), name
    resumed.reset()
    assert resumed.step == 0
    assert (
        resumed.update(Js[0]).mean_cosine.tobytes()
        == ConflictTracker(4, 0.8, 0.99).update(Js[0]).mean_cosine.tobytes()
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_tasks"):
        ConflictTracker(0)
    with pytest.raises(ValueError, match="num_tasks"):
        ConflictTracker(2.0)
    with pytest.raises(ValueError, match="beta1"):
        ConflictTracker(2, beta1=1.0)
    with pytest.raises(ValueError, match="beta2"):
        ConflictTracker(2, beta2=-0.1)
    with pytest.raises(TypeError, match="beta1"):
        ConflictTracker(2, beta1="0.9")
    tracker = ConflictTracker(2)
    with pytest.raises(ValueError, match="K must stay the same"):
        tracker.update(np.ones((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        tracker.update(np.array([[1.0, np.nan], [0.0, 1.0]]))
    assert tracker.step == 0  # nothing counted for refused input
    with pytest.raises(ValueError, match="3 tasks"):
        tracker.load_state_dict(ConflictTracker(3).state_dict())
