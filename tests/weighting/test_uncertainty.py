"""Uncertainty weighting: the weights, the gradient in s, the optimisers, the fixed point."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import UncertaintyWeighting


def total(s, L, c):
    """Kendall et al.'s objective in s = log sigma^2: sum_i c_i exp(-s_i) L_i + s_i / 2."""
    return float(np.sum(c * np.exp(-s) * L + 0.5 * s))


def test_hand_worked_sgd_steps():
    # Regression (c = 1/2) and classification (c = 1), s = 0, lr = 0.1.
    # Step 1, L = (2, 0.5): w = (0.5, 1); grad = 1/2 - w L = (-0.5, 0); s = (0.05, 0).
    # Step 2, L = (2, 0.5): w = (0.5 e^-0.05, 1); grad_0 = 1/2 - e^-0.05;
    # s_0 = 0.05 - 0.1 (0.5 - e^-0.05).
    uw = UncertaintyWeighting(2, ("regression", "classification"), lr=0.1, optimizer="sgd")
    np.testing.assert_array_equal(uw.weights is None, True)
    np.testing.assert_array_equal(uw.update([2.0, 0.5]), [0.5, 1.0])
    np.testing.assert_allclose(uw.log_variances, [0.05, 0.0], rtol=1e-15)
    np.testing.assert_allclose(uw.update([2.0, 0.5]), [0.5 * math.exp(-0.05), 1.0], rtol=1e-15)
    np.testing.assert_allclose(
        uw.log_variances, [0.05 - 0.1 * (0.5 - math.exp(-0.05)), 0.0], rtol=1e-15
    )
    assert uw.step == 2


