"""The generalised mean: its gradient against the formula, its limits and its scale rules."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from paretomtl.weighting import (
    GeneralizedMeanWeighting,
    generalized_mean,
    generalized_mean_weights,
)

mpmath = pytest.importorskip("mpmath")

INF = math.inf


def naive(L, gamma):
    """Su's formula in plain float64: M = mean(L^g)^(1/g), w = L^(g-1) M^(1-g) / K."""
    L = np.asarray(L, dtype=np.float64)
    M = np.mean(L**gamma) ** (1 / gamma)
    return M, L ** (gamma - 1) * M ** (1 - gamma) / L.size


def reference(L, gamma):
    """The same formula (or its gamma = 0 form) in 60-digit arithmetic, any exponent.

    (More digits for tiny gamma: sum L^gamma = K + gamma sum log L + ... needs them.)
    """
    dps = 60 + (int(-math.log10(abs(gamma))) if 0 < abs(gamma) < 1 else 0)
    with mpmath.workdps(dps):
        Ls = [mpmath.mpf(float(x)) for x in L]
        K = len(Ls)
        if gamma == 0:
            M = mpmath.exp(mpmath.fsum(mpmath.log(x) for x in Ls) / K)
            return M, [M / (K * x) for x in Ls]
        g = mpmath.mpf(gamma)
        M = (mpmath.fsum(x**g for x in Ls) / K) ** (1 / g)
        return M, [x ** (g - 1) * M ** (1 - g) / K for x in Ls]


def test_gamma_one_is_the_arithmetic_mean():
    for K in (1, 2, 3, 7):
        L = np.geomspace(1e-3, 1e3, K)
        np.testing.assert_allclose(GeneralizedMeanWeighting(K, 1.0).update(L), 1 / K, rtol=1e-15)
        np.testing.assert_allclose(generalized_mean(L, 1.0), L.mean(), rtol=1e-14)


def test_hand_worked_gamma_two():
    # L = (1, 3): M = sqrt((1 + 9) / 2) = sqrt(5); w_i = (1/2) L_i M^-1 = (1, 3) / (2 sqrt 5).
    w = GeneralizedMeanWeighting(2, 2.0).update([1.0, 3.0])
    np.testing.assert_allclose(w, np.array([1.0, 3.0]) / (2 * math.sqrt(5)), rtol=1e-15)
    np.testing.assert_allclose(generalized_mean([1.0, 3.0], 2.0), math.sqrt(5), rtol=1e-15)


def test_hand_worked_gamma_minus_one():
    # L = (1, 4): M = 1 / mean(1, 1/4) = 1 / (5/8) = 1.6, the harmonic mean;
    # w_i = (1/2) L_i^-2 M^2 = 1.28 / L_i^2 = (1.28, 0.08). Check: 1.28 + 4 * 0.08 = 1.6 = M.
    w = GeneralizedMeanWeighting(2, -1.0).update([1.0, 4.0])
    np.testing.assert_allclose(w, [1.28, 0.08], rtol=1e-14)
    np.testing.assert_allclose(generalized_mean([1.0, 4.0], -1.0), 1.6, rtol=1e-15)


def test_hand_worked_limits():
    # gamma = 0: M = sqrt(1 * 4) = 2, w_i = M / (K L_i) = (1, 1/4).
    np.testing.assert_allclose(generalized_mean_weights([1.0, 4.0], 0.0), [1.0, 0.25], rtol=1e-15)
    assert generalized_mean([1.0, 4.0], 0.0) == 2.0
    # +-inf: all weight on the largest (smallest) loss; ties share it evenly.
    np.testing.assert_array_equal(generalized_mean_weights([1.0, 4.0, 2.0], INF), [0, 1, 0])
    np.testing.assert_array_equal(generalized_mean_weights([1.0, 4.0, 2.0], -INF), [1, 0, 0])
    np.testing.assert_array_equal(generalized_mean_weights([2.0, 1.0, 2.0], INF), [0.5, 0, 0.5])
    np.testing.assert_array_equal(
        generalized_mean_weights([1.0, 1.0, 3.0, 1.0], -INF), [1 / 3, 1 / 3, 0, 1 / 3]
    )
    assert generalized_mean([1.0, 4.0, 2.0], INF) == 4.0
    assert generalized_mean([1.0, 4.0, 2.0], -INF) == 1.0


