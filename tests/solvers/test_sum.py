"""The sum of the task gradients, against numpy's sum and TorchJD's SumWeighting."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from paretomtl import solvers

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@given(J=arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 12)), elements=finite))
def test_direction_is_numpys_sum_and_residual_is_means(J):
    res = solvers.sum(J)
    np.testing.assert_array_equal(res.weights, np.ones(J.shape[0]))
    np.testing.assert_allclose(res.direction, J.sum(axis=0), rtol=1e-12, atol=1e-9)
    assert abs(res.kkt_residual - solvers.mean(J).kkt_residual) <= 1e-12
    rates = J @ J.sum(axis=0)
    scale = (J * J).sum(axis=1).max()
    expected = max(0.0, -rates.min()) / (J.shape[0] * scale) if scale > 0 else 0.0
    assert abs(res.kkt_residual - expected) <= 1e-9 * max(1.0, expected)


def test_huge_gradients_and_the_gram_route():
    J = np.array([[1e200, 0.0], [0.0, 3e200]])
    res = solvers.sum(J)
    np.testing.assert_array_equal(res.direction, [1e200, 3e200])
    assert res.gram_exponent != 0
    assert solvers.get("sum") is solvers.sum
    assert solvers.method("sum")(gram=np.eye(3)).direction is None


def test_agrees_with_torchjd():
    torch = pytest.importorskip("torch")
    torchjd = pytest.importorskip("torchjd")
    J = np.random.default_rng(0).standard_normal((5, 7))
    theirs = torchjd.aggregation.SumWeighting()(torch.from_numpy(J)).numpy()
    np.testing.assert_array_equal(solvers.sum(J).weights, theirs)
    np.testing.assert_allclose(
        solvers.sum(J).direction, torchjd.aggregation.Sum()(torch.from_numpy(J)).numpy(), rtol=1e-12
    )
