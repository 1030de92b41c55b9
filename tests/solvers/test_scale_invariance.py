"""Issue 12, class 1: answers invariant to a common positive scale stay so at every scale.

MGDA, the Pareto step, PCGrad, the mean, gradient normalisation (its direction),
GradVac and momentum PCGrad give the same weights for gradients c * J as for J, c > 0.
The scales tested are powers of two, 2**k: multiplying by 2**k is exact wherever the
numbers stay in the normal range, and every step of these methods commutes with it
(products, quotients and square roots of scaled numbers are the scaled rounded
results, comparisons keep their outcome), so the tolerance is zero: weights equal bit
for bit, directions equal to 2**k times the unscaled ones up to the rounding of
products that fall below the normal range (an absolute K * 2**-1074 in float64,
K * 2**-149 in float32 at each scale). k spans 2**-100..2**100 (1e-30..1e30) and, for
float64 gradients, as far as the scaled gradients stay exact (1e-290..1e290), where
grads @ grads.T itself underflows or overflows and the solvers must rescale first.

float32 gradients have one more source of difference: the Gram matrix is multiplied in
float32, and where products leave float32's range (or a row is too short next to the
largest) the library forms it differently (rescaled, or accumulated in float64), so the
Gram matrices at two scales can differ by float32 rounding. There the test checks the
two steps separately: the Gram matrix is within float32 rounding of the exact one, the
weights are the method's weights on that Gram matrix (bit for bit), and where the two
Gram matrices agree bit for bit, so do the weights.
"""

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from paretomtl import solvers
from tests.strategies import grads_matrices

METHODS = {
    "mgda/exact": lambda J=None, gram=None: solvers.mgda(J, gram=gram),
    "mgda/frank-wolfe": lambda J=None, gram=None: solvers.mgda(J, gram=gram, method="frank-wolfe"),
    "pareto-step/exact": lambda J=None, gram=None: solvers.pareto_step(
        J, gram=gram, lower_bounds=0.5 / _k(J, gram)
    ),
    "pareto-step/pe-ltr": lambda J=None, gram=None: solvers.pareto_step(
        J, gram=gram, lower_bounds=0.5 / _k(J, gram), method="pe-ltr"
    ),
    "pcgrad/sum": lambda J=None, gram=None: solvers.pcgrad(J, gram=gram, seed=7),
    "pcgrad/mean": lambda J=None, gram=None: solvers.pcgrad(J, gram=gram, seed=7, reduction="mean"),
    "mean": lambda J=None, gram=None: solvers.mean(J, gram=gram),
    "gradient-normalization": lambda J=None, gram=None: solvers.gradient_normalization(
        J, gram=gram
    ),
}
# The weights of gradient normalisation are 1 / |g_i|: they scale by 2**-k.
WEIGHT_POWER = {name: (-1 if name == "gradient-normalization" else 0) for name in METHODS}


def _k(J, gram):
    return (np.shape(J) if J is not None else np.shape(gram))[0]


def _exponent(x) -> int:
    """e with 2**(e-1) <= max|x| < 2**e (0 for x = 0)."""
    top = float(np.max(np.abs(x)))
    return int(np.frexp(top)[1]) if top > 0 else 0


def _clip_range(J: np.ndarray, bits: int) -> np.ndarray:
    """J with entries below 2**-bits of its largest set to 0: products then span at most
    2**(2 bits) below the largest squared entry (see the module docstring)."""
    out = J.copy()
    out[np.abs(out) < np.ldexp(float(np.max(np.abs(J))), -bits)] = 0.0
    return out