gammas = st.one_of(
    st.floats(-8, 8).filter(lambda g: abs(g) > 1e-3),
    st.sampled_from([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0]),
)
moderate_losses = st.lists(st.floats(1e-2, 1e2), min_size=1, max_size=6)


@given(moderate_losses, gammas)
def test_matches_the_naive_formula(losses, gamma):
    M, w = naive(losses, gamma)
    np.testing.assert_allclose(generalized_mean_weights(losses, gamma), w, rtol=1e-12)
    np.testing.assert_allclose(generalized_mean(losses, gamma), M, rtol=1e-12)


@given(
    st.lists(st.floats(1e-250, 1e250), min_size=1, max_size=6),
    st.one_of(
        st.floats(-1e4, 1e4),
        st.sampled_from([0.0, 1e-12, -1e-12, 1e-8, -1e-8, 1.0]),
    ),
)
def test_matches_high_precision_for_any_gamma_and_scale(losses, gamma):
    # Where L^gamma over- or underflows float64, the log-space route still holds.
    l_max = max(abs(math.log(x)) for x in losses)
    rtol = 1e-14 + 1.6e-15 * (abs(gamma) + 1) * (l_max + 1)  # rounding of gamma * log L
    M, w = reference(losses, gamma)
    # A weight beyond float64's range is returned as inf, with numpy's overflow
    # warning (documented); this property is about the representable ones.
    assume(max(float(r) for r in w) < 1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, underflow or invalid warnings
        got = generalized_mean_weights(losses, gamma)
        got_M = generalized_mean(losses, gamma)
    np.testing.assert_allclose(got_M, float(M), rtol=rtol)
    for g, r in zip(got, w, strict=True):
        if r < 1e-290:  # below float64's normal range: only ask for (nearly) zero
            assert g < 1e-280
        else:
            np.testing.assert_allclose(g, float(r), rtol=rtol)


@given(st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=6), st.sampled_from([1e-8, -1e-8]))
def test_gamma_near_zero_approaches_the_geometric_mean(losses, gamma):
    # The weights are smooth in gamma: the gap to gamma = 0 is O(gamma var(log L)).
    np.testing.assert_allclose(
        generalized_mean_weights(losses, gamma), generalized_mean_weights(losses, 0.0), rtol=1e-6
    )


@given(st.lists(st.floats(1e-3, 1e3), min_size=2, max_size=6), st.sampled_from([1e3, -1e3]))
def test_large_gamma_approaches_the_max_or_min(losses, gamma):
    # With the extreme loss ahead of the next by 2%: the others' weights are
    # ~ exp(-1000 log 1.02) ~ 1e-9, and the extreme's is K^(-1/|gamma|) ~ 1 - log(K)/1000.
    s = sorted(losses, reverse=gamma > 0)
    assume(abs(math.log(s[0] / s[1])) > math.log(1.02))
    limit = generalized_mean_weights(losses, math.copysign(INF, gamma))
    K = len(losses)
    np.testing.assert_allclose(
        generalized_mean_weights(losses, gamma), limit, atol=2 * math.log(K) / 1e3
    )


def test_ties_split_evenly_in_the_limit_too():
    for gamma in (1e3, 1e6):
        np.testing.assert_allclose(
            generalized_mean_weights([2.0, 1.0, 2.0], gamma), [0.5, 0, 0.5], atol=1e-2 / gamma * 1e3
        )


