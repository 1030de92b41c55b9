"""Prior-loss normalisation and the prior losses of classification and regression."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import (
    PriorLossNormalization,
    prior_loss_classification,
    prior_loss_regression,
)

# -- classification --------------------------------------------------------------------


@pytest.mark.parametrize("C", [1, 2, 10, 1000])
def test_balanced_classes_give_log_c(C):
    assert prior_loss_classification(num_classes=C) == math.log(C)
    np.testing.assert_allclose(
        prior_loss_classification(np.repeat(np.arange(C), 3)), math.log(C), rtol=1e-14
    )
    np.testing.assert_allclose(
        prior_loss_classification(class_frequencies=np.full(C, 7.0)), math.log(C), rtol=1e-14
    )


def test_hand_worked_frequencies():
    # Frequencies (1/2, 1/4, 1/4): H = 1/2 log 2 + 2 * 1/4 log 4 = 1.5 log 2.
    expected = 1.5 * math.log(2)
    np.testing.assert_allclose(prior_loss_classification([0, 0, 1, 2]), expected, rtol=1e-15)
    np.testing.assert_allclose(
        prior_loss_classification(class_frequencies=[2, 1, 1]), expected, rtol=1e-15
    )
    np.testing.assert_allclose(  # an absent class contributes 0 log 0 = 0
        prior_loss_classification(class_frequencies=[0.5, 0.25, 0.0, 0.25], num_classes=4),
        expected,
        rtol=1e-15,
    )
    np.testing.assert_allclose(  # any labels numpy.unique can count
        prior_loss_classification(np.array(["cat", "cat", "dog", "eel"])), expected, rtol=1e-15
    )


@given(st.lists(st.integers(0, 6), min_size=1, max_size=200))
def test_is_the_cross_entropy_of_predicting_the_frequencies(labels):
    y = np.array(labels)
    p = np.bincount(y, minlength=7) / y.size
    cross_entropy = -np.mean(np.log(p[y]))  # the loss of the input-blind prediction p
    np.testing.assert_allclose(prior_loss_classification(y), cross_entropy, rtol=1e-12, atol=1e-15)
    assert prior_loss_classification(y, num_classes=7) == prior_loss_classification(y)


def test_single_class_is_zero_not_negative_zero():
    value = prior_loss_classification([3, 3, 3])
    assert value == 0.0 and math.copysign(1.0, value) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "pass labels, class_frequencies or num_classes"),
        ({"labels": [0, 1], "class_frequencies": [1, 1]}, "not both"),
        ({"labels": [0, 2], "num_classes": 2}, r"integers in \[0, 2\)"),
        ({"labels": [0.5, 1.0], "num_classes": 2}, r"integers in \[0, 2\)"),
        ({"labels": [-1, 0], "num_classes": 2}, r"integers in \[0, 2\)"),
        ({"labels": [[1, 0], [0, 1]]}, "class_frequencies=labels.mean"),
        ({"labels": []}, "non-empty"),
        ({"class_frequencies": [1.0, -1.0]}, r"class_frequencies\[1\] \(class 1\) is -1.0"),
        ({"class_frequencies": [np.nan, 1.0]}, r"class_frequencies\[0\] \(class 0\) is nan"),
        ({"class_frequencies": [0.0, 0.0]}, "sum to 0"),
        ({"class_frequencies": [1.0, 1.0], "num_classes": 3}, "num_classes is 3"),
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": 2.0}, "num_classes"),
    ],
)
def test_classification_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        prior_loss_classification(**kwargs)


# -- regression ----------------------------------------------------------------------


def test_regression_hand_worked():
    # Mean 2.5; squared deviations 2.25, 0.25, 0.25, 2.25: variance 5 / 4.
    assert prior_loss_regression([1.0, 2.0, 3.0, 4.0]) == 1.25
    # Two outputs with variances 1 and 4: mean 2.5, sum 5.
    y = np.array([[0.0, 0.0], [2.0, 4.0]])
    assert prior_loss_regression(y) == 2.5
    assert prior_loss_regression(y, reduction="sum") == 5.0
    assert prior_loss_regression([7.0]) == 0.0


@given(
    st.integers(1, 30),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(0, 2**32 - 1),
)
def test_regression_is_the_error_of_predicting_the_mean(N, D1, D2, seed):
    y = np.random.default_rng(seed).normal(3.0, 2.0, size=(N, D1, D2))
    residual = y - y.mean(axis=0)  # the best constant prediction, one per output
    np.testing.assert_allclose(prior_loss_regression(y), np.mean(residual**2), rtol=1e-12)
    np.testing.assert_allclose(  # summed over outputs: E ||y - mu||^2, Su's form
        prior_loss_regression(y, reduction="sum"),
        np.mean(np.sum(residual.reshape(N, -1) ** 2, axis=1)),
        rtol=1e-12,
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((5.0,), {}, "with N >= 1"),
        (([],), {}, "with N >= 1"),
        (([1.0, np.nan],), {}, r"labels\[1\] is not finite"),
        (([[1.0, 2.0], [np.inf, 0.0]],), {}, r"labels\[1\] is not finite"),
        (([1.0, 2.0],), {"reduction": "max"}, "reduction"),
    ],
)
def test_regression_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        prior_loss_regression(*args, **kwargs)


# -- the normalisation -----------------------------------------------------------------


def test_weights_are_the_inverse_priors():
    priors = [math.log(10), 0.25, 4.0]
    pn = PriorLossNormalization(3, priors)
    for L in ([1.0, 2.0, 3.0], [-1.0, 0.0, 1e9]):  # the losses do not matter
        np.testing.assert_array_equal(pn.update(L), 1.0 / np.array(priors))
    np.testing.assert_array_equal(pn.prior_losses, priors)


def test_with_the_helpers():
    y_class = np.array([0, 1, 2, 3] * 5)
    y_reg = np.array([[0.0], [2.0]])  # variance 1
    pn = PriorLossNormalization(
        2, [prior_loss_classification(y_class), prior_loss_regression(y_reg)]
    )
    # At the prior's own losses every weighted loss is 1.
    L = np.array([math.log(4), 1.0])
    np.testing.assert_allclose(pn.update(L) * L, [1.0, 1.0], rtol=1e-15)


@pytest.mark.parametrize(
    ("priors", "match"),
    [
        ([1.0, 0.0], r"prior_losses\[1\] \(task 1\) is 0.0"),
        ([-1.0, 1.0], r"prior_losses\[0\] \(task 0\) is -1.0"),
        ([1.0, np.inf], r"prior_losses\[1\] \(task 1\) is inf"),
        ([1.0], r"prior_losses must have shape \(2,\)"),
    ],
)
def test_bad_priors(priors, match):
    with pytest.raises(ValueError, match=match):
        PriorLossNormalization(2, priors)


@given(st.floats(1e-3, 1e3), st.integers(0, 2**32 - 1))
def test_regression_prior_scales_with_the_units_of_the_labels(c, seed):
    # Labels in other units (y -> c y): a squared error scales by c^2, and so does the
    # prior, so the weighted loss L / L(prior) is unit-free.
    y = np.random.default_rng(seed).normal(size=(20, 2))
    np.testing.assert_allclose(
        prior_loss_regression(c * y), c * c * prior_loss_regression(y), rtol=1e-12
    )
    np.testing.assert_allclose(
        prior_loss_regression(y + 1e3 * c), prior_loss_regression(y), rtol=1e-6
    )