@st.composite
def scaled_pairs(draw, dtype):
    """(B, J, k): J = 2**k * B exactly, in ``dtype``; B has entries within 2**40 (float64)
    or 2**20 (float32) of its largest, k in [-100, 100], as far as J stays exact, or
    where the largest squared norm lies near a bound at which the library changes how
    it forms the Gram matrix (float64: 2**+-900, float32: 2**+-100; any value between
    1e-300 and 1e300 is a legitimate scale, and none may change the answer)."""
    bits, lowest, highest = (40, -1022, 1000) if dtype == np.float64 else (20, -126, 120)
    bound = 900 if dtype == np.float64 else 100
    B = _clip_range(draw(grads_matrices(max_tasks=6, max_dim=8)), bits).astype(dtype)
    e = _exponent(B)
    lo, hi = lowest + bits + 1 - e, highest - e - 4
    B64 = B.astype(np.float64)
    top = float(np.max(np.einsum("ij,ij->i", B64, B64)))
    half = int(np.frexp(top)[1]) // 2 if top > 0 else 0  # 4**half ~ top
    near = st.sampled_from([-bound // 2, bound // 2]).flatmap(
        lambda b: st.integers(b - half - 2, b - half + 4)
    )
    k = draw(
        st.one_of(
            st.integers(-100, 100),
            st.integers(lo, lo + 300),
            st.integers(hi - 300, hi),
            near,
            near,
        )
    )
    k = min(max(k, lo), hi)  # 2**100 times the largest float32 entries can overflow
    with np.errstate(over="ignore", under="ignore"):
        J = np.ldexp(B, k).astype(dtype)
    assert np.isfinite(J).all()  # k <= highest - e - 4 keeps it finite
    # J is B * 2**k rounded; the unscaled twin is J / 2**k, exact (scaling up or exact).
    return np.ldexp(J, -k).astype(dtype), J, k


def assert_scaled(a, b, k, atol):
    """a == 2**k * b up to ``atol`` (absolute, for products rounded below the normal range)."""
    with np.errstate(over="ignore", under="ignore"):
        expected = np.ldexp(np.asarray(b, dtype=np.float64), k)
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), expected, rtol=0, atol=atol)


def exponent_of(res) -> int:
    """``res.gram_exponent`` (0 where the field does not exist: code before issue 12)."""
    return getattr(res, "gram_exponent", 0)


def true_gram(res):
    """The reported Gram matrix on the gradients' own scale (float64 may not hold it)."""
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(res.gram, -2 * exponent_of(res))


def check_same_answer(name, r1, rt, k, K, float_tiny):
    """r_t (gradients 2**k J) against r_1 (gradients J): weights bit for bit, the other
    outputs scaled or equal, the direction up to products rounded below normal."""
    p = WEIGHT_POWER[name]
    np.testing.assert_array_equal(np.ldexp(rt.weights, -p * k), r1.weights)
    assert (rt.iterations, rt.converged) == (r1.iterations, r1.converged)
    assert rt.kkt_residual == r1.kkt_residual or np.isnan(r1.kkt_residual)
    if np.isfinite(r1.objective):
        shift = 2 * (k + exponent_of(rt) - exponent_of(r1))
        assert_scaled(rt.objective, r1.objective, shift, atol=4 * K * 2.0**-1074)
    if r1.direction is not None:
        d = 0 if name == "gradient-normalization" else k
        assert_same_direction(rt, r1, d, K, float_tiny)


def assert_same_direction(rt, r1, d, K, float_tiny):
    """rt.direction == 2**d r1.direction, up to the rounding of products below the
    normal range: a weight (divided, for float32, by the power of two that brings the
    largest to at most 1) times a gradient entry is rounded to the subnormal grid,
    an error of float_tiny / 2 per product, times the largest weight once scaled back."""
    big = max(1.0, float(np.abs(rt.weights).max()))
    big += 2.0**d * max(1.0, float(np.abs(r1.weights).max()))
    assert_scaled(rt.direction, r1.direction, d, atol=2 * K * float_tiny * big)


@pytest.mark.parametrize("name", sorted(METHODS))
@given(pair=scaled_pairs(np.float64))
def test_float64_grads_same_weights_at_every_scale(name, pair):
    B, J, k = pair
    f = METHODS[name]
    r1, rt = f(B), f(J)
    event("J J^T out of float64's range: rescaled" if exponent_of(rt) else "in range")
    check_same_answer(name, r1, rt, k, B.shape[0], 2.0**-1074)
    # The Gram matrix, on whatever scale float64 holds it, is the scaled one exactly.
    shift = 2 * (k + exponent_of(rt) - exponent_of(r1))
    assert_scaled(rt.gram, r1.gram, shift, atol=8 * B.shape[1] * 2.0**-1074)


