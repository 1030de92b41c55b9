"""Gradient normalisation against its formula, and its invariances."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.solvers import gradient_normalization
from tests.strategies import grads_matrices


@given(grads_matrices(max_tasks=8, max_dim=8))
def test_direction_is_sum_of_unit_gradients(J):
    res = gradient_normalization(J)
    norms = np.linalg.norm(J, axis=1)
    expected = sum(g / n for g, n in zip(J, norms, strict=True) if n > 0)
    expected = np.zeros(J.shape[1]) + expected
    np.testing.assert_allclose(res.direction, expected, rtol=1e-9, atol=1e-9 * len(J))
    assert (res.weights[norms == 0] == 0).all()


@given(
    grads_matrices(max_tasks=6, max_dim=6, allow_zero_rows=False),
    st.lists(st.floats(-8, 8), min_size=6, max_size=6),
)
def test_invariant_to_per_task_positive_scale(J, exponents):
    scales = 10.0 ** np.array(exponents[: J.shape[0]])
    a = gradient_normalization(J).direction
    b = gradient_normalization(J * scales[:, None]).direction
    np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9 * len(J))


def test_hand_worked():
    # (3, 0) / 3 + (0, 0.5) / 0.5 = (1, 1); weights (1/3, 2).
    res = gradient_normalization(np.array([[3.0, 0.0], [0.0, 0.5]]))
    np.testing.assert_allclose(res.weights, [1 / 3, 2.0])
    np.testing.assert_allclose(res.direction, [1.0, 1.0])
