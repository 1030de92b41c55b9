"""GradNorm: hand-worked steps, the formula in plain numpy, state round trips."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import GradNorm


def test_hand_worked_first_step():
    # K = 2, alpha = 1, lr = 0.1, w = (1, 1); L(0) = L(1) = (1, 1) so r = (1, 1).
    # n = (1, 3): G_W = w * n = (1, 3), mean 2, targets 2 * r^1 = (2, 2).
    # sign(G_W - target) = (-1, +1): w = (1 + 0.1 * 1, 1 - 0.1 * 3) = (1.1, 0.7).
    # Renormalise to sum 2: (1.1, 0.7) * 2 / 1.8 = (11/9, 7/9).
    gn = GradNorm(2, alpha=1.0, lr=0.1, optimizer="sgd")
    w = gn.update(losses=[1.0, 1.0], grad_norms=[1.0, 3.0])
    np.testing.assert_allclose(w, [11 / 9, 7 / 9], rtol=1e-15)
    np.testing.assert_allclose(gn.initial_losses, [1.0, 1.0])


def test_hand_worked_second_step_with_training_rates():
    # Continue: w = (11/9, 7/9). Losses (0.5, 0.9): ratios (0.5, 0.9), mean 0.7,
    # r = (5/7, 9/7). alpha = 1: targets Gbar * r.
    # n = (2, 2): G_W = (22/9, 14/9), Gbar = 2; targets (10/7, 18/7).
    # G_W - target = (22/9 - 10/7, 14/9 - 18/7) = (+, -): w = (11/9 - 0.2, 7/9 + 0.2)
    # = (9.2/9, 8.8/9), sum 2 already (the +-lr*n steps cancel), so no rescale.
    gn = GradNorm(2, alpha=1.0, lr=0.1, optimizer="sgd")
    gn.update([1.0, 1.0], [1.0, 3.0])
    w = gn.update([0.5, 0.9], [2.0, 2.0])
    np.testing.assert_allclose(w, [11 / 9 - 0.2, 7 / 9 + 0.2], rtol=1e-14)
    assert gn.step == 2


def reference_step(w, L, L0, n, alpha, lr, floor):
    """Chen et al. 2018, eqs. (1)-(2), with the target held constant, in float64."""
    Gw = w * n
    Lt = L / L0
    r = Lt / Lt.mean()
    target = Gw.mean() * r**alpha
    grad = np.where(Gw > target, n, np.where(Gw < target, -n, 0.0))
    w = np.maximum(w - lr * grad, floor)
    return w * len(w) / w.sum()


@given(
    st.integers(1, 6).flatmap(
        lambda K: st.tuples(
            st.just(K),
            st.lists(
                st.lists(st.floats(1e-3, 1e3), min_size=K, max_size=K), min_size=1, max_size=6
            ),
            st.lists(st.lists(st.floats(0, 1e2), min_size=K, max_size=K), min_size=6, max_size=6),
        )
    ),
    st.floats(0, 3),
    st.floats(1e-4, 0.5),
)
def test_matches_formula_over_several_steps(data, alpha, lr):
    K, losses, norms = data
    gn = GradNorm(K, alpha=alpha, lr=lr, optimizer="sgd")
    w = np.ones(K)
    L0 = np.array(losses[0])
    for L, n in zip(losses, norms[: len(losses)], strict=True):
        w = reference_step(w, np.array(L), L0, np.array(n), alpha, lr, 1e-6)
        got = gn.update(L, n)
        np.testing.assert_allclose(got, w, rtol=1e-12)
        assert (got > 0).all()
        assert abs(got.sum() - K) < 1e-12 * K


def test_adam_first_steps_hand_worked():
    # Adam on w with g = sign(w n - target) n. Step 1 as in the SGD case: g = (-1, 3).
    # m = 0.1 g, v = 0.001 g^2; bias-corrected m_hat = g, v_hat = g^2, so the step is
    # lr * g / (|g| + 1e-8) ~ lr * sign(g): w = (1 + 0.1, 1 - 0.1) = (1.1, 0.9), sum 2.
    gn = GradNorm(2, alpha=1.0, lr=0.1)
    w = gn.update([1.0, 1.0], [1.0, 3.0])
    np.testing.assert_allclose(w, [1.1, 0.9], rtol=1e-7)
    # Step 2: losses (1, 1) again, n = (1, 3): G_W = (1.1, 2.7), mean 1.9, targets 1.9;
    # g = (-1, 3) again. m = 0.9 * 0.1 g + 0.1 g = 0.19 g, m_hat = 0.19 g / 0.19 = g;
    # v = 0.999 * 0.001 g^2 + 0.001 g^2 = 0.001999 g^2, v_hat = g^2. Step lr * sign(g):
    # w = (1.2, 0.8).
    w = gn.update([1.0, 1.0], [1.0, 3.0])
    np.testing.assert_allclose(w, [1.2, 0.8], rtol=1e-7)


def test_adam_steps_do_not_depend_on_the_scale_of_the_norms():
    a, b = GradNorm(3, lr=0.05), GradNorm(3, lr=0.05)
    rng = np.random.default_rng(4)
    for _ in range(20):
        L, n = rng.uniform(0.5, 2, 3), rng.uniform(0.1, 1, 3)
        wa = a.update(L, n)
        wb = b.update(L, 1000.0 * n)
    np.testing.assert_allclose(wa, wb, rtol=1e-6)


def test_equal_norms_and_rates_keep_equal_weights():
    gn = GradNorm(3)
    for _ in range(5):
        w = gn.update([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(w, [1.0, 1.0, 1.0])


def test_given_initial_losses_and_reset():
    gn = GradNorm(2, alpha=1.0, lr=0.1, initial_losses=[2.0, 1.0], optimizer="sgd")
    gn.update([1.0, 1.0], [1.0, 1.0])
    # Ratios (0.5, 1): task 0 trains faster, so r_0 < r_1 and its target is lower.
    assert gn.weights[0] < gn.weights[1]
    gn.reset()
    np.testing.assert_array_equal(gn.weights, [1.0, 1.0])
    np.testing.assert_array_equal(gn.initial_losses, [2.0, 1.0])


def test_state_dict_round_trip_is_exact():
    rng = np.random.default_rng(0)
    steps = [(rng.uniform(0.1, 2, 3), rng.uniform(0, 5, 3)) for _ in range(10)]
    straight = GradNorm(3, alpha=0.5, lr=0.05)
    for L, n in steps:
        straight.update(L, n)
    first = GradNorm(3, alpha=0.5, lr=0.05)  # Adam: its moments are state too
    for L, n in steps[:4]:
        first.update(L, n)
    state = first.state_dict()
    resumed = GradNorm(3)
    resumed.load_state_dict(state)
    for L, n in steps[4:]:
        resumed.update(L, n)
    assert resumed.weights.tobytes() == straight.weights.tobytes()
    assert resumed.step == straight.step
    # The state is a copy: later updates do not change it.
    before = state["weights"].copy()
    first.update(*steps[5])
    np.testing.assert_array_equal(state["weights"], before)


def test_weights_stay_positive_under_large_steps():
    gn = GradNorm(2, alpha=0.0, lr=10.0, optimizer="sgd")
    w = gn.update([1.0, 1.0], [100.0, 0.0])
    assert (w > 0).all()
    assert abs(w.sum() - 2) < 1e-12


@pytest.mark.parametrize(
    ("losses", "norms", "match"),
    [
        ([1.0, np.nan], [1.0, 1.0], r"losses\[1\]"),
        ([1.0, 0.0], [1.0, 1.0], r"losses\[1\]"),
        ([1.0, -1.0], [1.0, 1.0], r"losses\[1\]"),
        ([1.0, 1.0], [1.0, -1.0], r"grad_norms\[1\]"),
        ([1.0, 1.0], [np.inf, 1.0], r"grad_norms\[0\]"),
        ([1.0, 1.0, 1.0], [1.0, 1.0], "losses must have shape"),
        ([1.0, 1.0], [1.0], "grad_norms must have shape"),
    ],
)
def test_bad_input(losses, norms, match):
    gn = GradNorm(2)
    with pytest.raises(ValueError, match=match):
        gn.update(losses, norms)
    # Nothing changed.
    np.testing.assert_array_equal(gn.weights, [1.0, 1.0])
    assert gn.initial_losses is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_tasks": 0},
        {"num_tasks": 2, "alpha": -1},
        {"num_tasks": 2, "lr": 0},
        {"num_tasks": 2, "optimizer": "rmsprop"},
    ],
)
def test_bad_construction(kwargs):
    with pytest.raises(ValueError):
        GradNorm(**kwargs)


def test_load_state_dict_wrong_k():
    with pytest.raises(ValueError, match="tasks"):
        GradNorm(3).load_state_dict(GradNorm(2).state_dict())


# -- the time-averaged weights (the paper's section 5.4: fixed weights from one run) ----
def _random_steps(seed, K, T):
    rng = np.random.default_rng(seed)
    return [(rng.uniform(0.1, 2, K), rng.uniform(0, 5, K)) for _ in range(T)]


@given(st.integers(1, 6), st.integers(1, 40), st.integers(0, 2**32 - 1), st.integers(0, 39))
def test_average_weights_is_the_mean_of_the_applied_weights(K, T, seed, reset_at):
    # Independent route: the weights the public call returns at each step, averaged
    # by numpy over the window that starts at the last reset_average().
    gn = GradNorm(K, alpha=0.5, lr=0.05)
    applied = []
    reset_at = min(reset_at, T - 1)
    for t, (L, n) in enumerate(_random_steps(seed, K, T)):
        if t == reset_at:
            gn.reset_average()
            applied = []
        applied.append(gn(L, n))
    np.testing.assert_allclose(gn.average_weights(), np.mean(applied, axis=0), rtol=1e-12)
    np.testing.assert_allclose(gn.average_weights().sum(), K, rtol=1e-12)


def test_average_weights_counts_update_calls_too():
    # update() applies w(t) and returns w(t + 1): the average is over the w(t).
    gn = GradNorm(2, alpha=1.0, lr=0.1, optimizer="sgd")
    w1 = gn.update([1.0, 1.0], [1.0, 3.0])  # applied w(0) = (1, 1)
    gn.update([1.0, 1.0], [1.0, 3.0])  # applied w(1)
    np.testing.assert_allclose(gn.average_weights(), (np.ones(2) + w1) / 2, rtol=1e-15)


def test_average_weights_before_any_update_raises():
    gn = GradNorm(3)
    with pytest.raises(ValueError, match="no GradNorm update yet"):
        gn.average_weights()
    gn([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    gn.reset_average()
    with pytest.raises(ValueError, match="since reset_average"):
        gn.average_weights()
    weights = gn.weights
    gn.reset()  # reset() also restarts the window
    with pytest.raises(ValueError, match="no GradNorm update yet"):
        gn.average_weights()
    assert not np.array_equal(weights, gn.weights)


def test_average_weights_survive_a_checkpoint_bit_for_bit():
    steps = _random_steps(3, 3, 12)
    straight = GradNorm(3, alpha=0.5, lr=0.05)
    for L, n in steps:
        straight(L, n)
    first = GradNorm(3, alpha=0.5, lr=0.05)
    for L, n in steps[:5]:
        first(L, n)
    resumed = GradNorm(3)
    resumed.load_state_dict(first.state_dict())
    for L, n in steps[5:]:
        resumed(L, n)
    assert resumed.average_weights().tobytes() == straight.average_weights().tobytes()


def test_a_state_saved_before_the_time_average_existed_starts_a_new_window():
    steps = _random_steps(5, 2, 6)
    first = GradNorm(2, alpha=0.5, lr=0.05)
    for L, n in steps[:3]:
        first(L, n)
    old = first.state_dict()
    del old["weights_sum"], old["averaged_steps"]
    resumed = GradNorm(2)
    resumed.load_state_dict(old)
    with pytest.raises(ValueError, match="no GradNorm update"):
        resumed.average_weights()
    applied = [resumed(L, n) for L, n in steps[3:]]
    np.testing.assert_allclose(resumed.average_weights(), np.mean(applied, axis=0), rtol=1e-15)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"averaged_steps": 9}, "exceeds state\\['step'\\]"),
        ({"weights_sum": [5.0, 3.0]}, "must sum to K"),
        ({"weights_sum": None}, "is None with"),
        ({"weights_sum": [-1.0, 7.0]}, "weights_sum"),
    ],
)
def test_inconsistent_time_average_states_are_refused(change, match):
    gn = GradNorm(2)
    for L, n in _random_steps(1, 2, 3):
        gn(L, n)
    state = {**gn.state_dict(), **change}
    before = gn.average_weights()
    with pytest.raises(ValueError, match=match):
        GradNorm(2).load_state_dict(state)
    with pytest.raises(ValueError, match=match):
        gn.load_state_dict(state)
    np.testing.assert_array_equal(gn.average_weights(), before)  # unchanged
