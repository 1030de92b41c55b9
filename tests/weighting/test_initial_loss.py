"""Initial-loss normalisation: w_i = 1 / (mean of the first n losses of task i)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import InitialLossNormalization


def test_hand_worked_default_warmup():
    # n = 1: L(init) = L(1) = (4, 0.5), w = (0.25, 2) for good.
    norm = InitialLossNormalization(2)
    np.testing.assert_array_equal(norm.update([4.0, 0.5]), [0.25, 2.0])
    assert not norm.warming_up
    np.testing.assert_array_equal(norm.update([1.0, 10.0]), [0.25, 2.0])
    np.testing.assert_array_equal(norm.update([-3.0, 0.0]), [0.25, 2.0])  # any finite loss now
    np.testing.assert_array_equal(norm.initial_losses, [4.0, 0.5])


def test_hand_worked_three_step_warmup():
    # Losses (1, 8), (3, 4), (5, 3): running means (1, 8) -> (2, 6) -> (3, 5), so
    # weights (1, 1/8), (1/2, 1/6), (1/3, 1/5); then fixed at (1/3, 1/5).
    norm = InitialLossNormalization(2, warmup_steps=3)
    assert norm.initial_losses is None
    np.testing.assert_allclose(norm.update([1.0, 8.0]), [1.0, 1 / 8], rtol=1e-15)
    np.testing.assert_allclose(norm.update([3.0, 4.0]), [1 / 2, 1 / 6], rtol=1e-15)
    with pytest.raises(ValueError, match=r"losses\[1\] \(task 1\) is 0.0; .*warm-up"):
        norm.update([5.0, 0.0])  # still warming up: a zero would enter L(init)
    assert norm.warming_up
    np.testing.assert_allclose(norm.update([5.0, 3.0]), [1 / 3, 1 / 5], rtol=1e-15)
    assert not norm.warming_up
    np.testing.assert_allclose(norm.update([7.0, 0.0]), [1 / 3, 1 / 5], rtol=1e-15)
    np.testing.assert_allclose(norm.initial_losses, [3.0, 5.0], rtol=1e-15)


@given(
    st.integers(1, 5).flatmap(
        lambda K: st.lists(
            st.lists(st.floats(1e-6, 1e6), min_size=K, max_size=K), min_size=1, max_size=8
        )
    ),
    st.integers(1, 6),
)
def test_matches_the_running_mean_formula(losses, n):
    norm = InitialLossNormalization(len(losses[0]), warmup_steps=n)
    L = np.array(losses)
    for t in range(len(L)):
        init = L[: min(t + 1, n)].mean(axis=0)
        np.testing.assert_allclose(norm.update(L[t]), 1.0 / init, rtol=1e-13)


def test_given_initial_losses_skip_the_warmup():
    norm = InitialLossNormalization(3, initial_losses=[2.0, 0.5, 10.0])
    assert not norm.warming_up
    np.testing.assert_array_equal(norm.update([-1.0, 0.0, 5.0]), [0.5, 2.0, 0.1])
    norm.reset()
    np.testing.assert_array_equal(norm.initial_losses, [2.0, 0.5, 10.0])


@given(
    st.lists(st.lists(st.floats(1e-3, 1e3), min_size=3, max_size=3), min_size=1, max_size=6),
    st.lists(st.floats(1e-4, 1e4), min_size=3, max_size=3),
    st.lists(st.integers(-30, 30), min_size=3, max_size=3),
    st.integers(1, 4),
)
def test_weighted_losses_do_not_depend_on_the_units(losses, scales, powers, n):
    # Multiply every loss of task i by c_i > 0 (a change of units): L(init)_i is scaled
    # by c_i too, so w_i L_i is unchanged. By powers of two the arithmetic is exact.
    L = np.array(losses)
    for c, rtol in ((np.array(scales), 1e-13), (2.0 ** np.array(powers), 0.0)):
        a = InitialLossNormalization(3, warmup_steps=n)
        b = InitialLossNormalization(3, warmup_steps=n)
        for Lt in L:
            wa, wb = a.update(Lt), b.update(c * Lt)
            if rtol == 0.0:
                assert (wa * Lt).tobytes() == (wb * (c * Lt)).tobytes()
            else:
                np.testing.assert_allclose(wb * (c * Lt), wa * Lt, rtol=rtol)


def test_first_step_weighted_losses_are_one():
    L = np.array([3.7, 1e-5, 123.0])
    norm = InitialLossNormalization(3, warmup_steps=5)
    np.testing.assert_allclose(norm.update(L) * L, 1.0, rtol=1e-15)


def test_reset_restarts_the_warmup():
    norm = InitialLossNormalization(2)
    norm.update([2.0, 4.0])
    norm.reset()
    assert norm.warming_up and norm.initial_losses is None
    np.testing.assert_array_equal(norm.update([1.0, 1.0]), [1.0, 1.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"initial_losses": [1.0, 0.0]}, r"initial_losses\[1\] \(task 1\) is 0.0"),
        ({"initial_losses": [-2.0, 1.0]}, r"initial_losses\[0\] \(task 0\) is -2.0"),
        ({"initial_losses": [1.0, np.nan]}, r"initial_losses\[1\] \(task 1\) is nan"),
        ({"initial_losses": [1.0]}, r"initial_losses must have shape \(2,\)"),
        ({"initial_losses": [1.0, 1.0], "warmup_steps": 2}, "not both"),
        ({"warmup_steps": 0}, "warmup_steps"),
        ({"warmup_steps": 1.5}, "warmup_steps"),
        ({"warmup_steps": True}, "warmup_steps"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InitialLossNormalization(2, **kwargs)


def test_zero_initial_loss_names_the_task_and_changes_nothing():
    norm = InitialLossNormalization(3, warmup_steps=2)
    norm.update([1.0, 1.0, 1.0])
    before = norm.state_dict()
    with pytest.raises(ValueError, match=r"losses\[2\] \(task 2\) is 0.0"):
        norm.update([1.0, 1.0, 0.0])
    after = norm.state_dict()
    np.testing.assert_array_equal(after["loss_mean"], before["loss_mean"])
    assert after["count"] == before["count"] == 1
