"""Live-loss normalisation: w_i = 1 / L_i, the gradient of sum log L_i."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import LiveLossNormalization

positive = st.floats(1e-300, 1e300)


@given(st.lists(positive, min_size=1, max_size=8))
def test_weights_are_the_inverse_losses(losses):
    L = np.array(losses)
    w = LiveLossNormalization(L.size).update(L)
    np.testing.assert_array_equal(w, 1.0 / L)
    np.testing.assert_allclose(w * L, 1.0, rtol=2e-16)  # every weighted loss is 1


def test_gradient_of_the_sum_of_logs():
    # The trainer's gradient sum_i w_i dL_i equals the gradient of sum_i log L_i:
    # a central difference of sum log L in each L_i gives w_i.
    L = np.array([0.3, 2.0, 17.0])
    w = LiveLossNormalization(3).update(L)
    for i in range(3):
        h = 1e-6 * L[i]
        up, down = L.copy(), L.copy()
        up[i] += h
        down[i] -= h
        fd = (np.log(up).sum() - np.log(down).sum()) / (2 * h)
        np.testing.assert_allclose(w[i], fd, rtol=1e-8)


@given(
    st.lists(st.floats(1e-100, 1e100), min_size=3, max_size=3),
    st.lists(st.integers(-100, 100), min_size=3, max_size=3),
)
def test_weighted_losses_are_invariant_to_per_task_scaling(losses, powers):
    # w_i(c_i L_i) * c_i L_i = 1 for any c_i > 0; by powers of two, bit for bit.
    L, c = np.array(losses), 2.0 ** np.array(powers)
    a, b = LiveLossNormalization(3), LiveLossNormalization(3)
    assert (a.update(L) * L).tobytes() == (b.update(c * L) * (c * L)).tobytes()


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_non_positive_losses_are_refused(bad):
    with pytest.raises(ValueError, match=r"losses\[1\] \(task 1\) is .*divides by the loss"):
        LiveLossNormalization(2).update([1.0, bad])
