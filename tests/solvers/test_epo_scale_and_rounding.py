"""EPO's weights are invariant to a common scale of the gradients and of the losses,
and rounding at balanced losses does not decide them.

Mahapatra & Rajan's programs (ICML 2020; dbmptr/EPOSearch, ``epo_lp.py``) are
homogeneous in C = J J^T (objective and every constraint scale with it), and read the
losses only through l_hat = r l / sum(r l): multiplying every gradient, or every loss,
by one positive number changes nothing but rounding. A power of two changes nothing at
all (it is exact), so there the weights must be bit-identical; any other factor from
1e-30 to 1e30 may move them by rounding only.

At balanced losses the adjustment a = r (log(m l_hat) - mu) is rounding noise (about
1e-16), and so is the descent program's row beta^T C a >= min(0, max_j (C a)_j): its
sign, not the losses, would pick the answer. Losses a few ulps apart must give the
same weights.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl.solvers import epo


@st.composite
def problems(draw, balanced=None):
    """Gradients (Gaussian, or conflicting with task 0), preference, losses."""
    K = draw(st.integers(2, 5))
    M = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    J = rng.standard_normal((K, M))
    if draw(st.booleans()):  # the others pull against task 0
        J[1:] = -0.7 * J[:1] + 0.5 * J[1:]
    r = rng.uniform(0.05, 1.0, K)
    on_ray = draw(st.booleans()) if balanced is None else balanced
    l = rng.uniform(0.05, 5.0) / r if on_ray else rng.uniform(0.05, 5.0, K)
    return J, l, r


def _same_program(a, b):
    assert a.extras["mode"] == b.extras["mode"]
    assert a.extras["relaxed"] == b.extras["relaxed"]
    assert a.converged and b.converged


# ------------------------------------------------------------- gradient scale
@given(problems(), st.integers(-990, 990))
def test_a_power_of_two_scale_of_the_gradients_changes_nothing(problem, k):
    # 2**k for |k| <= 990: gradients from 1e-298 to 1e298 (beyond 1e+-154 the Gram
    # matrix is formed from the gradients rescaled by a power of two).
    J, l, r = problem
    base = epo(J, losses=l, preference=r)
    scaled = epo(np.ldexp(J, k), losses=l, preference=r)
    np.testing.assert_array_equal(scaled.weights, base.weights)
    _same_program(scaled, base)
    # the rate is homogeneous of degree 2 in the gradients (on the scale of gram)
    rate = np.ldexp(scaled.extras["rate"], -2 * (k + scaled.gram_exponent))
    if abs(k) <= 400:  # beyond, the rate itself may fall below float64's normal range
        assert rate == pytest.approx(base.extras["rate"], rel=1e-9, abs=1e-300)


def test_gradients_near_1e_minus_136_are_not_lost():
    # The largest squared norm just above the rescaling bound 2**-900, the other 0.42
    # of it: both stay (an earlier draft of the shared input checks called it lost).
    J = np.ldexp(np.array([[0.34558419], [0.82161814]]), -449)
    l, r = np.array([1.59356569, 2.14546592]), np.array([0.18695163, 0.95121697])
    np.testing.assert_array_equal(
        epo(J, losses=l, preference=r).weights, epo(J * 2.0**449, losses=l, preference=r).weights
    )


@given(problems(), st.integers(-15, 15), st.booleans())
def test_a_decimal_scale_of_the_gradients_changes_the_weights_by_rounding_only(
    problem, k, through_gram
):
    # 10**k on the gradients is 10**(2k) on the Gram matrix: 1e-30 .. 1e30.
    J, l, r = problem
    base = epo(J, losses=l, preference=r)
    if through_gram:
        scaled = epo(gram=(J @ J.T) * 10.0 ** (2 * k), losses=l, preference=r)
    else:
        scaled = epo(J * 10.0**k, losses=l, preference=r)
    np.testing.assert_allclose(scaled.weights, base.weights, rtol=0, atol=1e-7)
    _same_program(scaled, base)
    assert scaled.extras["rate"] == pytest.approx(
        base.extras["rate"] * 10.0 ** (2 * k), rel=1e-6, abs=1e-9 * 10.0 ** (2 * k)
    )


@pytest.mark.parametrize("s", [1e-30, 1e-9, 1e10, 1e30])
def test_the_issues_scales(s):
    # The issue's report: 1e-9 and 1e10 gave other weights than 1, all "converged".
    rng = np.random.default_rng(0)
    J, L = rng.standard_normal((3, 4)), rng.uniform(0.1, 2.0, 3)
    base = epo(J, losses=L)
    scaled = epo(J * s, losses=L)
    np.testing.assert_allclose(scaled.weights, base.weights, atol=1e-9)
    assert base.extras["mode"] == scaled.extras["mode"] == "balance"
    assert base.extras["rate"] > 0 and scaled.extras["rate"] > 0  # mu falls


# ------------------------------------------------------------- loss scale
@given(problems(), st.integers(-900, 900))
def test_a_power_of_two_scale_of_the_losses_changes_nothing(problem, k):
    J, l, r = problem
    base = epo(J, losses=l, preference=r)
    scaled = epo(J, losses=np.ldexp(l, k), preference=r)
    np.testing.assert_array_equal(scaled.weights, base.weights)
    _same_program(scaled, base)
    assert scaled.objective == base.objective


@given(problems(), st.integers(-30, 30))
def test_a_decimal_scale_of_the_losses_changes_the_weights_by_rounding_only(problem, k):
    J, l, r = problem
    base = epo(J, losses=l, preference=r)
    scaled = epo(J, losses=l * 10.0**k, preference=r)
    np.testing.assert_allclose(scaled.weights, base.weights, rtol=0, atol=1e-7)
    _same_program(scaled, base)
    assert scaled.objective == pytest.approx(base.objective, rel=1e-9, abs=1e-15)


@given(st.integers(0, 2**16), st.sampled_from([-30, -9, -1, 10, 30]))
def test_through_the_torch_adapter_a_loss_scale_changes_nothing(seed, k):
    # Multiplying the losses by s multiplies the gradients by s too (the issue: 1e-9
    # flipped the weights).
    torch = pytest.importorskip("torch")
    from paretomtl.adapters.torch import backward

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 4, generator=g, dtype=torch.float64)
    ys = [torch.randn(16, generator=g, dtype=torch.float64) for _ in range(3)]
    trunk0 = torch.randn(6, 4, generator=g, dtype=torch.float64)
    heads = torch.randn(3, 6, generator=g, dtype=torch.float64)
    weights = []
    for s in (1.0, 10.0**k):
        trunk = trunk0.clone().requires_grad_(True)
        z = torch.tanh(x @ trunk.T)
        losses = [s * ((z @ heads[i] - ys[i]) ** 2).mean() for i in range(3)]
        info = backward(losses, [trunk], "epo")
        weights.append(np.asarray(info.weights))
    np.testing.assert_allclose(weights[1], weights[0], rtol=0, atol=1e-7)


# ------------------------------------------------------------- rounding at balance
C_ISSUE = np.array([[18.0, -1.4], [-1.4, 13.6]])
# max 1'C b = 16.6 b1 + 12.2 b2 subject to (C b)_2 = -1.4 b1 + 13.6 b2 >= 0:
RELAXED = np.array([1 - 1.4 / 15, 1.4 / 15])


@pytest.mark.parametrize(
    "second", [1.0, np.nextafter(1.0, 2.0), np.nextafter(1.0, 0.0), 1.0 + 4 * 2.0**-52]
)
@pytest.mark.parametrize("eps", [1e-4, 0.0])
def test_the_issues_balanced_losses(second, eps):
    # One ulp used to flip (0.907, 0.093) to (0.436, 0.564); the authors' LP gives the
    # first for both.
    res = epo(gram=C_ISSUE, losses=[1.0, second], preference=[1.0, 1.0], eps=eps)
    assert res.extras["mode"] == "descent" and not res.extras["relaxed"]
    np.testing.assert_allclose(res.weights, RELAXED, rtol=1e-12)


@pytest.mark.parametrize("second", [1.0 + 1e-9, 1.0 + 1e-6, 1.0 + 1e-3])
def test_the_restriction_still_binds_above_rounding(second):
    # Off balance by more than rounding, the paper's restricted program is solved:
    # mu may not rise, and the answer moves to the other vertex.
    res = epo(gram=C_ISSUE, losses=[1.0, second], preference=[1.0, 1.0])
    assert res.extras["mode"] == "descent" and not res.extras["relaxed"]
    # a = log(2 l_hat) - mu with l_hat = (1, s) / (1 + s): a_1 < 0 < a_2, C a = (-, +)
    # up to O(s - 1); the restriction b'C a >= 0 binds: b proportional to ((Ca)_2, -(Ca)_1).
    d = (second - 1.0) / (1.0 + second)  # l_hat = (1/2 - d/2, 1/2 + d/2)
    logs = np.array([np.log1p(-d), np.log1p(d)])
    a = logs - 0.5 * ((1 - d) * logs[0] + (1 + d) * logs[1])
    Ca = C_ISSUE @ a
    np.testing.assert_allclose(res.weights, [Ca[1], -Ca[0]] / (Ca[1] - Ca[0]), rtol=1e-6)
    # about (0.436, 0.564), the other vertex
    np.testing.assert_allclose(res.weights, [15 / 34.4, 19.4 / 34.4], atol=1e-3)


def _ulps(x, k):
    """x moved by k ulps (k may be negative)."""
    for _ in range(abs(k)):
        x = np.nextafter(x, np.inf if k > 0 else 0.0)
    return x


@given(
    problems(balanced=True),
    st.lists(st.integers(-4, 4), min_size=5, max_size=5),
    st.sampled_from([1e-4, 0.0]),
)
def test_losses_a_few_ulps_around_balance_give_the_same_weights(problem, shifts, eps):
    J, l, r = problem
    base = epo(J, losses=l, preference=r, eps=eps)
    moved = np.array([_ulps(v, k) for v, k in zip(l, shifts, strict=False)])
    res = epo(J, losses=moved, preference=r, eps=eps)
    assert base.extras["mode"] == res.extras["mode"] == "descent"
    np.testing.assert_array_equal(res.weights, base.weights)
    # and those are the relaxed program's weights: no loss rises to first order
    C = J @ J.T
    assert (C @ res.weights >= -1e-9 * np.abs(C).max()).all()


# ------------------------------------------------------------- HiGHS's status
def test_a_degenerate_program_highs_calls_unknown_is_not_taken_as_infeasible():
    # At 1e-10 tolerances HiGHS ends this feasible program (e_4 satisfies it: task 4's
    # gradient is zero) with status "unknown"; it used to be read as "infeasible" and
    # the relaxed program solved instead.
    J = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, -1.0], [-(2.0**-24), 0.0, 1.0], [0.0, 0.0, 0.0]])
    res = epo(J, losses=[2.0, 1.0, 1.0, 1.0], eps=0.5)
    assert res.extras["mode"] == "descent"
    assert not res.extras["relaxed"] and res.converged
    assert res.extras["lp_status"] == "optimal"
    C, a = J @ J.T, res.extras["adjustment"]
    Ca = C @ a
    assert (C @ res.weights >= -1e-9 * np.abs(C).max()).all()
    assert res.weights @ Ca >= min(0.0, Ca.max()) - 1e-9 * np.abs(Ca).max()


def test_when_highs_fails_the_weights_are_mgdas_and_flagged(monkeypatch):
    import scipy.optimize

    from paretomtl.solvers import mgda

    class Failed:
        status, x = 4, None

    monkeypatch.setattr(scipy.optimize, "linprog", lambda *args, **kwargs: Failed())
    J = np.array([[1.0, 0.0], [-0.5, 1.0]])
    res = epo(J, losses=[2.0, 1.0])
    assert res.converged is False and res.extras["lp_status"] == "failed"
    np.testing.assert_array_equal(res.weights, mgda(J).weights)
