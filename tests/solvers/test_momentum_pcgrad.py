"""Momentum PCGrad: reduction to PCGrad, scale invariance, and a loop on vectors."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from paretomtl.solvers import MomentumPCGrad, get, info, pcgrad
from tests.solvers.test_conflict import naive_moments, noisy_steps
from tests.solvers.test_pcgrad import naive_pcgrad
from tests.strategies import grads_matrices


def virtual_vectors(norms, mean_cosine):
    """Rows V = D U with U U^T the tracked cosines (unit diagonal) and D the norms, so
    that V V^T is the expected Gram matrix; U by eigendecomposition (scale-free)."""
    M = mean_cosine.copy()
    np.fill_diagonal(M, 1.0)
    vals, vecs = np.linalg.eigh(M)
    return norms[:, None] * (vecs * np.sqrt(np.clip(vals, 0, None)))


def naive_momentum_pcgrad(Js, orders_per_step, beta1, beta2, threshold):
    """The docstring's definition, on vectors: moments from the vectors' cosines, then
    PCGrad's loop on vectors whose Gram matrix is the expected one, keeping each
    projected vector's coefficients on the task gradients.

    Returns the weights of each step and the smallest |expected inner product| relative
    to the lengths at a decision (a small margin means rounding could flip it).
    """
    K = Js[0].shape[0]
    out, margin = [], np.inf
    moments = naive_moments(Js, beta1, beta2)
    for J, orders, (_, m, v, _) in zip(Js, orders_per_step, moments, strict=True):
        norms = np.linalg.norm(J, axis=1)
        V = virtual_vectors(norms, m)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(m == 0, 0.0, np.abs(m) / np.sqrt(v))
        A = np.eye(K)
        for i in range(K):
            g = V[i].copy()
            for j in orders[i]:
                d = g @ V[j]
                nn = np.linalg.norm(g) * norms[j]
                if nn > 0 and rho[i, j] >= threshold:
                    margin = min(margin, abs(d) / nn)
                if d < 0 and norms[j] > 0 and rho[i, j] >= threshold:
                    c = d / (V[j] @ V[j])
                    g = g - c * V[j]
                    A[i, j] -= c
        out.append(A.sum(axis=0))
    return out, margin


def run(J_steps, **kwargs):
    mp = MomentumPCGrad(J_steps[0].shape[0], **kwargs)
    return mp, [mp.update(J) for J in J_steps]


@given(grads_matrices(max_tasks=7, max_dim=8), st.integers(0, 2**31 - 1))
def test_first_step_is_pcgrad(J, seed):
    _, (res,) = run([J], seed=seed, threshold=0.5)
    orders = res.extras["orders"]
    _, margin = naive_pcgrad(J, orders)
    assume(margin > 1e-9)
    expected = pcgrad(J, orders=orders)
    A, B = res.extras["coefficients"], expected.extras["coefficients"]
    scale = max(np.abs(B @ J).max(), np.abs(J).max(), 1e-300)
    np.testing.assert_allclose(A @ J, B @ J, rtol=0, atol=1e-10 * scale)


@given(
    grads_matrices(max_tasks=6, max_dim=8),
    st.integers(2, 5),
    st.floats(0.0, 2.0),
    st.integers(0, 2**31 - 1),
)
def test_beta1_zero_is_pcgrad_at_every_step(J, steps, noise, seed):
    _, results = run(noisy_steps(J, steps, noise, seed), beta1=0.0, seed=seed)
    for Jt, res in zip(noisy_steps(J, steps, noise, seed), results, strict=True):
        _, margin = naive_pcgrad(Jt, res.extras["orders"])
        assume(margin > 1e-9)
        expected = pcgrad(Jt, orders=res.extras["orders"])
        A, B = res.extras["coefficients"], expected.extras["coefficients"]
        scale = max(np.abs(B @ Jt).max(), np.abs(Jt).max(), 1e-300)
        np.testing.assert_allclose(A @ Jt, B @ Jt, rtol=0, atol=1e-10 * scale)


@given(
    grads_matrices(max_tasks=6, max_dim=8),
    st.integers(1, 5),
    st.floats(0.0, 2.0),
    st.sampled_from([(0.9, 0.999), (0.5, 0.5), (0.0, 0.9)]),
    st.sampled_from([0.0, 0.5, 0.9]),
    st.integers(0, 2**31 - 1),
)
def test_equals_loop_on_vectors(J, steps, noise, betas, threshold, seed):
    Js = noisy_steps(J, steps, noise, seed)
    _, results = run(Js, beta1=betas[0], beta2=betas[1], threshold=threshold, seed=seed)
    orders = [r.extras["orders"] for r in results]
    expected, margin = naive_momentum_pcgrad(Js, orders, betas[0], betas[1], threshold)
    assume(margin > 1e-8)
    for Jt, res, w in zip(Js, results, expected, strict=True):
        # rho within rounding of the threshold could gate differently: skip such steps.
        rho = res.extras["signal_to_noise"]
        if threshold > 0 and np.any(np.abs(rho - threshold) < 1e-9):
            continue
        scale = max(np.abs(np.abs(w) @ np.abs(Jt)).max(), np.abs(Jt).max(), 1e-300)
        np.testing.assert_allclose(res.weights @ Jt, w @ Jt, rtol=0, atol=1e-9 * scale)


def test_two_tasks_on_vectors_with_the_closed_form():
    # K = 2: g_i' = g_i - m_ij ||g_i|| / ||g_j|| g_j when m_ij < 0, else g_i.
    rng = np.random.default_rng(0)
    true = np.array([[1.0, 0.0, 0.0], [-0.3, 1.0, 0.0]])  # cosine -0.29
    mp = MomentumPCGrad(2, seed=0)
    m = 0.0
    for t in range(1, 40):
        J = true + 0.8 * rng.standard_normal((2, 3))
        c = J[0] @ J[1] / np.linalg.norm(J[0]) / np.linalg.norm(J[1])
        m = 0.9 * m + 0.1 * c
        m_hat = m / (1 - 0.9**t)
        res = mp.update(J)
        expected = J.copy()
        if m_hat < 0:
            for i, j in ((0, 1), (1, 0)):
                ratio = np.linalg.norm(J[i]) / np.linalg.norm(J[j])
                expected[i] = J[i] - m_hat * ratio * J[j]
        np.testing.assert_allclose(
            res.extras["coefficients"] @ J, expected, rtol=0, atol=1e-12 * np.abs(J).max()
        )
        assert res.extras["stats"].mean_cosine[0, 1] == pytest.approx(m_hat, abs=1e-14)


def test_acts_on_history_not_on_this_step():
    # A persistent conflict: projected on a step whose own cosine is positive ...
    mp = MomentumPCGrad(2, seed=0)
    for _ in range(5):
        mp.update(np.array([[1.0, 0.0], [-1.0, 1.0]]))
    res = mp.update(np.array([[1.0, 0.0], [0.1, 1.0]]))
    assert res.extras["stats"].cosine[0, 1] > 0
    assert res.extras["projections"] == 2
    # ... and a persistent agreement: not projected on a step whose cosine is negative.
    mp = MomentumPCGrad(2, seed=0)
    for _ in range(5):
        mp.update(np.array([[1.0, 0.0], [1.0, 1.0]]))
    res = mp.update(np.array([[1.0, 0.0], [-0.1, 1.0]]))
    assert res.extras["stats"].cosine[0, 1] < 0
    assert res.extras["projections"] == 0
    np.testing.assert_array_equal(res.weights, [1.0, 1.0])


@given(
    grads_matrices(min_tasks=2, max_tasks=6, max_dim=8, allow_zero_rows=False),
    st.integers(1, 4),
    st.floats(0.0, 1.0),
    st.integers(0, 2**31 - 1),
)
def test_scale_invariance(J, steps, noise, seed):
    K = J.shape[0]
    Js = noisy_steps(J, steps, noise, seed)
    s = np.random.default_rng(seed).uniform(-3, 3, size=K)
    S = 10.0**s
    _, plain = run(Js, seed=seed)
    _, per_task = run([S[:, None] * Jt for Jt in Js], seed=seed)
    _, common = run([1e-7 * Jt for Jt in Js], seed=seed)
    # A projection decided on a rounding-level inner product has a coefficient of about
    # eps * ||g_i|| / ||g_j||: scale the tolerance by the spread of the norms.
    norms = np.sqrt(np.diagonal(Js[0] @ Js[0].T))
    spread = max(1.0, norms.max() / norms.min()) * max(1.0, S.max() / S.min())
    rtol = max(1e-9, 1e-14 * spread)
    for a, b, c in zip(plain, per_task, common, strict=True):
        A = a.extras["coefficients"]
        # Rounding could flip a decision within its margin; compare only same decisions.
        if b.extras["projections"] == a.extras["projections"]:
            expected = S[:, None] * A / S[None, :]  # A -> S A S^-1
            scale = np.abs(expected).max()
            np.testing.assert_allclose(b.extras["coefficients"], expected, atol=rtol * scale)
        if c.extras["projections"] == a.extras["projections"]:
            np.testing.assert_allclose(c.weights, a.weights, atol=rtol * np.abs(A).max())
        rho_a, rho_b = a.extras["signal_to_noise"], b.extras["signal_to_noise"]
        np.testing.assert_allclose(rho_b, rho_a, rtol=1e-9)


def test_threshold_gates_noisy_pairs():
    rng = np.random.default_rng(1)
    true = np.array([[1.0, 0.0, 0.0, 0.0], [-0.2, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    Js = [true + 0.7 * rng.standard_normal(true.shape) for _ in range(30)]
    counts = []
    for threshold in (0.0, 0.1, 0.3, 0.8, np.inf):
        _, results = run(Js, threshold=threshold, seed=0)
        counts.append(sum(r.extras["projections"] for r in results))
        rho = results[-1].extras["signal_to_noise"]
        assert np.isfinite(rho).all() and (rho >= 0).all()
    # The same orders every time (same seed): a higher threshold only removes pairs.
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > counts[3] > counts[4] == 0


def test_state_round_trip_is_bit_identical():
    rng = np.random.default_rng(2)
    Js = [rng.standard_normal((5, 6)) - 0.6 * np.eye(5, 6) for _ in range(8)]
    straight, results = run(Js, beta1=0.8, threshold=0.1, seed=9)
    first = MomentumPCGrad(5, beta1=0.8, threshold=0.1, seed=9)
    for J in Js[:4]:
        first.update(J)
    resumed = MomentumPCGrad(5, seed=123)  # other options: the state brings its own
    resumed.load_state_dict(first.state_dict())
    for J, res in zip(Js[4:], results[4:], strict=True):
        got = resumed.update(J)
        assert got.direction.tobytes() == res.direction.tobytes()
        assert got.extras["orders"].tobytes() == res.extras["orders"].tobytes()
    assert resumed.step == straight.step == 8
    resumed.reset()
    assert resumed.step == 0


def test_gram_only_mean_zero_rows_and_single_task():
    rng = np.random.default_rng(3)
    J = rng.standard_normal((4, 9))
    J[2] = 0.0
    full = MomentumPCGrad(4, seed=1).update(J)
    gram_only = MomentumPCGrad(4, seed=1).update(gram=J @ J.T)
    assert gram_only.direction is None
    np.testing.assert_allclose(gram_only.weights, full.weights, rtol=1e-12)
    mean = MomentumPCGrad(4, seed=1, reduction="mean").update(J)
    np.testing.assert_allclose(mean.weights * 4, full.weights, rtol=1e-14)
    A = full.extras["coefficients"]
    assert np.isfinite(A).all()
    np.testing.assert_array_equal(A[2], np.eye(4)[2])  # a zero gradient is not projected
    np.testing.assert_array_equal(np.delete(A[:, 2], 2), 0.0)  # nor projected on
    one = MomentumPCGrad(1, seed=0).update(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(one.weights, [1.0])


def test_registered_as_experimental_stateful_gradient():
    assert info("momentum-pcgrad").kind == "stateful-gradient"
    assert info("momentum-pcgrad").summary.startswith("experimental:")
    assert get("momentum_pcgrad") is MomentumPCGrad


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_tasks"):
        MomentumPCGrad(-1)
    with pytest.raises(ValueError, match="beta1"):
        MomentumPCGrad(2, beta1=1.0)
    with pytest.raises(ValueError, match="threshold"):
        MomentumPCGrad(2, threshold=-0.5)
    with pytest.raises(TypeError, match="threshold"):
        MomentumPCGrad(2, threshold="high")
    with pytest.raises(ValueError, match="reduction"):
        MomentumPCGrad(2, reduction="max")
    mp = MomentumPCGrad(3, seed=0)
    mp.update(np.eye(3))
    with pytest.raises(ValueError, match="K must stay the same"):
        mp.update(np.eye(2))
    assert mp.step == 1
    with pytest.raises(ValueError, match="2 tasks"):
        mp.load_state_dict(MomentumPCGrad(2).state_dict())