@given(
    st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=6),
    st.one_of(st.floats(-20, 20), st.sampled_from([0.0, INF, -INF])),
    st.floats(1e-6, 1e6),
)
def test_weights_are_homogeneous_of_degree_zero(losses, gamma, c):
    # M(cL) = c M(L), so w = grad M satisfies w(cL) = w(L); and sum_i w_i L_i = M (Euler).
    L = np.array(losses)
    w = generalized_mean_weights(L, gamma)
    np.testing.assert_allclose(generalized_mean_weights(c * L, gamma), w, rtol=1e-11, atol=1e-300)
    np.testing.assert_allclose(
        generalized_mean(c * L, gamma), c * generalized_mean(L, gamma), rtol=1e-13
    )
    np.testing.assert_allclose((w * L).sum(), generalized_mean(L, gamma), rtol=1e-13)


@given(moderate_losses, gammas)
def test_shares_of_the_weighted_sum(losses, gamma):
    # w_i L_i / M = L_i^gamma / sum_j L_j^gamma: the share of task i in the objective.
    L = np.array(losses)
    shares = generalized_mean_weights(L, gamma) * L / generalized_mean(L, gamma)
    np.testing.assert_allclose(shares, L**gamma / np.sum(L**gamma), rtol=1e-12)


@given(
    st.lists(st.floats(1e-3, 1e3), min_size=2, max_size=6),
    st.lists(st.floats(1e-3, 1e3), min_size=6, max_size=6),
)
def test_per_task_scaling_leaves_the_shares_alone_only_at_gamma_zero(losses, scales):
    L, c = np.array(losses), np.array(scales[: len(losses)])
    for loss in (L, c * L):
        shares = generalized_mean_weights(loss, 0.0) * loss / generalized_mean(loss, 0.0)
        np.testing.assert_allclose(shares, 1 / L.size, rtol=1e-13)


def test_per_task_scaling_moves_the_shares_away_from_zero():
    L, c = np.array([1.0, 1.0]), np.array([1.0, 10.0])
    shares = generalized_mean_weights(c * L, 2.0) * c * L / generalized_mean(c * L, 2.0)
    np.testing.assert_allclose(shares, [1 / 101, 100 / 101], rtol=1e-14)


def test_extreme_gamma_and_losses_stay_finite():
    # Losses 300 orders of magnitude apart (the weights themselves stay in range: at
    # gamma ~ 0 the largest is M_0 / (K L_min) ~ 1e262), and near-ties.
    L = np.array([1e-150, 1.0, 1e150, 1e150 * (1 + 2**-50)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for gamma in (1e300, -1e300, 1e-300, -1e-300, 5e-324, 1e15, -1e15, 0.0, INF, -INF):
            w = generalized_mean_weights(L, gamma)
            assert np.isfinite(w).all() and (w >= 0).all()
            assert np.isfinite(generalized_mean(L, gamma))
    # At +inf the exact maximum wins, even where the logs of the two largest are equal.
    np.testing.assert_array_equal(generalized_mean_weights(L, INF), [0, 0, 0, 1])


def test_class_matches_the_functions_and_objective():
    gm = GeneralizedMeanWeighting(3, gamma=-2.5)
    L = [0.2, 3.0, 45.0]
    np.testing.assert_array_equal(gm.update(L), generalized_mean_weights(L, -2.5))
    assert gm.objective(L) == generalized_mean(L, -2.5)
    assert gm.state_dict()["hyperparameters"] == {"gamma": -2.5}


@pytest.mark.parametrize("gamma", [math.nan, "2", None, True])
def test_bad_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        GeneralizedMeanWeighting(2, gamma)
    with pytest.raises(ValueError, match="gamma"):
        generalized_mean_weights([1.0, 2.0], gamma)


@pytest.mark.parametrize(
    ("losses", "match"),
    [
        ([1.0, 0.0], r"losses\[1\] \(task 1\) is 0.0"),
        ([-1.0, 1.0], r"losses\[0\] \(task 0\) is -1.0"),
        ([], "non-empty"),
        ([[1.0]], "1-D"),
    ],
)
def test_functions_bad_losses(losses, match):
    with pytest.raises(ValueError, match=match):
        generalized_mean_weights(losses, 2.0)
