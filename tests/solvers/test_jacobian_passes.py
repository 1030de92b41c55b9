"""The blocked passes over a large K x M Jacobian (paretomtl._kernels.jacobian).

References are independent of the kernels: float64 products of the (float32) entries,
which are exact, summed by BLAS in float64 or by math.fsum (exact, then rounded once);
the error bound is Higham's for a sum of n products, gamma_n = n u / (1 - n u), with
n = WIDTH + 1 (a product and at most WIDTH float32 additions before float64 takes over).
Every public behaviour of the Gram pass (rescaling by powers of two, lost rows, NaN
naming, the consistency probes, float16/32/64) is checked again on inputs wide enough
to take the kernel route.
"""

import itertools
import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers
from paretomtl._kernels import jacobian
from paretomtl.solvers import _input

WIDE = _input._KERNEL_MIN_COLUMNS  # the narrowest J that takes the kernels
U32 = 2.0**-24


def exact_gram(J):
    J64 = np.asarray(J, dtype=np.float64)
    return J64 @ J64.T  # float32 products are exact in float64; sums to ~1e-16


def abs_gram(J):
    A = np.abs(np.asarray(J, dtype=np.float64))
    return A @ A.T


def gamma(n, u):
    return n * u / (1 - n * u)


def fsum_dot(x, y):
    return math.fsum((np.asarray(x, np.float64) * np.asarray(y, np.float64)).tolist())


@pytest.fixture
def one_thread(monkeypatch):
    monkeypatch.setattr(jacobian, "threads", lambda: 1)


# --------------------------------------------------------------------------- routes


def test_route_by_size_dtype_layout_and_rows():
    J = np.ones((3, WIDE), dtype=np.float32)
    assert _input._use_kernel(J)
    assert _input._use_kernel(J.astype(np.float64))
    assert not _input._use_kernel(J[:, : WIDE - 1])  # too narrow: BLAS
    assert not _input._use_kernel(J.astype(np.float16))
    assert not _input._use_kernel(np.asfortranarray(J))
    assert not _input._use_kernel(np.ones((3, 2 * WIDE), np.float32)[:, ::2])
    assert not _input._use_kernel(np.ones((_input._KERNEL_MAX_ROWS + 1, WIDE), np.float32))


@pytest.mark.parametrize("K", [1, 10, 300])
@pytest.mark.parametrize("M", [1, 511, 512, 513, WIDE, 3 * WIDE + 7, 10**6 + 1])
def test_column_ranges_tile_the_columns_in_whole_blocks(K, M):
    ranges = jacobian.column_ranges(K, M, 4)
    assert 1 <= len(ranges) <= jacobian.PARTS
    assert ranges[0][0] == 0 and ranges[-1][1] == M
    for (a, b), (c, _) in itertools.pairwise(ranges):
        assert b == c and b % jacobian.WIDTH == 0 and b > a
    if K * M * 4 < 2 * jacobian._PART_BYTES:
        assert len(ranges) == 1
    if K * M * 4 >= jacobian.PARTS * jacobian._PART_BYTES and M >= jacobian.PARTS * 512:
        assert len(ranges) == jacobian.PARTS


# --------------------------------------------------------------------------- Gram


@pytest.mark.parametrize("K", [1, 2, 3, 4, 5, 8, 13, 32])
def test_float32_gram_within_a_block_sum_of_float32_rounding(K):
    rng = np.random.default_rng(K)
    M = WIDE + 1234  # a ragged last block
    J = (0.3 + rng.standard_normal((K, M))).astype(np.float32)
    G = jacobian.gram(J)
    assert G.dtype == np.float64 and G.shape == (K, K)
    np.testing.assert_array_equal(G, G.T)
    bound = gamma(jacobian.WIDTH + 1, U32) * abs_gram(J)
    assert np.all(np.abs(G - exact_gram(J)) <= bound)


def test_float32_gram_is_more_accurate_than_blas_float32():
    """Today's route (BLAS float32, sums over all M columns) against the kernel's, on
    same-sign data where long float32 sums lose most; the reference is math.fsum."""
    rng = np.random.default_rng(7)
    K, M = 3, 400_000
    J = (1.0 + 0.5 * rng.standard_normal((K, M))).astype(np.float32)
    ref = np.array([[fsum_dot(J[i], J[j]) for j in range(K)] for i in range(K)])
    err_kernel = np.abs(jacobian.gram(J) - ref).max() / ref.max()
    err_blas = np.abs((J @ J.T).astype(np.float64) - ref).max() / ref.max()
    assert err_kernel <= err_blas
    assert err_kernel <= 1e-7  # BLAS float32 is at ~1e-6 here


