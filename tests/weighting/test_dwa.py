"""Dynamic Weight Average: hand-worked epochs, the formula per step, the epoch protocol."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import DynamicWeightAverage


def dwa_weights(prev, prev2, T):
    """Liu et al.'s DWA: K exp(r_i / T) / sum_j exp(r_j / T), r = prev / prev2.

    (Evaluated as exp((r_i - max r) / T), the same ratio without overflow.)
    """
    r = np.asarray(prev) / np.asarray(prev2)
    e = np.exp((r - r.max()) / T)
    return len(r) * e / e.sum()


def test_hand_worked_epochs():
    # K = 2, T = 2. Epoch 1: steps (1, 2), (3, 2): averages (2, 2). Epoch 2: (1, 2), (1, 2):
    # averages (1, 2). Both epochs use weights 1 (no history yet).
    # Epoch 3: r = (1/2, 2/2) = (0.5, 1); w = 2 e^0.25 / (e^0.25 + e^0.5), 2 e^0.5 / (...)
    #        = 2 * 1.2840254 / 2.9327467, 2 * 1.6487213 / 2.9327467 = (0.875647, 1.124353).
    dwa = DynamicWeightAverage(2, temperature=2.0)
    for L in ([1.0, 2.0], [3.0, 2.0]):
        np.testing.assert_array_equal(dwa.update(L), [1.0, 1.0])
    dwa.end_epoch()
    np.testing.assert_array_equal(dwa.average_losses, [2.0, 2.0])
    for L in ([1.0, 2.0], [1.0, 2.0]):
        np.testing.assert_array_equal(dwa.update(L), [1.0, 1.0])
    dwa.end_epoch()
    e1, e2 = math.exp(0.25), math.exp(0.5)
    expected = [2 * e1 / (e1 + e2), 2 * e2 / (e1 + e2)]
    np.testing.assert_allclose(expected, [0.875647, 1.124353], atol=1e-6)
    for L in ([0.1, 5.0], [0.2, 7.0], [0.3, 3.0]):  # constant within the epoch
        np.testing.assert_allclose(dwa.update(L), expected, rtol=1e-15)
    dwa.end_epoch()  # averages (0.2, 5): r = (0.2 / 1, 5 / 2) = (0.2, 2.5)
    np.testing.assert_allclose(
        dwa.update([1.0, 1.0]), dwa_weights([0.2, 5.0], [1.0, 2.0], 2.0), rtol=1e-15
    )
    assert dwa.periods == 3


def test_hand_worked_steps():
    # per="step", T = 1: steps 1 and 2 get weights 1; step 3 uses L(2) / L(1) = (0.5, 1):
    # 2 e^0.5 / (e^0.5 + e), 2 e / (e^0.5 + e) = (0.755081, 1.244919).
    dwa = DynamicWeightAverage(2, temperature=1.0, per="step")
    np.testing.assert_array_equal(dwa.update([1.0, 1.0]), [1.0, 1.0])
    np.testing.assert_array_equal(dwa.update([0.5, 1.0]), [1.0, 1.0])
    w = dwa.update([0.4, 1.0])
    np.testing.assert_allclose(w, [0.755081, 1.244919], atol=1e-6)
    # step 4 uses L(3) / L(2) = (0.8, 1)
    np.testing.assert_allclose(dwa.update([9.0, 9.0]), dwa_weights([0.4, 1], [0.5, 1], 1.0))


positive = st.floats(1e-3, 1e3)


@given(
    st.integers(1, 5).flatmap(
        lambda K: st.lists(st.lists(positive, min_size=K, max_size=K), min_size=1, max_size=10)
    ),
    st.floats(0.05, 20),
)
def test_step_mode_matches_the_formula(losses, T):
    dwa = DynamicWeightAverage(len(losses[0]), temperature=T, per="step")
    for t, L in enumerate(losses):
        expected = np.ones(len(L)) if t < 2 else dwa_weights(losses[t - 1], losses[t - 2], T)
        w = dwa.update(L)
        np.testing.assert_allclose(w, expected, rtol=1e-12)
        np.testing.assert_allclose(w.sum(), len(L), rtol=1e-14)


@given(
    st.integers(1, 4).flatmap(
        lambda K: st.lists(
            st.lists(st.lists(positive, min_size=K, max_size=K), min_size=1, max_size=4),
            min_size=1,
            max_size=5,
        )
    ),
    st.floats(0.05, 20),
)
def test_epoch_mode_matches_the_formula(epochs, T):
    K = len(epochs[0][0])
    dwa = DynamicWeightAverage(K, temperature=T)
    averages = [np.mean(np.array(e), axis=0) for e in epochs]
    for n, epoch in enumerate(epochs):
        expected = np.ones(K) if n < 2 else dwa_weights(averages[n - 1], averages[n - 2], T)
        for L in epoch:
            np.testing.assert_allclose(dwa.update(L), expected, rtol=1e-12)
        dwa.end_epoch()
        np.testing.assert_allclose(dwa.average_losses, averages[n], rtol=1e-14)


def test_temperature_extremes():
    # Large T: weights -> 1. Small T: weight K on the task whose loss fell least.
    hot = DynamicWeightAverage(3, temperature=1e6, per="step")
    cold = DynamicWeightAverage(3, temperature=1e-3, per="step")
    for L in ([1.0, 1.0, 1.0], [0.5, 0.9, 0.7]):
        hot.update(L)
        cold.update(L)
    np.testing.assert_allclose(hot.update([1.0, 1.0, 1.0]), 1.0, rtol=1e-6)
    np.testing.assert_allclose(cold.update([1.0, 1.0, 1.0]), [0.0, 3.0, 0.0], atol=1e-30)


def test_rising_losses_and_extreme_ratios_stay_finite():
    dwa = DynamicWeightAverage(2, temperature=0.01, per="step")
    dwa.update([1e-300, 1.0])
    dwa.update([1e300, 1.0])  # r_0 = 1e600 overflows to inf: all the weight on task 0
    np.testing.assert_array_equal(dwa.update([1.0, 1.0]), [2.0, 0.0])
    np.testing.assert_allclose(dwa.update([1.0, 1.0]), [0.0, 2.0], atol=1e-40)  # r = (0, 1)


def test_end_epoch_protocol():
    with pytest.raises(ValueError, match="no update"):
        DynamicWeightAverage(2).end_epoch()
    dwa = DynamicWeightAverage(2)
    dwa.update([1.0, 1.0])
    dwa.end_epoch()
    with pytest.raises(ValueError, match="no update"):
        dwa.end_epoch()  # an empty epoch has no average
    with pytest.raises(ValueError, match="per='epoch'"):
        DynamicWeightAverage(2, per="step").end_epoch()


def test_resume_in_the_middle_of_an_epoch():
    rng = np.random.default_rng(3)
    losses = rng.uniform(0.1, 2.0, size=(14, 3))

    def drive(dwa, rows, start):
        out = []
        for t, L in enumerate(rows, start=start):
            out.append(dwa.update(L))
            if t % 4 == 3:
                dwa.end_epoch()
        return out

    straight = drive(DynamicWeightAverage(3), losses, 0)
    first = DynamicWeightAverage(3)
    drive(first, losses[:9], 0)  # stops one step into the third epoch
    resumed = DynamicWeightAverage(3, temperature=7.0, per="step")  # overwritten by the state
    resumed.load_state_dict(first.state_dict())
    assert resumed.per == "epoch" and resumed.temperature == 2.0
    for a, b in zip(drive(resumed, losses[9:], 9), straight[9:], strict=True):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
        ({"per": "batch"}, "per must be"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DynamicWeightAverage(2, **kwargs)


def test_zero_loss_names_the_task_and_keeps_the_open_epoch():
    dwa = DynamicWeightAverage(2)
    dwa.update([1.0, 2.0])
    with pytest.raises(ValueError, match=r"losses\[0\] \(task 0\) is 0.0; .*ratios"):
        dwa.update([0.0, 2.0])
    dwa.update([3.0, 2.0])
    dwa.end_epoch()
    np.testing.assert_array_equal(dwa.average_losses, [2.0, 2.0])  # the bad step left no trace
