"""Constant and equal weighting: the weights given, whatever the losses."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import ConstantWeighting, EqualWeighting


@given(st.lists(st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=3), min_size=1, max_size=5))
def test_returns_the_given_weights_for_any_finite_losses(losses):
    given_weights = [0.0, 0.25, 3.0]
    cw = ConstantWeighting(3, given_weights)
    for L in losses:
        assert cw.update(L).tobytes() == np.array(given_weights).tobytes()


def test_the_given_array_is_copied():
    weights = np.array([1.0, 2.0])
    cw = ConstantWeighting(2, weights)
    weights[0] = 100.0
    np.testing.assert_array_equal(cw.update([1.0, 1.0]), [1.0, 2.0])


def test_equal_weighting_is_all_ones():
    ew = EqualWeighting(4)
    np.testing.assert_array_equal(ew.update([1e-9, 1.0, -3.0, 1e9]), np.ones(4))
    assert ew.state_dict()["method"] == "EqualWeighting"


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([1.0, -0.5], r"weights\[1\] \(task 1\) is -0.5"),
        ([np.nan, 1.0], r"weights\[0\] \(task 0\) is nan"),
        ([1.0, np.inf], r"weights\[1\] \(task 1\) is inf"),
        ([1.0], r"weights must have shape \(2,\)"),
        ([[1.0, 1.0]], r"weights must have shape \(2,\)"),
    ],
)
def test_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        ConstantWeighting(2, weights)