def test_float64_gram_matches_fsum():
    rng = np.random.default_rng(3)
    J = rng.standard_normal((5, 3 * WIDE + 5))
    ref = np.array([[fsum_dot(J[i], J[j]) for j in range(5)] for i in range(5)])
    np.testing.assert_allclose(jacobian.gram(J), ref, rtol=1e-13, atol=1e-13 * ref.max())


@given(
    K=st.integers(1, 12),
    extra=st.integers(0, 3000),
    seed=st.integers(0, 2**32 - 1),
    spread=st.floats(0.0, 12.0),
    shift=st.floats(-2.0, 2.0),
)
def test_float32_gram_bound_holds_for_any_row_scales(K, extra, seed, spread, shift):
    """Row norms over up to 12 decades (inside float32's safe range), any mean."""
    rng = np.random.default_rng(seed)
    J = shift + rng.standard_normal((K, WIDE + extra))
    J *= 10.0 ** rng.uniform(-spread / 2, spread / 2, size=(K, 1))
    J = J.astype(np.float32)
    G = jacobian.gram(J)
    bound = gamma(jacobian.WIDTH + 1, U32) * abs_gram(J) + 1e-300
    assert np.all(np.abs(G - exact_gram(J)) <= bound)


def test_result_does_not_depend_on_the_thread_count(monkeypatch):
    rng = np.random.default_rng(11)
    J = rng.standard_normal((10, 8 * WIDE + 77)).astype(np.float32)
    w = rng.random(10)
    assert len(jacobian.column_ranges(*J.shape, J.itemsize)) == jacobian.PARTS
    G, d = jacobian.gram(J), jacobian.combine(w, J)
    np.testing.assert_array_equal(jacobian.gram(J), G)  # repeatable
    monkeypatch.setattr(jacobian, "threads", lambda: 1)
    np.testing.assert_array_equal(jacobian.gram(J), G)
    np.testing.assert_array_equal(jacobian.combine(w, J), d)


def test_gram_scales_exactly_by_powers_of_two():
    """Float32 products and sums of 2**k J are those of J times 4**k exactly (no
    over- or underflow here), so the Gram matrix scales bit for bit."""
    rng = np.random.default_rng(5)
    J = rng.standard_normal((6, WIDE + 100)).astype(np.float32)
    G = jacobian.gram(J)
    for k in (-40, -7, 9, 40):
        np.testing.assert_array_equal(jacobian.gram(np.ldexp(J, k)), np.ldexp(G, 2 * k))


def test_non_finite_entries_reach_the_diagonal():
    J = np.ones((4, WIDE + 3), dtype=np.float32)
    J[2, WIDE + 1] = np.nan
    J[3, 5] = np.inf
    d = np.diagonal(jacobian.gram(J))
    assert np.isfinite(d[:2]).all() and not np.isfinite(d[2]) and not np.isfinite(d[3])


# --------------------------------------------------------------------------- combine


@pytest.mark.parametrize("K", [1, 3, 4, 7, 8, 9, 17, 32])
def test_float32_combine_is_the_float64_sum_rounded_once(K):
    rng = np.random.default_rng(100 + K)
    M = WIDE + 999
    J = rng.standard_normal((K, M)).astype(np.float32)
    w = rng.standard_normal(K) * 10.0 ** rng.uniform(-3, 3, K)
    d = jacobian.combine(w, J)
    assert d.dtype == np.float32 and d.shape == (M,)
    ref = w @ J.astype(np.float64)  # float64 rounding, far below float32's
    slack = 4 * K * 2.0**-53 * (np.abs(w) @ np.abs(J.astype(np.float64)))
    # Rounded once to float32: within half an ulp of the float64 sum (plus its rounding).
    half_ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64) / 2
    assert np.all(np.abs(d.astype(np.float64) - ref) <= half_ulp + slack)


