"""The mean of the task gradients, against numpy's mean and the descent condition."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from paretomtl import solvers

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@given(J=arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 12)), elements=finite))
def test_direction_is_numpys_mean_and_residual_is_the_worst_conflict(J):
    res = solvers.mean(J)
    K = J.shape[0]
    np.testing.assert_array_equal(res.weights, np.full(K, 1.0 / K))
    np.testing.assert_allclose(res.direction, J.mean(axis=0), rtol=1e-12, atol=1e-9)
    rates = J @ J.mean(axis=0)  # <g_i, d>: each loss falls along -d where it is > 0
    scale = (J * J).sum(axis=1).max()
    expected = max(0.0, -rates.min()) / scale if scale > 0 else 0.0
    assert abs(res.kkt_residual - expected) <= 1e-9 * max(1.0, expected)


def test_registered_and_reachable_everywhere_by_name():
    assert solvers.get("mean") is solvers.mean
    assert solvers.info("mean").kind == "gradient"
    J = np.array([[3.0, 0.0], [0.0, 1.0]])
    gram_only = solvers.method("mean")(gram=J @ J.T)
    np.testing.assert_array_equal(gram_only.weights, [0.5, 0.5])
    assert gram_only.direction is None
