"""Dynamic Weight Average: hand-worked epochs, the formula per step, the epoch protocol."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import DynamicWeightAverage
from paretomtl.weighting.dwa import UNCLOSED_WARNING
from tests.asserts import assert_same_state


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
    # An epoch without updates has no average: closing it is a no-op (False), before
    # the first step, twice in a row, or after epoch_steps closed the epoch.
    fresh = DynamicWeightAverage(2)
    before = fresh.state_dict()
    assert fresh.end_epoch() is False
    assert_same_state(fresh.state_dict(), before)
    dwa = DynamicWeightAverage(2)
    dwa.update([1.0, 1.0])
    assert dwa.end_epoch() is True
    assert dwa.end_epoch() is False
    assert dwa.periods == 1
    with pytest.raises(ValueError, match="per='epoch'"):
        DynamicWeightAverage(2, per="step").end_epoch()


def test_end_epoch_at_the_start_of_every_epoch_gives_the_same_weights():
    # Calling end_epoch() at the start of each epoch instead of at its end: the first
    # call is a no-op, the others close the previous epoch; the weights are the same.
    rng = np.random.default_rng(0)
    epochs = rng.uniform(0.2, 2.0, size=(4, 3, 2))
    at_end, at_start = DynamicWeightAverage(2), DynamicWeightAverage(2)
    for epoch in epochs:
        at_start.end_epoch()
        for L in epoch:
            assert at_end.update(L).tobytes() == at_start.update(L).tobytes()
        at_end.end_epoch()


@given(
    epochs=st.lists(
        st.lists(st.lists(positive, min_size=3, max_size=3), min_size=4, max_size=4),
        min_size=3,
        max_size=5,
    ),
    T=st.floats(0.1, 10.0),
)
def test_epoch_steps_ends_epochs_by_itself(epochs, T):
    # epoch_steps=4 with no end_epoch() call: each epoch's weights are the formula on
    # the averages of the two epochs before (computed here with numpy), 1 for the first two.
    dwa = DynamicWeightAverage(3, temperature=T, epoch_steps=4)
    averages = [np.mean(np.array(e), axis=0) for e in epochs]
    for t, epoch in enumerate(epochs):
        expected = np.ones(3) if t < 2 else dwa_weights(averages[t - 1], averages[t - 2], T)
        for L in epoch:
            np.testing.assert_allclose(dwa.update(L), expected, rtol=1e-12)
        assert dwa.periods == t + 1
        assert dwa.end_epoch() is False  # already closed by epoch_steps


def test_epoch_steps_and_end_epoch_close_a_short_last_epoch():
    dwa = DynamicWeightAverage(2, epoch_steps=3)
    for L in ([1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [4.0, 1.0]):
        dwa.update(L)
    assert dwa.periods == 1
    assert dwa.end_epoch() is True  # the one-step last epoch
    np.testing.assert_array_equal(dwa.average_losses, [4.0, 1.0])
    np.testing.assert_allclose(dwa.update([1.0, 1.0]), dwa_weights([4.0, 1.0], [1.0, 2.0], 2.0))


def test_many_updates_without_an_epoch_end_warn_once():
    dwa = DynamicWeightAverage(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(UNCLOSED_WARNING - 1):
            dwa.update([1.0, 2.0])
    with pytest.warns(RuntimeWarning, match="end_epoch") as caught:
        for _ in range(3 * UNCLOSED_WARNING):
            dwa.update([1.0, 2.0])
    assert len(caught) == 1
    assert dwa.periods == 0  # a warning, nothing else: the weights stay 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # epoch_steps, per step, or an epoch ended: silent
        for dwa in (
            DynamicWeightAverage(2, epoch_steps=5000),
            DynamicWeightAverage(2, per="step"),
        ):
            for _ in range(UNCLOSED_WARNING + 1):
                dwa.update([1.0, 2.0])
        closed = DynamicWeightAverage(2)
        closed.update([1.0, 2.0])
        closed.end_epoch()
        for _ in range(UNCLOSED_WARNING + 1):
            closed.update([1.0, 2.0])


def test_epoch_steps_is_saved_and_an_older_state_without_it_loads():
    dwa = DynamicWeightAverage(2, epoch_steps=3)
    for L in ([1.0, 2.0], [2.0, 2.0]):
        dwa.update(L)
    resumed = DynamicWeightAverage(2)
    resumed.load_state_dict(dwa.state_dict())
    assert resumed.epoch_steps == 3
    resumed.update([1.0, 1.0])
    assert resumed.periods == 1
    old = dwa.state_dict()
    del old["hyperparameters"]["epoch_steps"]  # saved before the option existed
    again = DynamicWeightAverage(2, epoch_steps=7)
    again.load_state_dict(old)
    assert again.epoch_steps is None
    bad = dwa.state_dict()
    bad["count"] = 3  # an epoch of 3 steps would have been closed
    with pytest.raises(ValueError, match="epoch_steps"):
        DynamicWeightAverage(2).load_state_dict(bad)


def test_through_the_torch_aggregator_without_end_epoch():
    torch = pytest.importorskip("torch")
    from paretomtl.adapters.torch import Aggregator

    trunk, heads = torch.nn.Linear(3, 4), [torch.nn.Linear(4, 1) for _ in range(2)]
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    agg = Aggregator("dwa", options={"epoch_steps": 2})
    scales = ([1.0, 1.0], [1.0, 1.0], [0.5, 1.0], [0.5, 1.0], [1.0, 1.0])
    for t, (a, b) in enumerate(scales):
        z = trunk(x)
        losses = [a * heads[0](z).pow(2).mean(), b * heads[1](z).pow(2).mean()]
        info = agg.backward(losses, trunk.parameters())
        if t < 4:
            np.testing.assert_array_equal(info.weights, [1.0, 1.0])
    assert agg.method_state.periods == 2
    assert info.weights[1] > info.weights[0]  # task 0's loss fell by half: less weight


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
        ({"epoch_steps": 0}, "epoch_steps"),
        ({"epoch_steps": 2.0}, "epoch_steps"),
        ({"per": "step", "epoch_steps": 3}, "epoch_steps"),
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