@given(
    st.lists(st.floats(-3, 3), min_size=1, max_size=5),
    st.lists(st.floats(0, 1e3), min_size=5, max_size=5),
    st.lists(st.sampled_from(["regression", "classification"]), min_size=5, max_size=5),
)
def test_step_follows_the_finite_difference_of_the_total(s0, losses, types):
    # SGD with lr = 1: s_new = s - grad, so grad = s - s_new; compare with a central
    # difference of the total in each s_i.
    K = len(s0)
    s0, L, types = np.array(s0), np.array(losses[:K]), types[:K]
    c = np.array([0.5 if t == "regression" else 1.0 for t in types])
    uw = UncertaintyWeighting(K, types, lr=1.0, optimizer="sgd", initial_log_variances=s0)
    w = uw.update(L)
    np.testing.assert_allclose(w, c * np.exp(-s0), rtol=1e-15)  # the weights before the step
    grad = s0 - uw.log_variances
    h = 1e-5
    for i in range(K):
        e = np.zeros(K)
        e[i] = h
        fd = (total(s0 + e, L, c) - total(s0 - e, L, c)) / (2 * h)
        scale = 1 + c[i] * math.exp(-s0[i]) * L[i]
        np.testing.assert_allclose(grad[i], fd, rtol=0, atol=1e-6 * scale)
    # and the analytic form: -c_i exp(-s_i) L_i + 1/2
    np.testing.assert_allclose(grad, -c * np.exp(-s0) * L + 0.5, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("task_type", ["regression", "classification"])
@pytest.mark.parametrize("loss", [1e-3, 0.25, 1.0, 40.0])
def test_sgd_converges_to_the_fixed_point(task_type, loss):
    # d total / d s = 0 at exp(s) = 2 c L: s* = log(2 c L), where w L = 1/2. The
    # curvature there is c e^-s L = 1/2, so SGD with lr = 1 contracts by 1/2 per step
    # near s* (and by less further out; 400 steps reach s* from 0 for these L).
    c = 0.5 if task_type == "regression" else 1.0
    uw = UncertaintyWeighting(1, task_type, lr=1.0, optimizer="sgd")
    for _ in range(400):
        uw.update([loss])
    np.testing.assert_allclose(uw.log_variances, [math.log(2 * c * loss)], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(uw.update([loss]) * loss, [0.5], rtol=1e-12)


def reference_adam(s, grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Kingma & Ba's Adam (bias-corrected), step by step."""
    m = np.zeros_like(s)
    v = np.zeros_like(s)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        s = s - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return s


@given(
    st.lists(st.lists(st.floats(0, 100), min_size=3, max_size=3), min_size=1, max_size=8),
    st.floats(1e-4, 0.5),
)
def test_adam_matches_the_reference(losses, lr):
    c = np.array([0.5, 1.0, 0.5])
    uw = UncertaintyWeighting(3, ("regression", "classification", "regression"), lr=lr)
    s = np.zeros(3)
    grads = []
    for L in losses:
        w = uw.update(L)
        np.testing.assert_allclose(w, c * np.exp(-s), rtol=1e-14)
        grads.append(0.5 - c * np.exp(-s) * np.array(L))
        s = reference_adam(np.zeros(3), grads, lr)
    np.testing.assert_allclose(uw.log_variances, s, rtol=1e-12, atol=1e-15)


def test_adam_first_step_is_lr_times_the_sign():
    # Bias-corrected: m_hat = g, v_hat = g^2, so the step is lr g / (|g| + 1e-8).
    uw = UncertaintyWeighting(2, "regression", lr=0.01, initial_log_variances=[0.0, -2.0])
    uw.update([10.0, 0.0])  # g = 1/2 - (5, 0) = (-4.5, 0.5)
    np.testing.assert_allclose(uw.log_variances, [0.01, -2.01], rtol=1e-7)


def test_defaults_and_task_types_are_required():
    uw = UncertaintyWeighting(3, "regression")
    assert uw.task_types == ("regression",) * 3
    assert uw.optimizer == "adam" and uw.lr == 1e-3
    np.testing.assert_array_equal(uw.factors, [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(uw.log_variances, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(UncertaintyWeighting(2, "classification").factors, [1.0, 1.0])
    # No default type: the likelihood (c = 1/2 or 1) must be chosen, and the error says how.
    for missing in ({}, {"task_types": None}):
        with pytest.raises(ValueError, match=r"task_types is required: .regression. .* eq. 7"):
            UncertaintyWeighting(2, **missing)


def test_objective_is_the_total_at_the_current_s():
    uw = UncertaintyWeighting(2, ("regression", "classification"), initial_log_variances=[0.3, -1])
    L = np.array([2.0, 0.7])
    expected = total(np.array([0.3, -1.0]), L, np.array([0.5, 1.0]))
    np.testing.assert_allclose(uw.objective(L), expected, rtol=1e-15)
    assert uw.step == 0  # nothing moved


def test_log_variances_is_a_copy():
    uw = UncertaintyWeighting(2, "regression")
    uw.log_variances[0] = 5.0
    np.testing.assert_array_equal(uw.log_variances, [0.0, 0.0])


def test_zero_loss_is_allowed_and_lowers_s():
    uw = UncertaintyWeighting(1, "regression", lr=0.1, optimizer="sgd")
    uw.update([0.0])  # grad = 1/2: s = -0.05, the weight grows
    np.testing.assert_allclose(uw.log_variances, [-0.05])
    assert uw.update([0.0])[0] > 0.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task_types": ("regression",)}, "task_types must be one type or 2"),
        ({"task_types": ("regression", "ranking")}, r"task_types\[1\] \(task 1\) is 'ranking'"),
        ({"task_types": "segmentation"}, r"task_types\[0\] \(task 0\)"),
        ({"lr": 0.0}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"initial_log_variances": [0.0, 0.0, 0.0]}, r"shape \(2,\)"),
        ({"initial_log_variances": [0.0, math.inf]}, r"initial_log_variances\[1\] \(task 1\)"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UncertaintyWeighting(2, **{"task_types": "regression", **kwargs})


def test_negative_loss_names_the_task_and_changes_nothing():
    uw = UncertaintyWeighting(2, "regression", lr=0.1)
    uw.update([1.0, 2.0])
    s, step = uw.log_variances, uw.step
    with pytest.raises(ValueError, match=r"losses\[1\] \(task 1\) is -0.5; .*>= 0"):
        uw.update([1.0, -0.5])
    np.testing.assert_array_equal(uw.log_variances, s)
    assert uw.step == step
