"""GradDrop against the paper's formula, TorchJD's GradDrop and its own claims."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretomtl import solvers
from paretomtl.solvers import graddrop
from tests.strategies import grads_matrices


def paper_formula(J, U, leak=0.0, f=lambda P: P):
    """Algorithm 1 of Chen et al. (NeurIPS 2020) written out task by task."""
    K, M = J.shape
    leak = np.broadcast_to(np.asarray(leak, dtype=float), (K,))
    d = np.zeros(M)
    for m in range(M):
        total, absolute = J[:, m].sum(), np.abs(J[:, m]).sum()
        if absolute == 0:
            continue  # every gradient is 0 here
        fP = f(np.array([0.5 * (1 + total / absolute)]))[0]
        for i in range(K):
            g = J[i, m]
            mask = float((fP > U[m] and g > 0) or (fP < U[m] and g < 0))
            d[m] += (leak[i] + (1 - leak[i]) * mask) * g
    return d


def smoothstep(P):  # increasing, maps [0, 1] onto itself, odd around (1/2, 1/2)
    return 3 * P**2 - 2 * P**3


def column_scale(J):
    return np.abs(J).sum(axis=0) + np.finfo(float).tiny


@given(J=grads_matrices(max_tasks=8, max_dim=12), seed=st.integers(0, 2**32 - 1))
def test_equals_the_paper_formula_for_the_same_draws(J, seed):
    K, M = J.shape
    rng = np.random.default_rng(seed)
    U = rng.random(M)
    leak = rng.choice([0.0, 0.3, 1.0], size=K)
    for kwargs in ({}, {"leak": leak}, {"f": smoothstep}):
        d = graddrop(J, uniform=U, **kwargs).direction
        expected = paper_formula(J, U, **kwargs)
        assert np.all(np.abs(d - expected) <= 1e-13 * column_scale(J))


def test_seeded_draws_are_numpy_uniforms_and_reproducible():
    J = np.random.default_rng(0).standard_normal((5, 40))
    res = graddrop(J, seed=7)
    np.testing.assert_array_equal(
        res.direction, graddrop(J, uniform=np.random.default_rng(7).random(40)).direction
    )
    assert res.direction.tobytes() == graddrop(J, seed=7).direction.tobytes()
    # The object form holds one generator: every call draws afresh, reproducibly.
    method = solvers.method("graddrop", seed=7)
    first, second = method(J).direction, method(J).direction
    assert not np.array_equal(first, second)
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(first, graddrop(J, seed=rng).direction)
    np.testing.assert_array_equal(second, graddrop(J, seed=rng).direction)


@pytest.mark.parametrize("seed", range(4))
def test_matches_torchjd_graddrop_with_its_own_draws(seed):
    torch = pytest.importorskip("torch")
    torchjd = pytest.importorskip("torchjd")
    rng = np.random.default_rng(seed)
    cases = [
        rng.standard_normal((4, 300)),
        np.vstack([rng.standard_normal((1, 200)) * 10.0**k for k in range(-6, 7, 3)]),
        np.vstack([np.zeros(50), rng.standard_normal(50), -rng.standard_normal(50)]),
        rng.standard_normal((32, 64)),
    ]
    for J in cases:
        K, M = J.shape
        leak = rng.uniform(0, 1, size=K)
        for kwargs in ({}, {"leak": leak}, {"f": smoothstep}):
            theirs_kwargs = {
                k: torch.from_numpy(v) if k == "leak" else v for k, v in kwargs.items()
            }
            aggregator = torchjd.aggregation.GradDrop(**theirs_kwargs)
            torch.manual_seed(seed)
            theirs = aggregator(torch.from_numpy(J)).numpy()
            torch.manual_seed(seed)  # the one torch.rand call TorchJD makes
            U = torch.rand(M, dtype=torch.float64).numpy()
            ours = graddrop(J, uniform=U, **kwargs).direction
            rel = np.abs(ours - theirs) / column_scale(J)
            assert rel.max() <= 1e-12, rel.max()


def test_without_leak_each_coordinate_keeps_one_sign():
    rng = np.random.default_rng(3)
    J = rng.standard_normal((6, 500))
    res = graddrop(J, seed=1)
    positive, negative = np.clip(J, 0, None).sum(0), np.clip(J, None, 0).sum(0)
    kept_positive = np.isclose(res.direction, positive, rtol=1e-14, atol=0)
    kept_negative = np.isclose(res.direction, negative, rtol=1e-14, atol=0)
    assert (kept_positive | kept_negative).all()
    assert res.extras["positive_kept"] == kept_positive.sum()
    assert res.extras["negative_kept"] == kept_negative.sum()
    assert res.weights is None


def test_the_positive_sign_is_kept_with_probability_the_purity():
    # One coordinate repeated: purity P = 3 / (3 + 1) = 0.75 everywhere.
    M = 40_000
    J = np.tile(np.array([[2.0], [1.0], [-1.0]]), (1, M))
    res = graddrop(J, seed=0)
    share = res.extras["positive_kept"] / M
    assert abs(share - 0.75) < 4 * np.sqrt(0.75 * 0.25 / M)
    assert res.extras["positive_kept"] + res.extras["negative_kept"] == M
    # With f: P -> f(P) is that probability.
    res = graddrop(J, seed=0, f=smoothstep)
    share = res.extras["positive_kept"] / M
    assert abs(share - smoothstep(0.75)) < 4 * np.sqrt(0.84375 * 0.15625 / M)


def test_unanimous_coordinates_single_task_and_full_leak_drop_nothing():
    rng = np.random.default_rng(4)
    J = np.abs(rng.standard_normal((4, 30)))
    J[:, ::2] *= -1  # every column has one sign across the tasks
    np.testing.assert_allclose(graddrop(J, seed=2).direction, J.sum(0), rtol=1e-15)
    g = rng.standard_normal((1, 30))  # K = 1: P is 0 or 1, the gradient passes
    np.testing.assert_array_equal(graddrop(g, seed=2).direction, g[0])
    J = rng.standard_normal((4, 30))  # leak 1: GradDrop is the sum
    np.testing.assert_allclose(graddrop(J, seed=2, leak=1.0).direction, J.sum(0), atol=1e-14)
    zeros = np.zeros((3, 5))
    assert not graddrop(zeros, seed=2).direction.any()


def test_scalar_leak_broadcasts_and_tasks_can_be_permuted():
    rng = np.random.default_rng(5)
    J = rng.standard_normal((5, 60))
    U = rng.random(60)
    np.testing.assert_array_equal(
        graddrop(J, uniform=U, leak=0.25).direction,
        graddrop(J, uniform=U, leak=[0.25] * 5).direction,
    )
    leak = rng.uniform(0, 1, 5)
    perm = rng.permutation(5)
    np.testing.assert_allclose(
        graddrop(J[perm], uniform=U, leak=leak[perm]).direction,
        graddrop(J, uniform=U, leak=leak).direction,
        rtol=1e-13,
        atol=1e-14,
    )


@pytest.mark.parametrize("exponent", [600, -600, 1000, -1000])
def test_direction_scales_with_the_gradients_at_any_scale(exponent):
    rng = np.random.default_rng(6)
    J = rng.standard_normal((8, 50))
    leak = rng.uniform(0, 1, 8)
    base = graddrop(J, seed=3, leak=leak).direction
    scaled = graddrop(np.ldexp(J, exponent), seed=3, leak=leak)
    np.testing.assert_array_equal(scaled.direction, np.ldexp(base, exponent))
    assert np.isfinite(scaled.gram).all()


def test_entries_near_the_float64_maximum_do_not_overflow():
    J = np.full((8, 4), 1.5e308)
    J[:, 1] *= -1
    res = graddrop(J, seed=0, leak=0.5)
    # 8 * 1.5e308 overflows: the exact answer is, and so is the direction.
    assert np.isinf(res.direction).all()
    J = np.full((8, 4), 1e307)
    np.testing.assert_allclose(graddrop(J, seed=0).direction, 8e307, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_low_precision_gradients(dtype):
    rng = np.random.default_rng(7)
    J = rng.standard_normal((4, 100)).astype(dtype)
    U = rng.random(100)
    res = graddrop(J, uniform=U)
    assert res.direction.dtype == np.float32
    expected = paper_formula(J.astype(np.float64), U)
    np.testing.assert_allclose(res.direction, expected, rtol=1e-6, atol=1e-6)


def test_gram_is_reported_and_checked():
    J = np.random.default_rng(8).standard_normal((3, 20))
    res = graddrop(J, gram=J @ J.T, seed=0)
    np.testing.assert_allclose(res.gram, J @ J.T, rtol=1e-12)
    with pytest.raises(ValueError, match="gram does not match grads"):
        graddrop(J, gram=np.eye(3), seed=0)


def test_bad_arguments_are_refused_by_name():
    J = np.random.default_rng(9).standard_normal((3, 4))
    with pytest.raises(ValueError, match=r"graddrop needs grads \(K x M\): its sign masks"):
        graddrop(gram=J @ J.T)
    with pytest.raises(ValueError, match=r"leak\[1\] \(task 1\) is 1.5"):
        graddrop(J, leak=[0.0, 1.5, 0.0])
    with pytest.raises(ValueError, match="leak"):
        graddrop(J, leak=-0.1)
    with pytest.raises(ValueError, match=r"leak must have shape \(3,\)"):
        graddrop(J, leak=[0.1, 0.2])
    with pytest.raises(TypeError, match="leak"):
        graddrop(J, leak="none")
    with pytest.raises(ValueError, match=r"uniform must have shape \(4,\)"):
        graddrop(J, uniform=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"uniform must hold draws in \[0, 1\]"):
        graddrop(J, uniform=[0.5, np.nan, 0.5, 0.5])
    with pytest.raises(TypeError, match="f must be a function"):
        graddrop(J, f=0.5)
    with pytest.raises(ValueError, match=r"f must return one value per coordinate"):
        graddrop(J, f=lambda P: P[:2])
    with pytest.raises(ValueError, match="f returned NaN"):
        graddrop(J, f=lambda P: P * np.nan)
    with pytest.raises(ValueError, match="seed"):
        graddrop(J, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        graddrop(J, seed=1.5)
    with pytest.raises(ValueError, match="NaN or Inf"):
        graddrop(np.array([[1.0, np.nan]]))
    assert graddrop.needs_grads is True
