"""Input validation and the Gram pass shared by every solver."""

import numpy as np
import pytest

from paretomtl.solvers import gram, mgda


def test_gram_matches_float64_product_for_each_dtype():
    rng = np.random.default_rng(0)
    J = rng.standard_normal((5, 3000))
    exact = J @ J.T
    for dtype, tol in ((np.float64, 1e-13), (np.float32, 1e-5), (np.float16, 1e-2)):
        Jd = J.astype(dtype)
        ref = Jd.astype(np.float64) @ Jd.astype(np.float64).T
        G = gram(Jd)
        assert G.dtype == np.float64
        np.testing.assert_allclose(G, ref, rtol=0, atol=tol * np.abs(exact).max())
    # float64 accumulation of float32 input is exact to float64 rounding.
    J32 = J.astype(np.float32)
    ref = J32.astype(np.float64) @ J32.astype(np.float64).T
    np.testing.assert_allclose(gram(J32, accumulate="float64"), ref, rtol=1e-13)


def test_float32_overflow_and_underflow_fall_back_to_float64():
    J = np.zeros((3, 4), dtype=np.float32)
    J[0] = 1e30  # squares overflow float32
    J[1] = 1e-30  # squares underflow float32
    J[2] = 1.0
    G = gram(J)
    ref = J.astype(np.float64) @ J.astype(np.float64).T
    np.testing.assert_allclose(G, ref, rtol=1e-6)
    assert G[1, 1] > 0
    res = mgda(J)
    assert np.isfinite(res.weights).all() and np.isfinite(res.direction).all()
    # The tiny gradient is (nearly) the min-norm point.
    assert res.weights[1] > 0.99


def test_zero_row_in_float32_is_not_an_underflow():
    J = np.array([[0.0, 0.0], [1.0, 2.0]], dtype=np.float32)
    np.testing.assert_array_equal(gram(J), [[0.0, 0.0], [0.0, 5.0]])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradient_names_the_task(bad):
    J = np.ones((3, 5))
    J[2, 1] = bad
    with pytest.raises(ValueError, match=r"grads\[2\] \(task 2\)"):
        gram(J)
    with pytest.raises(ValueError, match=r"task 2"):
        mgda(J)
    with pytest.raises(ValueError, match=r"task 2"):
        mgda(J.astype(np.float32))


def test_float64_overflow_is_reported():
    J = np.full((2, 3), 1e200)
    with pytest.raises(ValueError, match="overflow"):
        gram(J)


def test_integer_input_is_accepted_and_bad_types_are_not():
    np.testing.assert_array_equal(gram(np.array([[1, 0], [0, 2]])), [[1.0, 0.0], [0.0, 4.0]])
    with pytest.raises(TypeError, match="grads"):
        gram(np.ones((2, 2), dtype=complex))
    with pytest.raises(TypeError, match="grads"):
        gram(np.ones((2, 2), dtype=bool))
    with pytest.raises(ValueError, match="accumulate"):
        gram(np.ones((2, 2)), accumulate="float128")


def test_gram_accepts_float32_rounding_but_not_real_asymmetry():
    rng = np.random.default_rng(2)
    J = rng.standard_normal((6, 40)).astype(np.float32)
    G32 = J @ J.T  # float32 rounding: slightly asymmetric/indefinite is fine
    mgda(gram=G32)
    G = np.array([[1.0, 0.5], [0.4, 1.0]])
    with pytest.raises(ValueError, match="not symmetric"):
        mgda(gram=G)
    with pytest.raises(ValueError, match="positive semi-definite"):
        mgda(gram=np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="positive semi-definite"):
        mgda(gram=np.array([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="positive semi-definite"):
        mgda(gram=np.array([[-1.0]]))


def test_neither_grads_nor_gram():
    with pytest.raises(ValueError, match="pass grads"):
        mgda()
