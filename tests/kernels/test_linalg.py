"""The small dense kernels against numpy's LAPACK-backed routines."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl._kernels.linalg import (
    chol_append,
    chol_delete,
    chol_factor,
    chol_solve,
    matvec,
)


def spd(n, seed, extra=3):
    A = np.random.default_rng(seed).standard_normal((n, n + extra))
    return A @ A.T + np.ones((n, n))


@given(st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_chol_factor_matches_numpy_and_rejects_indefinite(n, seed):
    M = spd(n, seed)
    ok, R = chol_factor(M)
    assert ok
    np.testing.assert_allclose(R, np.linalg.cholesky(M).T, rtol=0, atol=1e-10 * np.abs(M).max())
    assert np.all(np.tril(R, -1) == 0)
    bad = M.copy()
    bad[-1, -1] = -1.0
    assert not chol_factor(bad)[0]


@pytest.mark.parametrize("n", [64, 128])
def test_chol_factor_large(n):
    M = spd(n, n)
    ok, R = chol_factor(M)
    assert ok
    np.testing.assert_allclose(R.T @ R, M, rtol=0, atol=1e-10 * np.abs(M).max())


@given(st.integers(2, 20), st.integers(0, 2**31 - 1), st.data())
def test_append_delete_and_solve_agree_with_a_fresh_factor(n, seed, data):
    M = spd(n, seed)
    R = np.zeros((n, n))
    for k in range(n):  # grow the factor one column at a time
        col = M[:k, k].copy()
        piv2 = chol_append(R, k, col, M[k, k])
        assert piv2 > 0
        R[k, k] = np.sqrt(piv2)
    np.testing.assert_allclose(R.T @ R, M, rtol=0, atol=1e-10 * np.abs(M).max())
    p = data.draw(st.integers(0, n - 1))
    chol_delete(R, n, p)
    keep = [i for i in range(n) if i != p]
    Mk = M[np.ix_(keep, keep)]
    Rk = R[: n - 1, : n - 1]
    np.testing.assert_allclose(Rk.T @ Rk, Mk, rtol=0, atol=1e-10 * np.abs(M).max())
    assert np.all(R[n - 1] == 0) and np.all(R[:, n - 1] == 0)
    b = np.random.default_rng(seed).standard_normal(n - 1)
    out = np.empty(n - 1)
    chol_solve(R, n - 1, b, out)
    np.testing.assert_allclose(
        Mk @ out, b, rtol=0, atol=1e-8 * np.abs(b).max() * np.linalg.cond(Mk)
    )


def test_matvec():
    M = spd(7, 0)
    x = np.arange(7.0)
    out = np.empty(7)
    matvec(M, x, out)
    np.testing.assert_allclose(out, M @ x, rtol=1e-14)