@pytest.mark.parametrize("name", sorted(METHODS))
@given(pair=scaled_pairs(np.float32))
def test_float32_grads_scale_only_through_gram_rounding(name, pair):
    B, J, k = pair
    K, M = B.shape
    f = METHODS[name]
    r1, rt = f(B), f(J)
    # 1. Both Gram matrices are the exact one (of the float32 numbers) to float32
    #    rounding: |error_ij| <= gamma_M sum_k |B_ik B_jk| (Higham's bound for a sum of
    #    M products, u = 2**-24), plus M 2**-50 of the largest squared norm, what
    #    products rounded to float32's subnormal grid can add on the native route.
    B64 = B.astype(np.float64)
    exact = B64 @ B64.T
    u = 2.0**-24
    bound = 2 * M * u / (1 - M * u) * (np.abs(B64) @ np.abs(B64).T) + M * 2.0**-50 * exact.max()
    G1 = true_gram(r1)
    Gt = np.ldexp(true_gram(rt), -2 * k)
    assert np.all(np.abs(G1 - exact) <= bound)
    assert np.all(np.abs(Gt - exact) <= bound)
    # 2. The weights at scale 2**k are the method's weights on that Gram matrix, scaled
    #    back: bit for bit (the Gram route takes any common scale of G exactly).
    p = WEIGHT_POWER[name]
    np.testing.assert_array_equal(np.ldexp(f(gram=Gt).weights, p * k), rt.weights)
    # 3. Where the Gram matrices agree bit for bit, so does everything else.
    event("Gram matrices equal" if np.array_equal(G1, Gt) else "differ by float32 rounding")
    if np.array_equal(G1, Gt):
        check_same_answer(name, r1, rt, k, K, 2.0**-149)


@st.composite
def scaled_grams(draw):
    """(G, k): a Gram matrix (of float64 or of float32 gradients) and k with every
    nonzero entry of 4**k G in float64's normal range and below 2**1000."""
    J = draw(grads_matrices(max_tasks=6, max_dim=8))
    if draw(st.booleans()):
        J = J.astype(np.float32)
    G = solvers.gram(J)
    nonzero = np.abs(G[G != 0])
    if nonzero.size == 0:
        return G, draw(st.integers(-50, 50))
    lo = (-1022 - int(np.frexp(nonzero.min())[1])) // 2 + 1
    hi = (1000 - int(np.frexp(nonzero.max())[1])) // 2
    return G, draw(st.one_of(st.integers(max(lo, -50), min(hi, 50)), st.integers(lo, hi)))


@pytest.mark.parametrize("name", sorted(METHODS))
@given(case=scaled_grams())
def test_gram_input_same_weights_at_every_scale(name, case):
    G, k = case
    f = METHODS[name]
    r1, rt = f(gram=G), f(gram=np.ldexp(G, 2 * k))
    np.testing.assert_array_equal(np.ldexp(rt.weights, -WEIGHT_POWER[name] * k), r1.weights)
    assert exponent_of(rt) == exponent_of(r1) == 0
    assert (rt.iterations, rt.converged, rt.kkt_residual) == (
        r1.iterations,
        r1.converged,
        r1.kkt_residual,
    ) or np.isnan(r1.kkt_residual)


STATEFUL = {
    "gradvac": lambda K, seed: solvers.GradVac(K, beta=0.3, seed=seed),
    "gradvac/when-below": lambda K, seed: solvers.GradVac(
        K, beta=0.5, seed=seed, target_update="when-below", reduction="mean"
    ),
    "momentum-pcgrad": lambda K, seed: solvers.MomentumPCGrad(K, seed=seed),
    "momentum-pcgrad/threshold": lambda K, seed: solvers.MomentumPCGrad(
        K, beta1=0.5, beta2=0.9, threshold=0.5, seed=seed
    ),
}


@st.composite
def scaled_sequences(draw):
    """(steps, k, dtype, as_gram): 1 to 4 gradient matrices with the same K and M."""
    K = draw(st.integers(1, 5))
    M = draw(st.integers(1, 6))
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        J = draw(grads_matrices(min_tasks=K, max_tasks=K, max_dim=M))
        steps.append(_clip_range(np.pad(J, ((0, 0), (0, M - J.shape[1]))), 40))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    return [s.astype(dtype) for s in steps], draw(st.integers(-100, 100)), draw(st.booleans())