def test_float32_combine_beats_float32_weights_on_tiny_gradients():
    """Weights of 2**140 on gradients of 2**-140 (beyond float32's range both ways):
    float64 sums give the exact answer; subnormal inputs keep their value."""
    M = WIDE + 1
    J = np.zeros((2, M), dtype=np.float32)
    J[0] = 3 * 2.0**-140  # a float32 subnormal, exact
    J[1, ::2] = 1.0
    d = jacobian.combine(np.array([2.0**140, 0.5]), J)
    expected = np.full(M, 3.0, dtype=np.float32)
    expected[::2] += 0.5
    np.testing.assert_array_equal(d, expected)
    # and overflow of float32 is inf, as a float32 direction must be
    assert np.isinf(jacobian.combine(np.array([2.0**300, 0.0]), J)).all()  # 3 * 2**160


def test_float64_combine_matches_fsum():
    rng = np.random.default_rng(9)
    J = rng.standard_normal((6, WIDE + 17))
    w = rng.random(6)
    d = jacobian.combine(w, J)
    idx = rng.integers(0, J.shape[1], 50)
    ref = np.array([math.fsum((w * J[:, c]).tolist()) for c in idx])
    np.testing.assert_allclose(d[idx], ref, rtol=1e-14, atol=1e-15)


# --------------------------------------------------------------------------- public behaviour


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_solvers_on_wide_grads_agree_with_the_exact_gram(dtype):
    rng = np.random.default_rng(21)
    K, M = 5, 2 * WIDE + 3
    J = rng.standard_normal((K, M)).astype(dtype)
    J[1] *= -0.5
    ref = exact_gram(J)
    G = solvers.gram(J)
    np.testing.assert_allclose(G, ref, rtol=0, atol=gamma(jacobian.WIDTH + 1, U32) * ref.max())
    res = solvers.mgda(J)
    ref_w = solvers.mgda(gram=ref).weights
    np.testing.assert_allclose(res.weights, ref_w, atol=1e-5)
    assert res.direction.dtype == dtype
    J64 = J.astype(np.float64)
    d_ref = res.weights @ J64
    scale = np.abs(res.weights) @ np.abs(J64)  # the rounding scale of each entry
    u = U32 if dtype == np.float32 else 2.0**-53
    assert np.all(np.abs(res.direction - d_ref) <= u * np.abs(d_ref) + 8 * 2.0**-53 * scale)
    p = _input.prepare_scaled(J, None)
    assert p.exponent == 0 and p.lost == ()
    # the BLAS route (a non-contiguous view of the same numbers) gives the same weights
    Jf = np.asfortranarray(J)
    np.testing.assert_allclose(solvers.mgda(Jf).weights, res.weights, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_wide_grads_name_the_task(dtype):
    J = np.ones((3, WIDE + 1), dtype=dtype)
    J[1, WIDE] = np.nan
    with pytest.raises(ValueError, match=r"grads\[1\] \(task 1\)"):
        solvers.gram(J)
    with pytest.raises(ValueError, match=r"task 1"):
        solvers.mgda(J)


def test_wide_float32_overflow_and_underflow_fall_back_to_float64():
    M = WIDE + 9
    J = np.zeros((3, M), dtype=np.float32)
    J[0] = 1e30  # float32 squares overflow
    J[1] = 1e-30  # and underflow
    J[2, ::3] = 1.0
    G = solvers.gram(J)
    ref = exact_gram(J)
    np.testing.assert_allclose(G, ref, rtol=1e-6)
    assert G[1, 1] > 0
    res = solvers.mgda(J)
    assert np.isfinite(res.weights).all() and np.isfinite(res.direction).all()
    assert res.weights[1] > 0.99  # the tiny gradient is (nearly) the min-norm point


def test_wide_float64_rescaling_and_lost_rows():
    M = WIDE + 5
    rng = np.random.default_rng(4)
    B = rng.standard_normal((3, M))
    # norms near 1e200: the Gram matrix overflows and is formed from 2**e grads
    big = B * 1e200
    p = _input.prepare_scaled(big, None)
    assert p.exponent < 0 and p.lost == ()
    np.testing.assert_allclose(p.gram, exact_gram(np.ldexp(big, p.exponent)), rtol=1e-12)
    with pytest.raises(ValueError, match="overflow"):
        solvers.gram(big)
    np.testing.assert_allclose(solvers.mgda(big).weights, solvers.mgda(B).weights, atol=1e-12)
    # a row 1e-300 of the largest is lost; mgda still works, pcgrad refuses
    lost = B.copy()
    lost[2] *= 1e-300
    assert _input.prepare_scaled(lost, None).lost == (2,)
    assert np.isfinite(solvers.mgda(lost).weights).all()
    with pytest.raises(ValueError, match=r"grads\[2\] \(task 2\) is nonzero but too short"):
        solvers.pcgrad(lost, seed=0)


def test_wide_float16_is_accumulated_in_float64():
    rng = np.random.default_rng(6)
    J = rng.standard_normal((4, WIDE + 2)).astype(np.float16)
    np.testing.assert_allclose(solvers.gram(J), exact_gram(J), rtol=1e-13)
    d = solvers.mgda(J).direction
    assert d.dtype == np.float32


def test_consistency_probes_on_wide_grads():
    rng = np.random.default_rng(8)
    J = rng.standard_normal((4, WIDE + 11)).astype(np.float32)
    G = solvers.gram(J)
    res = solvers.mgda(J, gram=G)
    np.testing.assert_allclose(res.weights, solvers.mgda(J).weights, atol=1e-12)
    bad = G.copy()
    bad[0, 1] = bad[1, 0] = G[0, 1] + 0.05 * math.sqrt(G[0, 0] * G[1, 1])
    with pytest.raises(ValueError, match="gram does not match grads"):
        solvers.mgda(J, gram=bad)


def test_wide_scaled_float32_grads_give_bit_identical_weights():
    rng = np.random.default_rng(12)
    J = rng.standard_normal((5, WIDE + 40)).astype(np.float32)
    r1 = solvers.mgda(J)
    for k in (-30, 30):
        rk = solvers.mgda(np.ldexp(J, k))
        np.testing.assert_array_equal(rk.weights, r1.weights)
        np.testing.assert_array_equal(rk.direction, np.ldexp(r1.direction, k))


# --------------------------------------------------------------------------- threads


def test_every_range_runs_once_and_errors_reach_the_caller(monkeypatch):
    monkeypatch.setattr(jacobian, "threads", lambda: 2)
    ranges = [(i, i + 1) for i in range(jacobian.PARTS)]
    seen = []
    jacobian._run(lambda p, a, b: seen.append((p, a, b)), ranges)
    assert sorted(seen) == [(p, p, p + 1) for p in range(jacobian.PARTS)]

    def fail(p, a, b):
        if p == 3:
            raise RuntimeError("range 3 failed")

    with pytest.raises(RuntimeError, match="range 3 failed"):
        jacobian._run(fail, ranges)


def test_concurrent_callers_get_the_same_answer():
    rng = np.random.default_rng(13)
    J = rng.standard_normal((6, 4 * WIDE)).astype(np.float32)
    G = jacobian.gram(J)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: jacobian.gram(J), range(8)))
    for R in results:
        np.testing.assert_array_equal(R, G)


