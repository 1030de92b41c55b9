"""GLS: the gradient of the geometric mean, against the product formula."""

import math
import warnings

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.weighting import GeometricLossStrategy, generalized_mean_weights


@given(st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=8))
def test_matches_the_product_formula(losses):
    # Chennupati et al.: L_GLS = (prod L)^(1/K); w_i = L_GLS / (K L_i).
    L = np.array(losses)
    K = L.size
    L_gls = np.prod(L) ** (1 / K)
    gls = GeometricLossStrategy(K)
    np.testing.assert_allclose(gls.update(L), L_gls / (K * L), rtol=1e-13)
    np.testing.assert_allclose(gls.objective(L), L_gls, rtol=1e-13)


def test_hand_worked():
    # (1 * 4 * 16)^(1/3) = 4: w = 4 / (3 * (1, 4, 16)).
    w = GeometricLossStrategy(3).update([1.0, 4.0, 16.0])
    np.testing.assert_allclose(w, [4 / 3, 1 / 3, 1 / 12], rtol=1e-15)


def test_finite_difference_of_the_geometric_mean():
    L = np.array([0.5, 2.0, 30.0])
    w = GeometricLossStrategy(3).update(L)
    for i in range(3):
        h = 1e-6 * L[i]
        up, down = L.copy(), L.copy()
        up[i] += h
        down[i] -= h
        fd = (np.prod(up) ** (1 / 3) - np.prod(down) ** (1 / 3)) / (2 * h)
        np.testing.assert_allclose(w[i], fd, rtol=1e-8)


@given(st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=8))
def test_is_the_generalised_mean_at_gamma_zero(losses):
    w = GeometricLossStrategy(len(losses)).update(losses)
    assert w.tobytes() == generalized_mean_weights(losses, 0.0).tobytes()


@given(
    st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=6),
    st.lists(st.floats(1e-4, 1e4), min_size=6, max_size=6),
)
def test_weighted_losses_are_equal_and_scale_together(losses, scales):
    # w_i L_i = L_GLS / K for every task; scaling L_i -> c_i L_i multiplies every
    # weighted loss by the same (prod c)^(1/K).
    L = np.array(losses)
    K = L.size
    c = np.array(scales[:K])
    a = GeometricLossStrategy(K).update(L) * L
    b = GeometricLossStrategy(K).update(c * L) * (c * L)
    np.testing.assert_allclose(a, a[0], rtol=1e-13)
    np.testing.assert_allclose(b, np.prod(c) ** (1 / K) * a, rtol=1e-12)


def test_no_overflow_where_the_product_would():
    # prod over 40 losses of 1e300 overflows, and of 1e-300 underflows; the log route does not.
    L = np.array([1e300] * 20 + [1e-300] * 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gls = GeometricLossStrategy(40)
        w = gls.update(L)
        np.testing.assert_allclose(gls.objective(L), 1.0, rtol=1e-13)
    np.testing.assert_allclose(w * L, 1 / 40, rtol=1e-13)
    assert math.isfinite(w.max())
