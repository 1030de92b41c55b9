"""TrimmedMean against sorting, TorchJD's TrimmedMean and its robustness claim."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.solvers import mean, trimmed_mean
from tests.strategies import grads_matrices


def by_sorting(J, t):
    """Sort each coordinate's values, drop t at each end, average the rest."""
    K = J.shape[0]
    return np.sort(J, axis=0)[t : K - t].mean(axis=0)


def column_scale(J):
    return np.abs(J).max(axis=0) + np.finfo(float).tiny


@given(J=grads_matrices(max_tasks=9, max_dim=10), data=st.data())
def test_equals_the_sorted_trimmed_mean(J, data):
    K = J.shape[0]
    t = data.draw(st.integers(0, (K - 1) // 2), label="trim_number")
    res = trimmed_mean(J, trim_number=t)
    assert res.weights is None and res.extras["trim_number"] == t
    assert np.all(np.abs(res.direction - by_sorting(J, t)) <= 1e-14 * column_scale(J))


@pytest.mark.parametrize("seed", range(3))
def test_matches_torchjd_trimmed_mean(seed):
    torch = pytest.importorskip("torch")
    torchjd = pytest.importorskip("torchjd")
    rng = np.random.default_rng(seed)
    cases = [
        rng.standard_normal((5, 200)),
        rng.standard_normal((32, 50)),
        np.vstack([rng.standard_normal((1, 80)) * 10.0**k for k in range(-9, 10, 2)]),
        np.repeat(rng.standard_normal((2, 40)), 3, axis=0),  # ties
        rng.standard_normal((128, 16)),
    ]
    worst = 0.0
    for J in cases:
        K = J.shape[0]
        for t in sorted({0, 1, (K - 1) // 2}):
            theirs = torchjd.aggregation.TrimmedMean(trim_number=t)(torch.from_numpy(J)).numpy()
            ours = trimmed_mean(J, trim_number=t).direction
            worst = max(worst, (np.abs(ours - theirs) / column_scale(J)).max())
    assert worst <= 1e-14, worst


def test_trim_zero_is_the_mean_and_tasks_can_be_permuted():
    rng = np.random.default_rng(1)
    J = rng.standard_normal((7, 30))
    np.testing.assert_allclose(
        trimmed_mean(J, trim_number=0).direction, mean(J).direction, rtol=1e-14, atol=1e-15
    )
    for t in range(4):
        np.testing.assert_allclose(
            trimmed_mean(J[rng.permutation(7)], trim_number=t).direction,
            trimmed_mean(J, trim_number=t).direction,
            rtol=1e-14,
            atol=1e-15,
        )


@given(
    J=grads_matrices(min_tasks=3, max_tasks=8, max_dim=6, allow_zero_rows=False),
    data=st.data(),
)
def test_up_to_t_outliers_cannot_move_it_outside_the_honest_range(J, data):
    # Yin et al.'s claim: with at most t corrupted values per coordinate, the trimmed
    # mean lies between the smallest and the largest honest value.
    K = J.shape[0]
    t = data.draw(st.integers(1, (K - 1) // 2), label="trim_number")
    bad = data.draw(st.integers(0, t), label="corrupted tasks")
    sizes = data.draw(
        st.lists(st.sampled_from([-1e30, 1e30, -1e300, 1e300]), min_size=bad, max_size=bad)
    )
    corrupted = J.copy()
    for i, size in enumerate(sizes):
        corrupted[i] = size
    d = trimmed_mean(corrupted, trim_number=t).direction
    honest = J[bad:]
    slack = 1e-14 * column_scale(honest)
    assert np.all(d >= honest.min(axis=0) - slack) and np.all(d <= honest.max(axis=0) + slack)


@pytest.mark.parametrize("exponent", [600, -600, 1000, -1000])
def test_direction_scales_with_the_gradients_at_any_scale(exponent):
    J = np.random.default_rng(2).standard_normal((6, 40))
    base = trimmed_mean(J, trim_number=2).direction
    scaled = trimmed_mean(np.ldexp(J, exponent), trim_number=2)
    np.testing.assert_array_equal(scaled.direction, np.ldexp(base, exponent))
    J = np.full((5, 3), 1.7e308)  # a sum of three overflows, their mean does not
    np.testing.assert_allclose(trimmed_mean(J).direction, 1.7e308, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_low_precision_gradients(dtype):
    J = np.random.default_rng(3).standard_normal((5, 50)).astype(dtype)
    res = trimmed_mean(J)
    assert res.direction.dtype == np.float32
    np.testing.assert_allclose(res.direction, by_sorting(J.astype(np.float64), 1), rtol=1e-6)


@pytest.mark.parametrize("t", [0, 1, 2])
def test_long_gradients_are_trimmed_block_by_block(t):
    J = np.random.default_rng(4).standard_normal((5, 10_001))  # several column blocks
    expected = by_sorting(J, t)
    np.testing.assert_allclose(trimmed_mean(J, trim_number=t).direction, expected, atol=1e-15)
    low = trimmed_mean(J.astype(np.float32), trim_number=t).direction  # copied by blocks
    np.testing.assert_allclose(low, by_sorting(J.astype(np.float32).astype(float), t), rtol=1e-6)
    strided = trimmed_mean(np.asfortranarray(J), trim_number=t).direction
    np.testing.assert_allclose(strided, expected, atol=1e-15)


def test_bad_arguments_are_refused_by_name():
    J = np.random.default_rng(5).standard_normal((4, 3))
    with pytest.raises(ValueError, match=r"trimmed-mean needs grads \(K x M\)"):
        trimmed_mean(gram=J @ J.T)
    with pytest.raises(ValueError, match=r"needs K > 2 \* trim_number = 4 tasks; got K = 4"):
        trimmed_mean(J, trim_number=2)
    with pytest.raises(ValueError, match="to at most 0"):
        trimmed_mean(J[:2])
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="trim_number must be an integer >= 0"):
            trimmed_mean(J, trim_number=bad)
    with pytest.raises(ValueError, match="gram does not match grads"):
        trimmed_mean(J, gram=np.eye(4))
    assert trimmed_mean.needs_grads is True