def _child_gram(q, J):
    q.put(jacobian.gram(J))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads, 3.12+
def test_a_forked_child_builds_its_own_pool():
    import multiprocessing

    rng = np.random.default_rng(14)
    J = rng.standard_normal((3, 8 * WIDE)).astype(np.float32)
    G = jacobian.gram(J)  # the parent's pool exists before the fork
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    child = ctx.Process(target=_child_gram, args=(q, J))
    child.start()
    R = q.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(R, G)


def test_one_compiled_signature_per_dtype(tmp_path):
    """Writeable, read-only and memory-mapped J of one dtype share one compilation."""
    rng = np.random.default_rng(15)
    for dtype in (np.float32, np.float64):
        J = rng.standard_normal((3, WIDE)).astype(dtype)
        R = J.copy()
        R.flags.writeable = False
        mm = np.memmap(tmp_path / f"J{np.dtype(dtype).name}", dtype=dtype, mode="w+", shape=J.shape)
        mm[:] = J
        results = [solvers.mgda(X) for X in (J, R, mm)]
        for r in results[1:]:
            np.testing.assert_array_equal(r.weights, results[0].weights)
            np.testing.assert_array_equal(r.direction, results[0].direction)
    for kernel in (jacobian.gram_columns, jacobian.combine_columns):
        dtypes = [
            sig[1].dtype if kernel is jacobian.combine_columns else sig[0].dtype
            for sig in kernel.signatures
        ]
        assert len(dtypes) == len(set(dtypes)) <= 2