@pytest.mark.parametrize("name", sorted(STATEFUL))
@given(case=scaled_sequences(), seed=st.integers(0, 2**16))
def test_stateful_same_weights_for_a_scaled_sequence(name, case, seed):
    steps, k, as_gram = case
    K = steps[0].shape[0]
    plain, scaled = STATEFUL[name](K, seed), STATEFUL[name](K, seed)
    grams_agree = True
    for B in steps:
        J = np.ldexp(B, k).astype(B.dtype)
        B = np.ldexp(J, -k).astype(B.dtype)  # the exact unscaled twin (see scaled_pairs)
        if as_gram:
            G = solvers.gram(B)
            r1, rt = plain(gram=G), scaled(gram=np.ldexp(G, 2 * k))
        else:
            r1, rt = plain(B), scaled(J)
        grams_agree &= np.array_equal(np.ldexp(true_gram(rt), -2 * k), true_gram(r1))
        if B.dtype == np.float64 or as_gram:
            assert grams_agree
        if grams_agree:  # float32 Gram matrices differing by rounding: see module doc
            np.testing.assert_array_equal(rt.weights, r1.weights)
            if not as_gram:
                tiny = 2.0**-1074 if B.dtype == np.float64 else 2.0**-149
                assert_same_direction(rt, r1, k, K, tiny)


def test_beyond_float64_gram_range_rescaled_not_refused():
    # (1e200)**2 overflows and (1e-200)**2 underflows float64: the weights must not care.
    J = np.array([[1.0, 0.0, 0.0], [-0.5, 1.0, 0.0], [0.2, 0.3, 1.0]])
    for name, f in METHODS.items():
        ref = f(J)
        for c in (1e200, 1e-200, 2.0**1000, 2.0**-1000):
            res = f(J * c)
            p = WEIGHT_POWER[name]
            np.testing.assert_allclose(res.weights * c**-p, ref.weights, rtol=1e-12, atol=1e-300)
            assert np.isfinite(res.direction).all()
            assert res.gram_exponent != 0  # the Gram matrix of J * c is not representable
    np.testing.assert_allclose(
        solvers.mgda(J * 1e200).direction / 1e200, solvers.mgda(J).direction, rtol=1e-14
    )


def test_reported_gram_is_the_true_one_when_float64_holds_it():
    J = np.array([[3.0, 4.0], [1.0, 0.0]], dtype=np.float32) * np.float32(1e-30)
    res = solvers.mgda(J)
    assert res.gram_exponent == 0
    np.testing.assert_allclose(res.gram, J.astype(np.float64) @ J.astype(np.float64).T, rtol=1e-6)
    res = solvers.mgda(np.array([[1e-160, 0.0], [0.0, 2e-160]]))
    assert res.gram_exponent > 0  # (1e-160)**2 is below float64's normal range
    np.testing.assert_allclose(
        np.sqrt(np.diagonal(res.gram)),
        [1e-160 * 2.0**res.gram_exponent, 2e-160 * 2.0**res.gram_exponent],
    )
    np.testing.assert_allclose(res.weights, [0.8, 0.2])


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("ratio", [0.42, 2.0**-40])
def test_rows_just_below_the_rescaling_bound_are_not_lost(name, ratio):
    # The largest squared norm just above 2**-900, a row's below it: the row is short
    # only next to the bound, not next to the largest gradient (found with EPO).
    B = np.array([[ratio, 0.3], [0.82161814, -0.5]])
    for k in range(-452, -446):
        check_same_answer(name, METHODS[name](B), METHODS[name](np.ldexp(B, k)), k, 2, 2.0**-1074)


@pytest.mark.parametrize("name", sorted(STATEFUL))
@given(
    steps=st.lists(
        grads_matrices(min_tasks=3, max_tasks=3, max_dim=4).map(
            lambda J: _clip_range(np.pad(J, ((0, 0), (0, 4 - J.shape[1]))), 40)
        ),
        min_size=1,
        max_size=3,
    ),
    k=st.one_of(st.integers(-960, -500), st.integers(500, 960)),
    seed=st.integers(0, 2**16),
)
def test_stateful_float64_beyond_the_gram_range(name, steps, k, seed):
    """float64 gradients whose Gram matrix under- or overflows (|c| ~ 1e+-150..1e+-289):
    the stateful methods rescale too, and their weights do not move."""
    plain, scaled = STATEFUL[name](3, seed), STATEFUL[name](3, seed)
    for B in steps:
        J = np.ldexp(B, k)
        if not np.array_equal(np.ldexp(J, -k), B):
            continue  # 2**k * B not exact (entries left the normal range)
        np.testing.assert_array_equal(scaled(J).weights, plain(B).weights)
